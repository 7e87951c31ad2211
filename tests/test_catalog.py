"""catalog.json: every flag with its git history, written by compile; empty outside git."""

from __future__ import annotations

import json
from pathlib import Path

from flagops.catalog import HISTORY_CAP, build_catalog
from flagops.layout import dumps
from test_history import ALICE, BOB, CAROL, TENANTS, GitRepo


def test_compile_writes_the_catalog(tmp_path: Path, flagops) -> None:
    g = GitRepo(tmp_path / "repo")
    g.write("tenants/production.yaml", TENANTS)
    g.flag("beta", "key: beta\ndescription: Beta\nstate: rollout\npct: 0\n")
    g.flag("gamma", "key: gamma\ndescription: Gamma\nstate: off\n")
    created = g.commit("Add beta and gamma", ALICE, "2026-09-01T09:00:00+02:00")
    for pct in range(1, 25):  # more changes than the catalog keeps
        g.flag("beta", f"key: beta\ndescription: Beta\nstate: rollout\npct: {pct}\n")
        g.commit(f"beta: {pct}%", BOB if pct % 2 else CAROL, f"2026-09-{pct + 1:02d}T10:00:00+02:00")
    g.flag("delta", "key: delta\ndescription: Uncommitted\nstate: off\n")
    out = tmp_path / "dist"
    run = flagops("compile", "--out", str(out), root=g.root)
    assert run.code == 0, run.err
    raw = (out / "catalog.json").read_bytes()
    catalog = json.loads(raw)
    assert raw == dumps(catalog)  # canonical JSON, like every file compile writes
    assert catalog["revision"] == g.git("rev-parse", "HEAD").strip() + "-dirty"
    beta = catalog["flags"]["beta"]
    assert {k: beta[k] for k in ("key", "description", "state", "pct")} == {
        "key": "beta", "description": "Beta", "state": "rollout", "pct": 24}
    assert beta["createdAt"] == "2026-09-01T09:00:00+02:00"
    assert beta["updatedAt"] == "2026-09-25T10:00:00+02:00" and beta["updatedBy"] == "carol@dezky.eu"
    assert len(beta["history"]) == HISTORY_CAP == 20
    assert beta["history"][0]["changes"] == [{"field": "pct", "before": 23, "after": 24}]
    assert beta["history"][-1]["subject"] == "beta: 5%"
    gamma = catalog["flags"]["gamma"]
    assert gamma["updatedBy"] == "alice@dezky.eu" and len(gamma["history"]) == 1
    assert gamma["history"][0]["commit"] == created and gamma["history"][0]["action"] == "created"
    delta = catalog["flags"]["delta"]  # in the work tree, not yet in git
    assert (delta["createdAt"], delta["updatedAt"], delta["updatedBy"], delta["history"]) == (None, None, None, [])


def test_outside_git_the_history_is_null_and_empty(repo, flagops, tmp_path: Path) -> None:
    repo.tenants("production", TENANTS)
    repo.flag("beta", "key: beta\ndescription: Beta\nstate: on\n")
    out = tmp_path / "out"
    run = flagops("compile", "--out", str(out), root=repo.root)
    assert run.code == 0, run.err
    catalog = json.loads((out / "catalog.json").read_text())
    assert catalog["revision"] is None
    assert catalog["flags"] == {"beta": {
        "key": "beta", "description": "Beta", "state": "on",
        "createdAt": None, "updatedAt": None, "updatedBy": None, "history": []}}


def test_shallow_clone_keeps_what_it_has(tmp_path: Path) -> None:
    g = GitRepo(tmp_path / "repo")
    g.flag("beta", "key: beta\ndescription: Beta\nstate: off\n")
    g.commit("Add beta", ALICE, "2026-09-01T09:00:00+00:00")
    g.flag("beta", "key: beta\ndescription: Beta\nstate: on\n")
    g.commit("Beta on", BOB, "2026-09-02T09:00:00+00:00")
    g.flag("new", "key: new\ndescription: New\nstate: off\n")
    g.commit("Add new", CAROL, "2026-09-03T09:00:00+00:00")
    clone = tmp_path / "clone"
    g.git("clone", "-q", "--depth", "2", f"file://{g.root}", str(clone), cwd=tmp_path)
    flags = {"beta": {"key": "beta"}, "new": {"key": "new"}}
    catalog = build_catalog(clone, flags)["flags"]
    assert catalog["new"]["createdAt"] == "2026-09-03T09:00:00+00:00"
    # beta's creation is beyond the clone's depth: unknown, not invented.
    assert catalog["beta"]["createdAt"] is None and catalog["beta"]["history"] == []
