"""Safety rails of the edits: risky changes need --yes, kill records what it replaced, restore and delete."""

from __future__ import annotations

import json

import pytest

from flagops.loading import parse_yaml
from test_history import ALICE, GitRepo

TENANTS = "".join(f"- {{id: t_{i}, slug: s{i:02d}, plan: {'business' if i % 2 else 'free'}}}\n" for i in range(20))

RAMP = """\
# yaml-language-server: $schema=../schema/flag.schema.json
key: ramp
description: Gradual rollout   # watch the error rate
state: rollout
pct: 60
scope:
  plans: [business]   # paying first
# the end
"""


def data(path) -> dict:
    doc, problems = parse_yaml("flags/x.yaml", path.read_bytes())
    assert doc is not None and not problems
    return doc.data


@pytest.fixture
def project(repo):
    repo.tenants("production", TENANTS)
    repo.flag("ramp", RAMP)
    repo.flag("quiet", "# yaml-language-server: $schema=../schema/flag.schema.json\nkey: quiet\ndescription: Q\n"
                       "state: off\n")
    return repo


@pytest.mark.parametrize("args, risk", [
    (["set", "quiet", "--state", "on"], "turned on for every tenant of production (20)"),
    (["set", "ramp", "--pct", "5"], "rollout drops from 60% to 5% at once"),
    (["new", "loud", "--description", "L", "--state", "on"], "turned on for every tenant of production"),
    (["delete", "ramp"], "deleted while still on for 4 of 20 tenants"),
])
def test_a_risky_edit_is_refused_without_yes_and_written_with_it(project, flagops, args, risk):
    before = {p.name: p.read_bytes() for p in (project.root / "flags").iterdir()}
    run = flagops(*args, root=project.root)  # no terminal here
    assert run.code == 1, run.err
    assert f"RISK: production: {risk}" in run.out and "nothing was written" in run.err and "--yes" in run.err
    assert {p.name: p.read_bytes() for p in (project.root / "flags").iterdir()} == before
    run = flagops(*args, "--yes", root=project.root)
    assert run.code == 0, run.err
    assert {p.name: p.read_bytes() for p in (project.root / "flags").iterdir()} != before


def test_a_safe_edit_needs_no_confirmation(project, flagops):
    run = flagops("set", "ramp", "--pct", "70", root=project.root)
    assert run.code == 0 and "RISK" not in run.out
    assert "production: 4 of 20 tenants -> 6 of 20 tenants" in run.out and "~" not in run.out


def test_kill_records_what_it_replaced_and_restore_brings_it_back(project, flagops):
    path = project.root / "flags" / "ramp.yaml"
    run = flagops("kill", "ramp", "--reason", "error rate up\nsee the incident", "--yes", root=project.root)
    assert run.code == 0, run.err
    killed = data(path)
    assert (killed["state"], killed["pct"]) == ("off", 0)
    record = killed["killed"]
    assert {k: record[k] for k in ("reason", "state", "pct")} == {"reason": "error rate up", "state": "rollout",
                                                                  "pct": 60}
    assert record["at"].endswith("Z") and record["by"]
    assert flagops("validate", root=project.root).code == 0
    assert flagops("fmt", "--check", root=project.root).code == 0
    shown = flagops("show", "ramp", root=project.root)
    assert "killed:" in shown.out and "(was rollout, pct 60): error rate up" in shown.out
    assert json.loads(flagops("show", "ramp", "--format", "json", root=project.root).out)["killed"]["pct"] == 60
    again = flagops("kill", "ramp", root=project.root)
    assert again.code == 0 and "already off" in again.err and data(path)["killed"] == record

    refused = flagops("restore", "ramp", root=project.root)  # back to 60 %: a jump of 60 points
    assert refused.code == 1 and "RISK: production: rollout jumps from 0% to 60%" in refused.out
    run = flagops("restore", "ramp", "--yes", root=project.root)
    assert run.code == 0, run.err
    assert path.read_text(encoding="utf-8") == RAMP  # byte for byte, comments included
    missing = flagops("restore", "ramp", root=project.root)
    assert missing.code == 1 and "no killed: block" in missing.err


def test_turning_a_killed_flag_on_again_drops_its_record(project, flagops):
    assert flagops("kill", "ramp", "--yes", root=project.root).code == 0
    run = flagops("set", "ramp", "--state", "rollout", "--pct", "30", root=project.root)
    assert run.code == 0 and "removed the killed: block" in run.err
    assert "killed" not in data(project.root / "flags" / "ramp.yaml")


def test_new_takes_state_pct_and_scope(project, flagops):
    run = flagops("new", "pilot", "--description", "Pilot", "--state", "rollout", "--pct", "40",
                  "--add-plan", "business", "--environments", "production", root=project.root)
    assert run.code == 0, run.err
    flag = data(project.root / "flags" / "pilot.yaml")
    assert (flag["state"], flag["pct"], flag["scope"]) == ("rollout", 40, {"plans": ["business"],
                                                                           "environments": ["production"]})
    assert "production: 0 of 20 tenants -> " in run.out and flagops("fmt", "--check", root=project.root).code == 0
    bad = flagops("new", "broken", "--description", "B", "--state", "rollout", root=project.root)
    assert bad.code == 1 and 'missing required field "pct"' in bad.err
    assert not (project.root / "flags" / "broken.yaml").exists()


def test_delete_warns_while_the_flag_is_on_and_keeps_an_off_flag_simple(project, flagops):
    run = flagops("delete", "ramp", "--dry-run", root=project.root)
    assert run.code == 0 and "warning: ramp is still on for 4 tenant(s): production 4 of 20" in run.err
    assert (project.root / "flags" / "ramp.yaml").exists()
    run = flagops("delete", "quiet", root=project.root)
    assert run.code == 0 and "RISK" not in run.out and not (project.root / "flags" / "quiet.yaml").exists()
    assert flagops("delete", "quiet", root=project.root).code == 1


def test_plan_fail_on_risk(tmp_path, flagops):
    g = GitRepo(tmp_path / "repo")
    g.write("tenants/production.yaml", TENANTS)
    g.flag("quiet", "key: quiet\ndescription: Q\nstate: off\n")
    g.commit("Base", ALICE, "2026-10-01T09:00:00+00:00")
    assert flagops("plan", "--base", "HEAD", "--fail-on-risk", root=g.root).code == 0
    g.flag("quiet", "key: quiet\ndescription: Q\nstate: on\n")
    assert flagops("plan", "--base", "HEAD", root=g.root).code == 0
    run = flagops("plan", "--base", "HEAD", "--fail-on-risk", "--format", "markdown", root=g.root)
    assert run.code == 1 and "turned on for every tenant of production (20)" in run.out
    assert "1 risky change(s) (--fail-on-risk)" in run.err
