"""flagops stale: exactly the planted stale flags of a real git repository with backdated commits."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from flagops.stale import find_stale, last_changes
from testkit import commit_files, run_git

NOW = dt.datetime.now(dt.timezone.utc)
TENANTS = """
- {id: t1, slug: acme, plan: enterprise}
- {id: t2, slug: beta, plan: business, partnerSlug: nordcloud}
- {id: t3, slug: gamma, plan: starter}
- {id: t4, slug: delta, plan: business}
"""


def ago(days: float) -> str:
    """A commit date ``days`` before NOW (one NOW for the whole module, so ages are exact)."""
    return (NOW - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def flag_yaml(key: str, body: str, expires: str | None = None) -> str:
    head = f"key: {key}\ndescription: {key.replace('_', ' ')}\nowner: team-{key[:3]}@example.eu\n"
    return head + (f"expires: {expires}\n" if expires else "") + body


PAST = (NOW.date() - dt.timedelta(days=30)).isoformat()
FUTURE = (NOW.date() + dt.timedelta(days=300)).isoformat()

OLD = {
    "old_on": "state: on\n",
    "old_off": "state: off\n",
    "old_full_rollout": "state: rollout\npct: 100\n",
    "old_nobody": "state: targeted\nscope:\n  plans: [free]\n",  # no tenant is on free
    "old_partial": "state: rollout\npct: 50\n",
    "old_env_split": "state: targeted\nscope:\n  environments: [production]\n",
    "old_then_touched": "state: off\n",
    "old_dirty": "state: off\n",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with every case: stale and not, by value, by age and by expiry."""
    root = tmp_path_factory.mktemp("stale") / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    commit_files(root, {"tenants/development.yaml": TENANTS, "tenants/production.yaml": TENANTS,
                        **{f"flags/{k}.yaml": flag_yaml(k, body) for k, body in OLD.items()},
                        "flags/old_on_expired.yaml": flag_yaml("old_on_expired", "state: on\n", PAST)},
                 "Seed the flags", date=ago(200))
    commit_files(root, {"flags/old_then_touched.yaml": flag_yaml("old_then_touched", "state: off\n")
                        .replace("description: old then touched", "description: touched again")},
                 "Reword old_then_touched", date=ago(5))
    commit_files(root, {"flags/recent_off.yaml": flag_yaml("recent_off", "state: off\n"),
                        "flags/expired_partial.yaml": flag_yaml("expired_partial", "state: rollout\npct: 50\n", PAST),
                        "flags/expires_later.yaml": flag_yaml("expires_later", "state: rollout\npct: 50\n", FUTURE)},
                 "Add recent flags", date=ago(10))
    # Uncommitted edits and never-committed files count as changed now.
    (root / "flags/old_dirty.yaml").write_text(flag_yaml("old_dirty", "state: off\n# editing\n"), encoding="utf-8")
    (root / "flags/untracked_off.yaml").write_text(flag_yaml("untracked_off", "state: off\n"), encoding="utf-8")
    return root


EXPECTED = {"old_on", "old_off", "old_full_rollout", "old_nobody", "old_on_expired", "expired_partial"}


def test_finds_exactly_the_planted_flags(planted: Path) -> None:
    found, notes = find_stale(planted, days=90)
    assert {f.key for f in found} == EXPECTED
    assert notes == []
    by_key = {f.key: f for f in found}
    seeded = (NOW - dt.timedelta(days=200)).date().isoformat()
    assert by_key["old_on"].since == seeded
    assert by_key["old_on"].reason.startswith("fully on for all 8 tenants of 2 environments, unchanged for 200 days")
    assert "code paths for off" in by_key["old_on"].action
    assert by_key["old_off"].reason.startswith("fully off")
    assert "code it guards" in by_key["old_off"].action
    assert by_key["old_nobody"].reason.startswith("fully off")
    assert by_key["old_full_rollout"].reason.startswith("fully on")
    assert by_key["expired_partial"].since == PAST
    assert by_key["expired_partial"].reason == f"expired on {PAST}"
    both = by_key["old_on_expired"]
    assert both.reason.startswith("fully on") and both.reason.endswith(f"; expired on {PAST}")
    assert both.since == seeded
    assert by_key["old_off"].owner == "team-old@example.eu"


def test_days_threshold(planted: Path) -> None:
    found, _ = find_stale(planted, days=300)
    assert {f.key for f in found} == {"old_on_expired", "expired_partial"}
    found, _ = find_stale(planted, days=7)
    assert {f.key for f in found} == EXPECTED | {"recent_off"}
    found, _ = find_stale(planted, days=3)
    assert {f.key for f in found} == EXPECTED | {"recent_off", "old_then_touched"}


def test_last_changes_come_from_git(planted: Path) -> None:
    changes = last_changes(planted)
    assert changes is not None
    assert (NOW - changes["old_on"]).days == 200
    assert (NOW - changes["old_then_touched"]).days == 5
    assert (NOW - changes["old_dirty"]).total_seconds() < 120
    assert (NOW - changes["untracked_off"]).total_seconds() < 120


def test_cli_json_contract_and_strict(planted: Path, flagops) -> None:
    run = flagops("stale", "--format", "json", root=planted)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [d["key"] for d in data] == sorted(EXPECTED)
    assert all(set(d) == {"key", "reason", "since", "owner", "action"} for d in data)
    strict = flagops("stale", "--strict", root=planted)
    assert strict.code == 1
    assert "old_off: fully off for all 8 tenants" in strict.out
    assert "6 stale flags" in strict.err
    github = flagops("stale", "--format", "github", "--days", "300", root=planted)
    assert github.code == 0
    lines = github.out.splitlines()
    assert len(lines) == 2 and all(line.startswith("::warning file=flags/") for line in lines)


def test_nothing_stale_exits_zero_even_strict(tmp_path: Path, flagops) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    commit_files(root, {"tenants/production.yaml": TENANTS,
                        "flags/old_partial.yaml": flag_yaml("old_partial", OLD["old_partial"])},
                 "Seed", date=ago(400))
    run = flagops("stale", "--strict", "--format", "json", root=root)
    assert run.code == 0 and json.loads(run.out) == []


def test_root_below_the_top_of_the_repository(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    (top / "ops" / "flags").mkdir(parents=True)
    run_git(top, "init", "-q", "-b", "main")
    commit_files(top, {"ops/tenants/production.yaml": TENANTS, "ops/flags/old_on.yaml": flag_yaml("old_on", "state: on\n"),
                       "ops/flags/old_partial.yaml": flag_yaml("old_partial", OLD["old_partial"])},
                 "Seed", date=ago(120))
    (top / "ops/flags/old_partial.yaml").write_text(flag_yaml("old_partial", "state: off\n"), encoding="utf-8")
    found, _ = find_stale(top / "ops", days=90)
    assert [f.key for f in found] == ["old_on"]  # old_partial is off now, but edited just now


def test_outside_git_only_expiry_counts(tmp_path: Path, flagops) -> None:
    root = tmp_path / "plain"
    (root / "flags").mkdir(parents=True)
    (root / "tenants").mkdir()
    (root / "tenants/production.yaml").write_text(TENANTS, encoding="utf-8")
    (root / "flags/old_off.yaml").write_text(flag_yaml("old_off", "state: off\n"), encoding="utf-8")
    (root / "flags/gone_by.yaml").write_text(flag_yaml("gone_by", "state: off\n", PAST), encoding="utf-8")
    run = flagops("stale", "--format", "json", root=root)
    assert run.code == 0
    assert [d["key"] for d in json.loads(run.out)] == ["gone_by"]
    assert "not a git repository" in run.err


def test_invalid_repository_is_refused(tmp_path: Path, flagops) -> None:
    root = tmp_path / "bad"
    (root / "flags").mkdir(parents=True)
    (root / "flags/broken.yaml").write_text("key: broken\nstate: sideways\n", encoding="utf-8")
    run = flagops("stale", root=root)
    assert run.code == 1
    assert "fix them first" in run.err and "Traceback" not in run.err
