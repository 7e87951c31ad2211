"""flagops refs: exactly the planted references, unreferenced flags and unknown keys of a source tree."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from flagops.refs import iter_source_files, scan

KEYS = ["chat_v2", "gdpr_export_v2", "jmap_native_v2", "never_used_flag", "new_billing_engine",
        "video_meetings", "zulip_chat"]

SOURCES = {
    "src/app.ts": """\
        import { isEnabled, useFlag } from "./flags";
        const user_id = record["user_id"];            // ordinary snake_case: ignored
        if (isEnabled('zulip_chat')) { mountChat(); }
        if (isEnabled("zulip_caht")) { legacy(); }     // typo in a flag call
        const meetings = flags.video_meetings && flags.length > 0;
        const label = 'video_meeting';                 // near miss outside a flag call
        useFlag(`jmap_native_v2`);
        if (featureFlags['brand_new_thing']) { beta(); }
        const s = "created_at"; const t = 'chat_x9';    // two edits from a short key: ignored
        const names = flags.get('whatever_name');       // a method call on flags: ignored
        """,
    "src/components/Panel.vue": """\
        <template>
          <div v-if="flags.new_billing_engine">billing</div>
          <div v-if="flags.gdpr_exprot_v2">export</div>
        </template>
        <script setup lang="ts">
        const on = isEnabled('chat_v3')
        </script>
        """,
    "server/app.py": """\
        from flagops_client import Client


        def handler(client, tenant):
            if client.is_enabled("new_billing_engine", tenant):
                return "billing_v2"
            if client.is_enabled("gdpr_export_v2", tenant):
                pass
            enabled = client.is_enabled("totally_unrelated_xyz", tenant)
            return {"tenant_id": tenant, "created_at": None}
        """,
    "server/no_quotes.py": "def f(x):\n    return x + 1\n",
    # Never scanned: dependencies, build output, virtualenvs, caches, hidden folders, other types.
    "node_modules/dep/index.js": "isEnabled('zulip_caht'); isEnabled('chat_v2');\n",
    "src/node_modules/dep/index.ts": "isEnabled('zulip_caht'); isEnabled('never_used_flag');\n",
    "dist/bundle.js": "isEnabled('zulip_caht'); isEnabled('chat_v2');\n",
    "build/lib/app.py": "is_enabled('zulip_caht')\n",
    "out/app.js": "isEnabled('chat_v2')\n",
    ".venv/lib/site.py": "is_enabled('zulip_caht')\n",
    "py311/pyvenv.cfg": "home = /usr/bin\n",
    "py311/lib/site.py": "is_enabled('zulip_caht')\n",
    "src/env/config.ts": "export const region = 'eu_central';\n",
    "server/__pycache__/app.py": "is_enabled('chat_v2')\n",
    ".hidden/app.ts": "isEnabled('chat_v2')\n",
    "docs/notes.md": "isEnabled('zulip_caht') isEnabled('chat_v2')\n",
}

REFERENCES = {
    "gdpr_export_v2": [{"path": "server/app.py", "line": 7}],
    "jmap_native_v2": [{"path": "src/app.ts", "line": 7}],
    "new_billing_engine": [{"path": "server/app.py", "line": 5}, {"path": "src/components/Panel.vue", "line": 2}],
    "video_meetings": [{"path": "src/app.ts", "line": 5}],
    "zulip_chat": [{"path": "src/app.ts", "line": 3}],
}
UNKNOWN = [
    {"key": "totally_unrelated_xyz", "path": "server/app.py", "line": 9, "suggestion": None},
    {"key": "zulip_caht", "path": "src/app.ts", "line": 4, "suggestion": "zulip_chat"},
    {"key": "video_meeting", "path": "src/app.ts", "line": 6, "suggestion": "video_meetings"},
    {"key": "brand_new_thing", "path": "src/app.ts", "line": 8, "suggestion": None},
    {"key": "gdpr_exprot_v2", "path": "src/components/Panel.vue", "line": 3, "suggestion": "gdpr_export_v2"},
    {"key": "chat_v3", "path": "src/components/Panel.vue", "line": 6, "suggestion": "chat_v2"},
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    for rel, text in SOURCES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def flags_repo(repo):
    for key in KEYS:
        repo.flag(key, f"key: {key}\ndescription: {key}\nstate: off\n")
    return repo.root


def test_walk_skips_dependencies_and_build_output(tree: Path) -> None:
    found = sorted(Path(p).relative_to(tree).as_posix() for p in iter_source_files([str(tree)]))
    assert found == ["server/app.py", "server/no_quotes.py", "src/app.ts", "src/components/Panel.vue",
                     "src/env/config.ts"]


def test_cli_json_finds_exactly_the_planted_cases(tree: Path, flags_repo: Path, flagops) -> None:
    run = flagops("refs", "src", "server", "--format", "json", root=flags_repo, cwd=tree)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert list(data) == ["references", "unreferenced", "unknown"]
    assert data["references"] == REFERENCES
    assert data["unreferenced"] == ["chat_v2", "never_used_flag"]
    assert data["unknown"] == UNKNOWN


def test_text_output_and_strict(tree: Path, flags_repo: Path, flagops) -> None:
    run = flagops("refs", ".", root=flags_repo, cwd=tree)
    assert run.code == 0
    assert './src/app.ts:4: "zulip_caht" is not a flag (did you mean "zulip_chat"?)' in run.out
    assert "unreferenced flags (2):\n  chat_v2\n  never_used_flag\n" in run.out
    assert "5 files scanned: 5 of 7 flags referenced, 6 unknown key(s)" in run.err
    assert flagops("refs", ".", "--strict", root=flags_repo, cwd=tree).code == 1


def test_a_clean_tree_passes_strict(tmp_path: Path, repo, flagops) -> None:
    repo.flag("zulip_chat", "key: zulip_chat\ndescription: chat\nstate: on\n")
    src = tmp_path / "clean"
    src.mkdir()
    (src / "a.py").write_text('if flags["zulip_chat"]:\n    x = "user_id"\n', encoding="utf-8")
    run = flagops("refs", str(src), "--strict", "--format", "json", root=repo.root)
    assert run.code == 0
    assert json.loads(run.out) == {"references": {"zulip_chat": [{"path": f"{src}/a.py", "line": 1}]},
                                   "unreferenced": [], "unknown": []}


def test_parallel_scan_matches_serial(tree: Path) -> None:
    # Enough copies that each worker gets several chunks.
    for i in range(40):
        for rel in ("src/app.ts", "server/app.py"):
            target = tree / f"copy{i}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((tree / rel).read_bytes())
    serial = scan([str(tree)], KEYS, jobs=1).to_dict()
    parallel = scan([str(tree)], KEYS, jobs=2).to_dict()
    assert serial == parallel
    assert len(serial["references"]["zulip_chat"]) == 41


def test_missing_path_is_a_usage_error(flags_repo: Path, tmp_path: Path, flagops) -> None:
    run = flagops("refs", str(tmp_path / "nope"), root=flags_repo)
    assert run.code == 2
    assert "does not exist" in run.err
