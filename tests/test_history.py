"""flagops history: real git repositories with several authors, read back as semantic changes."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Optional

import pytest

from flagops.errors import FlagopsError
from flagops.history import flag_history, semantic_changes

ALICE = ("Alice Martin", "alice@dezky.eu")
BOB = ("Bob Keller", "bob@dezky.eu")
CAROL = ("Carol Novak", "carol@dezky.eu")
DAN = ("Dan Weber", "dan@dezky.eu")

ENTRY_KEYS = {"commit", "shortCommit", "date", "authorName", "authorEmail", "subject", "key", "action", "changes",
              "unparseable"}

TENANTS = """\
- {id: t1, slug: acme, plan: business}
- {id: t2, slug: globex, plan: enterprise}
- {id: t3, slug: initech, plan: free}
"""


class GitRepo:
    """A throw-away git repository whose commits carry a chosen author and date."""

    def __init__(self, root: Path):
        self.root = root
        (root / "flags").mkdir(parents=True, exist_ok=True)
        (root / "tenants").mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None) -> str:
        full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
        out = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args],
                             cwd=cwd or self.root, env=full_env, check=True, capture_output=True, text=True)
        return out.stdout

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def flag(self, key: str, text: str) -> None:
        self.write(f"flags/{key}.yaml", text)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def commit(self, subject: str, author: tuple[str, str], date: str) -> str:
        name, email = author
        self.git("add", "-A")
        self.git("commit", "-q", "-m", subject, env={
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date})
        return self.git("rev-parse", "HEAD").strip()


def build_story(root: Path) -> tuple[GitRepo, dict[str, str]]:
    """Six commits by four authors: creation, updates, a pure reformat, a deletion."""
    g = GitRepo(root)
    shas: dict[str, str] = {}
    g.write("tenants/production.yaml", TENANTS)
    g.write("tenants/staging.yaml", TENANTS)
    g.flag("jmap_native_v2", """
        key: jmap_native_v2
        description: Webmail talks JMAP natively
        owner: mail@dezky.eu
        state: rollout
        pct: 10
        scope:
          environments: [staging, production]
        """)
    g.flag("video_meetings", """
        key: video_meetings
        description: Jitsi video meetings
        state: on
        """)
    shas["create"] = g.commit("Add jmap and video flags", ALICE, "2026-10-01T09:00:00+02:00")
    g.flag("jmap_native_v2", """
        key: jmap_native_v2
        description: Webmail talks JMAP natively
        owner: mail@dezky.eu
        state: rollout
        pct: 30
        scope:
          environments: [staging, production]
        """)
    shas["pct30"] = g.commit("jmap: 30%", BOB, "2026-10-03T10:00:00+02:00")
    g.flag("jmap_native_v2", """
        # JMAP rollout, see the mail runbook
        key: jmap_native_v2
        description: "Webmail talks JMAP natively"
        state: rollout
        owner: mail@dezky.eu
        pct: 30
        scope: {environments: [production, staging]}
        """)
    shas["format"] = g.commit("Tidy jmap_native_v2.yaml", CAROL, "2026-10-05T11:00:00+02:00")
    g.flag("jmap_native_v2", """
        # JMAP rollout, see the mail runbook
        key: jmap_native_v2
        description: "Webmail talks JMAP natively"
        state: rollout
        owner: mail@dezky.eu
        pct: 60
        scope: {environments: [production, staging]}
        """)
    shas["pct60"] = g.commit("jmap: 60%", CAROL, "2026-10-09T12:00:00+02:00")
    g.remove("flags/video_meetings.yaml")
    shas["delete"] = g.commit("Remove video_meetings", DAN, "2026-10-10T08:30:00+00:00")
    g.flag("jmap_native_v2", """
        key: jmap_native_v2
        description: Webmail talks JMAP natively (push)
        state: rollout
        owner: mail@dezky.eu
        pct: 60
        scope:
          plans: [business, enterprise]
          environments: [production, staging]
        """)
    shas["plans"] = g.commit("jmap: business and enterprise only", ALICE, "2026-10-12T15:00:00+02:00")
    return g, shas


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, dict[str, str]]:
    return build_story(tmp_path_factory.mktemp("history") / "repo")


def test_history_of_one_flag_names_each_author_and_change(story) -> None:
    g, shas = story
    entries = flag_history(g.root, "jmap_native_v2")
    assert [e["commit"] for e in entries] == [shas[s] for s in ("plans", "pct60", "format", "pct30", "create")]
    assert all(set(e) == ENTRY_KEYS for e in entries)
    assert [e["authorEmail"] for e in entries] == ["alice@dezky.eu", "carol@dezky.eu", "carol@dezky.eu",
                                                    "bob@dezky.eu", "alice@dezky.eu"]
    assert [e["authorName"] for e in entries][:2] == ["Alice Martin", "Carol Novak"]
    assert [e["action"] for e in entries] == ["updated", "updated", "updated", "updated", "created"]
    plans, pct60, fmt, pct30, create = entries
    assert plans["changes"] == [
        {"field": "description", "before": "Webmail talks JMAP natively",
         "after": "Webmail talks JMAP natively (push)"},
        {"field": "scope.plans", "before": [], "after": ["business", "enterprise"]},
    ]
    assert pct60["changes"] == [{"field": "pct", "before": 30, "after": 60}]
    assert pct60["subject"] == "jmap: 60%"
    assert pct60["date"] == "2026-10-09T12:00:00+02:00"
    assert fmt["changes"] == []  # comment, quoting, order and flow style only
    assert pct30["changes"] == [{"field": "pct", "before": 10, "after": 30}]
    assert create["changes"] == [
        {"field": "state", "before": None, "after": "rollout"},
        {"field": "pct", "before": None, "after": 10},
        {"field": "description", "before": None, "after": "Webmail talks JMAP natively"},
        {"field": "owner", "before": None, "after": "mail@dezky.eu"},
        {"field": "scope.environments", "before": None, "after": ["staging", "production"]},
    ]


def test_history_of_a_deleted_flag(story) -> None:
    g, shas = story
    entries = flag_history(g.root, "video_meetings")
    assert [(e["action"], e["authorEmail"], e["commit"]) for e in entries] == [
        ("deleted", "dan@dezky.eu", shas["delete"]), ("created", "alice@dezky.eu", shas["create"])]
    assert entries[0]["changes"] == [
        {"field": "state", "before": "on", "after": None},
        {"field": "description", "before": "Jitsi video meetings", "after": None},
    ]
    assert entries[0]["date"] == "2026-10-10T08:30:00+00:00"


def test_history_of_all_flags_is_newest_first(story) -> None:
    g, shas = story
    entries = flag_history(g.root)
    assert [(e["commit"], e["key"]) for e in entries] == [
        (shas["plans"], "jmap_native_v2"), (shas["delete"], "video_meetings"),
        (shas["pct60"], "jmap_native_v2"), (shas["format"], "jmap_native_v2"),
        (shas["pct30"], "jmap_native_v2"), (shas["create"], "jmap_native_v2"),
        (shas["create"], "video_meetings")]


def test_limit_and_since(story) -> None:
    g, shas = story
    assert [e["commit"] for e in flag_history(g.root, limit=2)] == [shas["plans"], shas["delete"]]
    assert flag_history(g.root, "jmap_native_v2", limit=0) == []
    since = flag_history(g.root, "jmap_native_v2", since="2026-10-05")
    assert [e["commit"] for e in since] == [shas["plans"], shas["pct60"], shas["format"]]
    import datetime as dt
    assert len(flag_history(g.root, since=dt.date(2026, 10, 10))) == 2
    # A date compares with each commit's own calendar date, as the timeline prints it:
    # 2026-10-10T08:30+00:00 is on the 10th, 2026-10-09T12:00+02:00 is not.
    assert [e["commit"] for e in flag_history(g.root, since="2026-10-10")] == [shas["plans"], shas["delete"]]
    # 2026-10-09T12:00+02:00 is 10:00 UTC: a later instant excludes it.
    late = flag_history(g.root, "jmap_native_v2", since="2026-10-09T10:30:00+00:00")
    assert [e["commit"] for e in late] == [shas["plans"]]


def test_unknown_key_suggests_the_closest(story) -> None:
    g, _ = story
    with pytest.raises(FlagopsError, match='no flag "jmap_native_v3".*did you mean "jmap_native_v2"'):
        flag_history(g.root, "jmap_native_v3")
    with pytest.raises(FlagopsError, match='did you mean "video_meetings"'):
        flag_history(g.root, "video_meeting")  # only in the history now


def test_cli_json_is_the_contract(story, flagops) -> None:
    g, shas = story
    run = flagops("history", "jmap_native_v2", "--format", "json", "--limit", "2", root=g.root)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [set(e) for e in data] == [ENTRY_KEYS, ENTRY_KEYS]
    assert data[1] == {"commit": shas["pct60"], "shortCommit": shas["pct60"][:12], "unparseable": [],
                       "date": "2026-10-09T12:00:00+02:00",
                       "authorName": "Carol Novak", "authorEmail": "carol@dezky.eu",
                       "subject": "jmap: 60%", "key": "jmap_native_v2", "action": "updated",
                       "changes": [{"field": "pct", "before": 30, "after": 60}]}


def test_cli_text_is_a_timeline(story, flagops) -> None:
    g, shas = story
    run = flagops("history", "jmap_native_v2", root=g.root)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[1] == f'2026-10-09 10:00 UTC  {shas["pct60"][:12]}  carol@dezky.eu  pct 30 -> 60  "jmap: 60%"'
    assert lines[2].endswith('  carol@dezky.eu  formatting only (no semantic change)  "Tidy jmap_native_v2.yaml"')
    assert lines[4].startswith("2026-10-01 ") and " UTC  " in lines[4]
    assert "  alice@dezky.eu  created: state rollout, pct 10, " in lines[4]
    everything = flagops("history", "--since", "2026-10-10", root=g.root)
    assert everything.out.splitlines()[1].endswith(
        f'  {shas["delete"][:12]}  dan@dezky.eu  video_meetings  deleted (was state on, '
        'description "Jitsi video meetings")  "Remove video_meetings"')


def test_cli_errors(story, flagops, tmp_path: Path) -> None:
    g, _ = story
    unknown = flagops("history", "jmap_native", root=g.root)
    assert unknown.code == 1 and unknown.out == ""
    assert 'did you mean "jmap_native_v2"' in unknown.err and "Traceback" not in unknown.err
    bad_since = flagops("history", "--since", "last tuesday", root=g.root)
    assert bad_since.code == 2 and "--since" in bad_since.err
    bad_limit = flagops("history", "--limit", "-1", root=g.root)
    assert bad_limit.code == 2
    (tmp_path / "plain" / "flags").mkdir(parents=True)
    outside = flagops("history", root=tmp_path / "plain")
    assert outside.code == 1 and "not inside a git repository" in outside.err


def test_shallow_clone_says_what_is_missing(story, tmp_path: Path, flagops) -> None:
    g, shas = story
    clone = tmp_path / "shallow"
    g.git("clone", "-q", "--depth", "2", f"file://{g.root}", str(clone), cwd=tmp_path)
    # The newest change is there; the rest of the history is not.
    assert [e["commit"] for e in flag_history(clone, "jmap_native_v2", limit=1)] == [shas["plans"]]
    with pytest.raises(FlagopsError, match="shallow clone") as info:
        flag_history(clone, "jmap_native_v2")
    assert shas["delete"][:12] in str(info.value) and "fetch --unshallow" in str(info.value)
    run = flagops("history", "jmap_native_v2", root=clone)
    # The command still answers with what the clone holds, and says what is missing.
    assert run.code == 0 and "shallow clone" in run.err and "fetch-depth: 0" in run.err
    assert "Traceback" not in run.err
    single = tmp_path / "depth1"
    g.git("clone", "-q", "--depth", "1", f"file://{g.root}", str(single), cwd=tmp_path)
    with pytest.raises(FlagopsError, match="shallow clone"):
        flag_history(single)


def test_root_inside_a_larger_repository(tmp_path: Path) -> None:
    g = GitRepo(tmp_path / "mono")
    g.write("ops/flags/flags/beta.yaml", "key: beta\ndescription: Beta\nstate: off\n")
    g.write("flags/unrelated.yaml", "key: unrelated\ndescription: Not ours\nstate: off\n")
    g.commit("Add beta", BOB, "2026-10-01T09:00:00+00:00")
    g.write("ops/flags/flags/beta.yaml", "key: beta\ndescription: Beta\nstate: on\n")
    g.commit("Beta on", CAROL, "2026-10-02T09:00:00+00:00")
    entries = flag_history(g.root / "ops" / "flags")
    assert [(e["key"], e["action"], e["authorEmail"]) for e in entries] == [
        ("beta", "updated", "carol@dezky.eu"), ("beta", "created", "bob@dezky.eu")]
    assert entries[0]["changes"] == [{"field": "state", "before": "off", "after": "on"}]


def test_semantic_changes_compare_meaning_not_text() -> None:
    base = {"key": "x", "description": "X", "state": "targeted", "scope": {"plans": ["free", "business"]}}
    assert semantic_changes(base, {**base, "scope": {"plans": ["business", "free"], "tenantSlugs": []}}) == []
    assert semantic_changes(base, {**base, "scope": {"plans": ["free"]}}) == [
        {"field": "scope.plans", "before": ["free", "business"], "after": ["free"]}]
    assert semantic_changes(base, {**base, "expires": "2027-01-31"}) == [
        {"field": "expires", "before": None, "after": "2027-01-31"}]
    assert semantic_changes(None, None) == []
    assert semantic_changes(base, None)[-1] == {"field": "scope.plans", "before": ["free", "business"],
                                                "after": None}
