"""The plan as a pull-request comment: capped under GitHub's limit, headed by the head commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flagops.plan import make_plan
from flagops.reporters import render as report
from test_history import ALICE, GitRepo
from test_plan import tenants_yaml


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """A base with no flags; the working tree adds 120 rollout flags (uncommitted)."""
    g = GitRepo(tmp_path_factory.mktemp("crowded") / "repo")
    g.write("tenants/production.yaml", tenants_yaml("p", 60))
    g.write("tenants/staging.yaml", tenants_yaml("s", 40))
    g.flag("keep", "key: keep\ndescription: K\nstate: off\n")
    g.commit("Base", ALICE, "2026-10-01T09:00:00+00:00")
    for i in range(120):
        g.flag(f"rollout_number_{i:03d}", f"key: rollout_number_{i:03d}\ndescription: Rollout {i}\n"
                                          f"state: rollout\npct: {20 + i % 30}\n")
    return g


def test_a_long_plan_is_capped_with_the_rest_counted(crowded: GitRepo, monkeypatch) -> None:
    plan = make_plan(crowded.root, "HEAD")
    full = report("plan", "markdown", plan, limit=10**9)
    assert len(full) > 65_536  # too long for one GitHub comment
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "dezky/flags")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    md = report("plan", "markdown", plan)
    assert len(md) <= 60_000 and md.startswith("<!-- flagops-plan -->\n")
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    shown = len(rows) // 2
    assert 0 < shown < 120
    for env in ("production", "staging"):
        assert f"### {env} (" in md
    assert md.count(f"| … and {120 - shown} more flags |") == 2
    assert "workflow artifact `flagops-plan` of [this run](https://github.com/dezky/flags/actions/runs/42)" in md
    assert report("plan", "markdown", plan, limit=len(full)) == full  # a plan that fits is whole
    data = json.loads(report("plan", "json", plan))  # the artifact: every flag
    assert len(data["environments"]["production"]["flags"]) == 120


def test_the_header_names_the_head_commit(crowded: GitRepo, tmp_path: Path) -> None:
    head = crowded.git("rev-parse", "HEAD").strip()
    dirty = make_plan(crowded.root, "HEAD")
    assert (dirty.head, dirty.head_commit, dirty.dirty) == ("worktree", head, True)
    md = report("plan", "markdown", dirty)
    assert f"→ head `{head[:12]}-dirty` (the working tree, with uncommitted changes)" in md
    assert "`worktree`" not in md
    assert f"-> head {head[:12]}-dirty (the working tree" in report("plan", "text", dirty)
    committed = make_plan(crowded.root, "HEAD", "HEAD")
    assert committed.head_label == head[:12] and not committed.dirty
    assert f"→ head `{head[:12]}`:" in report("plan", "markdown", committed)
    data = json.loads(report("plan", "json", dirty))
    assert (data["head"], data["headCommit"], data["dirty"]) == ("worktree", head, True)
