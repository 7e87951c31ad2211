"""Acceptance tests of the core contracts, black-box: ``flagops`` as an operator runs it.

The commands run in-process through the CLI's real error boundary (testkit.invoke); the
compile contract also runs through the installed console script, as a smoke test.

Each test builds its own repository (flags, inventories, real git history where it matters)
and checks the documented commands, file layout and output formats against an independent
reading of the semantics, not against the library's own functions.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from testkit import Completed, commit_files, invoke, run_git, spawn

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> Completed:
    """``flagops ARGS`` in this process, through the real error boundary (see testkit.invoke)."""
    return invoke(*args, cwd=cwd, env={"FLAGOPS_DEBUG": None, **(env or {})})


def run_process(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> Completed:
    """The installed console script as a subprocess: the smoke tests that it starts at all."""
    return spawn(*args, cwd=cwd, env=env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- an independent evaluator


def expected_value(flag: dict[str, Any], tenant: dict[str, Any], env: str) -> bool:
    state = flag["state"]
    if state in ("off", "on"):
        return state == "on"
    scope = {k: v for k, v in (flag.get("scope") or {}).items() if v}
    if state == "targeted" and not scope:
        return False
    actual = {"plans": tenant["plan"], "tenantSlugs": tenant["slug"],
              "partnerSlugs": tenant.get("partnerSlug"), "environments": env}
    if any(actual[axis] is None or actual[axis] not in values for axis, values in scope.items()):
        return False
    if state == "targeted":
        return True
    digest = hashlib.sha256(f"{tenant['id']}:{flag['key']}".encode()).digest()
    return int.from_bytes(digest, "big") % 100 < flag["pct"]


FLAGS = {
    "roll_free": {"key": "roll_free", "description": "Rollout to free and starter", "state": "rollout",
                  "pct": 45, "scope": {"plans": ["free", "starter"]}},
    "always_on": {"key": "always_on", "description": "On for all", "state": "on"},
    "never_on": {"key": "never_on", "description": "Off", "state": "off"},
    "partner_only": {"key": "partner_only", "description": "Partner tenants", "state": "targeted",
                     "scope": {"partnerSlugs": ["msp-nord"]}},
    "staging_only": {"key": "staging_only", "description": "Scoped by environment only",
                     "state": "targeted", "scope": {"environments": ["staging"]}},
    "zero": {"key": "zero", "description": "Rollout at 0", "state": "rollout", "pct": 0},
    "hundred": {"key": "hundred", "description": "Rollout at 100", "state": "rollout", "pct": 100},
    "umlaut_owner": {"key": "umlaut_owner", "description": "Größe ändern ☃", "owner": "jörg@dezky.eu",
                     "state": "rollout", "pct": 50, "scope": {"environments": ["production"]}},
}

STAGING = [
    {"id": "st-0001", "slug": "acme", "plan": "free"},
    {"id": "st-0002", "slug": "nord-a", "plan": "business", "partnerSlug": "msp-nord"},
    {"id": "tenant/ünïcode-3", "slug": "unicode", "plan": "starter", "name": "Zürich Ärzte ☃"},
] + [{"id": f"st-{i:04d}", "slug": f"s-{i}", "plan": ["free", "starter", "business", "enterprise"][i % 4]}
     for i in range(4, 40)]
PRODUCTION = [{"id": f"pr-{i}", "slug": f"p-{i}", "plan": ["free", "starter", "business", "enterprise"][i % 4],
               **({"partnerSlug": "msp-nord"} if i % 5 == 0 else {})} for i in range(60)]


def flag_yaml(flag: dict[str, Any]) -> str:
    lines = [f"{k}: {json.dumps(v, ensure_ascii=False) if k != 'state' else v}"
             for k, v in flag.items() if k != "scope"]
    if "scope" in flag:
        lines.append("scope:")
        lines += [f"  {axis}: [{', '.join(values)}]" for axis, values in flag["scope"].items()]
    return "\n".join(lines) + "\n"


def inventory_yaml(tenants: list[dict[str, Any]]) -> str:
    out = []
    for t in tenants:
        items = list(t.items())
        out.append(f"- {items[0][0]}: {json.dumps(items[0][1], ensure_ascii=False)}")
        out += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in items[1:]]
    return "\n".join(out) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "flags-repo"
    for key, flag in FLAGS.items():
        write(root / "flags" / f"{key}.yaml", flag_yaml(flag))
    write(root / "tenants" / "staging.yaml", inventory_yaml(STAGING))
    write(root / "tenants" / "production.json", json.dumps(PRODUCTION))
    return root


def canonical(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# --------------------------------------------------------------------------- compile


def test_compile_matches_the_semantics_byte_for_byte(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # --root elsewhere, --out relative to the current directory.
    first = run_process("--root", str(project), "compile", "--out", "out1", cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # summaries go to stderr
    second = run("--root", str(project), "compile", "--out", "out2", cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert not (project / "out1").exists()
    for env, tenants in (("staging", STAGING), ("production", PRODUCTION)):
        out = elsewhere / "out1" / env
        manifest = json.loads((out / "manifest.json").read_bytes())
        assert manifest["schemaVersion"] == 1 and manifest["environment"] == env
        assert manifest["revision"] is None  # not a git repository
        assert manifest["flags"] == sorted(FLAGS)
        assert sorted(manifest["tenants"]) == sorted(t["slug"] for t in tenants)
        for t in tenants:
            raw = (out / "tenants" / f"{t['slug']}.json").read_bytes()
            want = {"schemaVersion": 1, "environment": env, "tenant": t["slug"],
                    "flags": {k: expected_value(f, t, env) for k, f in sorted(FLAGS.items())}}
            assert raw == canonical(want), (env, t["slug"])
            assert manifest["tenants"][t["slug"]] == "sha256:" + hashlib.sha256(raw).hexdigest()
        rules = json.loads((out / "rules.json").read_bytes())
        assert set(rules["flags"]) == set(FLAGS)
        assert all(set(r["scope"]) == {"plans", "tenantSlugs", "partnerSlugs", "environments"}
                   for r in rules["flags"].values())
        for name in ("manifest.json", "rules.json"):
            assert (out / name).read_bytes() == (elsewhere / "out2" / env / name).read_bytes()
    # Twice byte-identical, the catalog included.
    for path in (elsewhere / "out1").rglob("*"):
        if path.is_file() and not path.name.endswith(".state"):  # the hidden state records a time
            assert path.read_bytes() == (elsewhere / "out2" / path.relative_to(elsewhere / "out1")).read_bytes()
    catalog = json.loads((elsewhere / "out1" / "catalog.json").read_bytes())
    entry = catalog["flags"]["umlaut_owner"]
    assert entry["owner"] == "jörg@dezky.eu" and entry["history"] == []
    assert (entry["createdAt"], entry["updatedAt"], entry["updatedBy"]) == (None, None, None)


def test_compile_into_an_unwritable_place_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    result = run("--root", str(project), "compile", "--out", str(blocker / "dist"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "cannot write the compiled output" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_compile_leaves_the_previous_output(project: Path) -> None:
    assert run("compile", cwd=project).returncode == 0
    before = {p: p.read_bytes() for p in (project / "dist").rglob("*") if p.is_file()}
    write(project / "flags" / "broken.yaml", "key: broken\ndescription: x\nstate: rollout\npct: 150\n")
    result = run("compile", cwd=project)
    assert result.returncode == 1
    assert "flags/broken.yaml:4:6: error: pct 150 is above the maximum of 100 (schema)" in result.stderr
    assert {p: p.read_bytes() for p in (project / "dist").rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- --tenants


class _Inventory(http.server.BaseHTTPRequestHandler):
    body = b"[]"

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.headers.get("Authorization") != "Bearer tok-123":
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inventory_url() -> Iterator[str]:
    _Inventory.body = json.dumps([{"id": "u-1", "slug": "from-url", "plan": "free"},
                                  {"id": "u-2", "slug": "nord-url", "plan": "business",
                                   "partnerSlug": "msp-nord"}]).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Inventory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tenants"
    finally:
        server.shutdown()
        server.server_close()


def test_tenants_from_a_file_and_from_a_url(project: Path, tmp_path: Path, inventory_url: str) -> None:
    cwd = tmp_path / "cwd"
    write(cwd / "export.yaml", "- id: f-1\n  slug: from-file\n  plan: starter\n")
    result = run("--root", str(project), "compile", "--env", "staging", "--tenants", "export.yaml",
                 "--out", "o", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (cwd / "o" / "staging" / "tenants").iterdir()) == ["from-file.json"]
    denied = run("--root", str(project), "compile", "--env", "staging", "--tenants", inventory_url,
                 "--out", "u", cwd=cwd)
    assert denied.returncode == 1 and "401" in denied.stderr and "FLAGOPS_TENANTS_TOKEN" in denied.stderr
    assert "Traceback" not in denied.stderr
    ok = run("--root", str(project), "eval", "nord-url", "--env", "staging", "--tenants", inventory_url,
             cwd=cwd, env={"FLAGOPS_TENANTS_TOKEN": "tok-123"})
    assert ok.returncode == 0, ok.stderr
    tenant = {"id": "u-2", "slug": "nord-url", "plan": "business", "partnerSlug": "msp-nord"}
    assert json.loads(ok.stdout) == {k: expected_value(f, tenant, "staging") for k, f in FLAGS.items()}


# --------------------------------------------------------------------------- eval, list, show


def test_eval_names_the_inventories_it_has(project: Path) -> None:
    result = run("eval", "acme", "--env", "development", cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    assert 'no tenant inventory for environment "development"' in result.stderr
    assert "did you mean" not in result.stderr and "production, staging" in result.stderr


def test_list_says_an_empty_targeted_scope_reaches_nobody(project: Path) -> None:
    write(project / "flags" / "nobody_yet.yaml", "key: nobody_yet\ndescription: Not yet\nstate: targeted\n")
    table = run("list", cwd=project)
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("nobody_yet"))
    assert "nobody" in row and "everyone" not in row
    assert "everyone" in next(line for line in table.stdout.splitlines() if line.startswith("always_on"))
    shown = run("show", "nobody_yet", cwd=project)
    assert shown.returncode == 0 and "nobody" in shown.stdout
    as_json = json.loads(run("list", "--format", "json", cwd=project).stdout)
    assert [r["key"] for r in as_json] == sorted([*FLAGS, "nobody_yet"])


# --------------------------------------------------------------------------- history and plan


def git(root: Path, *args: str, author: tuple[str, str] = ("Ops", "ops@dezky.eu"),
        date: str = "2026-10-01T09:00:00+02:00") -> str:
    return run_git(root, *args, author=author, date=date).strip()


def commit(root: Path, subject: str, author: tuple[str, str], date: str) -> str:
    return commit_files(root, {}, subject, author=author, date=date)


ANNA = ("Anna Ödegaard", "anna@dezky.eu")
BEN = ("Ben", "ben@dezky.eu")


@pytest.fixture
def history_repo(project: Path) -> tuple[Path, dict[str, str]]:
    git(project, "init", "-q", "-b", "main")
    shas = {"start": commit(project, "Start", ANNA, "2026-10-01T09:00:00+02:00")}
    write(project / "flags" / "roll_free.yaml", flag_yaml({**FLAGS["roll_free"], "pct": 60}))
    shas["pct"] = commit(project, "roll_free: 60%", BEN, "2026-10-02T10:00:00-05:00")
    text = (project / "flags" / "roll_free.yaml").read_text()
    write(project / "flags" / "roll_free.yaml", "# reordered, same meaning\n" + text.replace('"', ""))
    shas["format"] = commit(project, "roll_free: tidy", ANNA, "2026-10-03T09:00:00+00:00")
    (project / "flags" / "never_on.yaml").unlink()
    shas["delete"] = commit(project, "Remove never_on", BEN, "2026-10-04T09:00:00+00:00")
    return project, shas


def test_history_shows_each_author_and_field(history_repo: tuple[Path, dict[str, str]]) -> None:
    root, shas = history_repo
    entries = json.loads(run("history", "roll_free", "--format", "json", cwd=root).stdout)
    assert [(e["commit"], e["action"], e["authorEmail"]) for e in entries] == [
        (shas["format"], "updated", "anna@dezky.eu"), (shas["pct"], "updated", "ben@dezky.eu"),
        (shas["start"], "created", "anna@dezky.eu")]
    assert entries[0]["changes"] == []
    assert entries[1]["changes"] == [{"field": "pct", "before": 45, "after": 60}]
    assert entries[1]["date"] == "2026-10-02T10:00:00-05:00" and entries[2]["authorName"] == "Anna Ödegaard"
    assert {"field": "scope.plans", "before": None, "after": ["free", "starter"]} in entries[2]["changes"]
    text = run("history", "roll_free", cwd=root).stdout.splitlines()
    assert text[1].startswith("2026-10-02 15:00 UTC  ") and text[1].endswith('  ben@dezky.eu  pct 45 -> 60  "roll_free: 60%"')
    assert "formatting only" in text[0]
    deleted = json.loads(run("history", "never_on", "--format", "json", cwd=root).stdout)
    assert deleted[0]["action"] == "deleted"
    assert {"field": "state", "before": "off", "after": None} in deleted[0]["changes"]
    unknown = run("history", "rol_free", cwd=root)
    assert unknown.returncode == 1 and 'did you mean "roll_free"' in unknown.stderr


def test_history_on_a_shallow_clone_answers_and_says_what_is_missing(
        history_repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, shas = history_repo
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{root}", str(clone)], check=True,
                   capture_output=True)
    result = run("history", "--format", "json", cwd=clone)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)  # stdout stays parseable
    assert [e["commit"] for e in entries] == [shas["delete"]]
    assert "shallow clone" in result.stderr and shas["format"][:12] in result.stderr
    assert "git fetch --unshallow" in result.stderr


def test_plan_reports_counts_as_n_of_m_tenants(history_repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = history_repo
    write(root / "flags" / "roll_free.yaml", flag_yaml({**FLAGS["roll_free"], "pct": 90}))
    plan = json.loads(run("plan", "--base", "HEAD", "--env", "production", "--format", "json", cwd=root).stdout)
    assert plan["head"] == "worktree" and list(plan["environments"]) == ["production"]
    (flag,) = plan["environments"]["production"]["flags"]
    before = {t["slug"] for t in PRODUCTION if expected_value({**FLAGS["roll_free"], "pct": 60}, t, "production")}
    after = {t["slug"] for t in PRODUCTION if expected_value({**FLAGS["roll_free"], "pct": 90}, t, "production")}
    assert flag["turnedOn"] == sorted(after - before) and flag["turnedOff"] == []
    assert (flag["enabledBefore"], flag["enabledAfter"], flag["tenantCount"]) == (len(before), len(after), 60)
    phrase = f"{len(before)} of 60 tenants"
    for fmt in ("text", "markdown"):
        out = run("plan", "--base", "HEAD", "--env", "production", "--format", fmt, cwd=root).stdout
        assert phrase in out and f"{len(after)} of 60 tenants" in out and "~" not in out, out


# --------------------------------------------------------------------------- validate


def test_validate_reports_every_broken_file_at_its_line(project: Path) -> None:
    flags = project / "flags"
    write(flags / "pct_high.yaml", "key: pct_high\ndescription: x\nstate: rollout\npct: 150\n")
    write(flags / "extra.yaml", "key: extra\ndescription: x\nstate: off\n\ncolour: red\n")
    write(flags / "no_desc.yaml", "# header comment\nkey: no_desc\nstate: on\n")
    write(flags / "twice.yaml", "key: twice\ndescription: x\nstate: off\nstate: on\n")
    write(flags / "typo_slug.yaml", "key: typo_slug\ndescription: x\nstate: targeted\nscope:\n"
                                    "  tenantSlugs: [acmee]\n")
    write(flags / "old.yml", "key: old\n")
    (flags / "latin1.yaml").write_bytes(b"key: latin1\ndescription: caf\xe9\nstate: off\n")
    write(flags / "empty.yaml", "")
    write(flags / "warn_pct.yaml", "key: warn_pct\ndescription: x\nstate: on\npct: 20\n")
    text = run("validate", cwd=project)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    lines = text.stdout.splitlines()
    assert lines == sorted(lines, key=lambda l: (l.split(":")[0], int(l.split(":")[1])))
    for expected in (
        "flags/empty.yaml:1:1: error:",
        "flags/extra.yaml:5:1: error: unknown field \"colour\"",
        "flags/latin1.yaml:2:17: error:",
        "flags/no_desc.yaml:2:1: error: missing required field \"description\"",
        "flags/old.yml:1:1: error:",
        "flags/pct_high.yaml:4:6: error: pct 150 is above the maximum of 100 (schema)",
        "flags/twice.yaml:4:1: error: duplicate key",
        "flags/typo_slug.yaml:5:17: error: tenant \"acmee\" is in no tenant inventory (did you mean \"acme\"?)",
        "flags/warn_pct.yaml:4:1: warning:",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert not any(line.startswith(("flags/always_on", "flags/roll_free")) for line in lines)
    github = run("validate", "--format", "github", cwd=project).stdout.splitlines()
    assert "::error file=flags/pct_high.yaml,line=4,col=6::pct 150 is above the maximum of 100 (schema)" in github
    assert any(line.startswith("::warning file=flags/warn_pct.yaml,line=4,") for line in github)
    report = json.loads(run("validate", "--format", "json", cwd=project).stdout)
    assert report["valid"] is False and len(report["problems"]) == len(lines)


def test_warnings_pass_unless_strict(project: Path) -> None:
    write(project / "flags" / "lonely.yaml", "key: lonely\ndescription: x\nstate: targeted\n")
    write(project / "flags" / "gone_by.yaml", "key: gone_by\ndescription: x\nstate: off\nexpires: 2001-01-01\n")
    assert run("validate", cwd=project).returncode == 0
    assert run("validate", "--strict", cwd=project).returncode == 1
    assert run("compile", cwd=project).returncode == 0


def test_list_and_show_read_invalid_files_without_crashing(project: Path) -> None:
    write(project / "flags" / "odd.yaml", "key: odd\ndescription: x\nstate: targeted\nscope:\n"
                                          "  plans: [[free], {a: 1}]\n  tenantSlugs: acme\n")
    write(project / "flags" / "nan_pct.yaml", "key: nan_pct\ndescription: x\nstate: rollout\npct: .nan\n")
    table = run("list", cwd=project)
    assert table.returncode == 0, table.stderr
    assert "odd" in table.stdout and "tenants: acme" in table.stdout
    rows = json.loads(run("list", "--format", "json", cwd=project).stdout)
    assert next(r for r in rows if r["key"] == "nan_pct")["pct"] is None
    shown = run("show", "odd", "--format", "json", cwd=project)
    assert shown.returncode == 0 and json.loads(shown.stdout)["scope"]["tenantSlugs"] == ["acme"]


def test_tenants_without_env_when_the_repository_has_one_inventory(tmp_path: Path) -> None:
    root = tmp_path / "single"
    write(root / "flags" / "always_on.yaml", flag_yaml(FLAGS["always_on"]))
    write(root / "tenants" / "production.json", json.dumps(PRODUCTION[:3]))
    export = write(tmp_path / "export.json", json.dumps([{"id": "x-1", "slug": "exported", "plan": "free"}]))
    result = run("compile", "--tenants", str(export), cwd=root)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (root / "dist" / "production" / "tenants").iterdir()] == ["exported.json"]
    assert run("validate", "--tenants", str(export), cwd=root).returncode == 0
    write(root / "tenants" / "staging.yaml", inventory_yaml(STAGING[:2]))
    ambiguous = run("compile", "--tenants", str(export), cwd=root)
    assert ambiguous.returncode == 2 and "--env" in ambiguous.stderr
