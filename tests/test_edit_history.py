"""History of hostile and deleted flags: unparseable old versions, show and the dashboard point at them."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagops.dashboard import dashboard_pages
from flagops.history import flag_history
from flagops.plan import make_plan
from test_history import ALICE, BOB, CAROL, TENANTS, GitRepo

DEEP = "key: deep\ndescription: D\nstate: off\nscope:\n  plans: " + "[" * 900 + "]" * 900 + "\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, dict[str, str]]:
    """A flag nested 900 levels deep, committed once and reverted; a flag created and deleted."""
    g = GitRepo(tmp_path_factory.mktemp("hostile") / "repo")
    g.write("tenants/production.yaml", TENANTS)
    g.flag("deep", "key: deep\ndescription: D\nstate: on\n")
    g.flag("gone", "key: gone\ndescription: Gone soon\nowner: ops@dezky.eu\nstate: on\n")
    shas = {"create": g.commit("Add flags", ALICE, "2026-10-01T09:00:00+00:00")}
    g.flag("deep", DEEP)
    shas["deep"] = g.commit("Nest deep", BOB, "2026-10-02T09:00:00+00:00")
    g.flag("deep", "key: deep\ndescription: D\nstate: on\n")
    shas["revert"] = g.commit("Revert the nesting", BOB, "2026-10-03T09:00:00+00:00")
    g.remove("flags/gone.yaml")
    shas["delete"] = g.commit("Remove gone", CAROL, "2026-10-04T18:30:00+02:00")
    return g, shas


def test_an_unparseable_old_version_is_shown_as_such(hostile, flagops) -> None:
    g, shas = hostile
    entries = {e["commit"]: e for e in flag_history(g.root, "deep")}
    assert entries[shas["deep"]]["unparseable"] == ["after"] and entries[shas["deep"]]["changes"] == []
    revert = entries[shas["revert"]]
    assert revert["unparseable"] == ["before"]
    assert {"field": "state", "before": None, "after": "on"} in revert["changes"]
    run = flagops("history", "deep", root=g.root)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert f"{shas['deep'][:12]}  bob@dezky.eu  unparseable at this commit" in lines[1]
    assert "from an unparseable file to: state on" in lines[0]
    assert "null" not in run.out


def test_plan_dashboard_and_compile_survive_the_hostile_commit(hostile, flagops, tmp_path: Path) -> None:
    g, shas = hostile
    assert make_plan(g.root, shas["deep"]).environments["production"].flags[0].key == "deep"
    files, _, count = dashboard_pages(g.root)
    assert count == 1 and "Unparseable at this commit" in files["flags/deep.html"].decode()
    run = flagops("compile", "--out", str(tmp_path / "dist"), root=g.root)
    assert run.code == 0, run.err


def test_show_and_the_dashboard_keep_a_deleted_flag(hostile, flagops) -> None:
    g, shas = hostile
    run = flagops("show", "gone", root=g.root)
    assert run.code == 1 and run.out == ""
    assert (f'no flag "gone" in flags/: it was deleted in {shas["delete"][:12]} on 2026-10-04 16:30 UTC '
            "by carol@dezky.eu; see flagops history gone") in run.err
    files, _, _ = dashboard_pages(g.root)
    index = files["index.html"].decode()
    assert 'class="badge deleted"' in index and "Gone soon" in index and "1 deleted" in index
    page = files["flags/gone.html"].decode()
    assert "<strong>Deleted</strong> in <code" in page and shas["delete"][:12] in page
    assert "carol@dezky.eu" in page and page.count('<li class="event') == 2
