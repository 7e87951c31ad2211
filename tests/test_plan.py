"""flagops plan: exactly the tenants whose value flips, per environment, between two revisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flagops.errors import FlagopsError
from flagops_client.evaluation import evaluate
from flagops.loading import parse_yaml
from flagops.plan import make_plan
from flagops.reporters import render as report
from test_history import ALICE, BOB, CAROL, GitRepo

PLANS = ["free", "starter", "business", "enterprise"]
FLAG_KEYS = {"key", "action", "changes", "enabledBefore", "enabledAfter", "tenantCount", "turnedOn",
             "turnedOff", "byPlan"}


def tenants_yaml(prefix: str, n: int) -> str:
    rows = []
    for i in range(n):
        partner = "\n  partnerSlug: nordcloud-it" if i % 7 == 0 else ""
        rows.append(f"- id: {prefix}-{i:04d}\n  slug: {prefix}-t{i:03d}\n  plan: {PLANS[i % 4]}{partner}")
    return "\n".join(rows) + "\n"


BASE_FLAGS = {
    "rollout_a": "key: rollout_a\ndescription: A\nstate: rollout\npct: 10\n",
    "jumpy": "key: jumpy\ndescription: J\nstate: rollout\npct: 10\n",
    "everyone": "key: everyone\ndescription: E\nstate: off\n",
    "gone": "key: gone\ndescription: G\nstate: targeted\nscope:\n  plans: [business]\n",
    "unchanged": "key: unchanged\ndescription: U\nstate: rollout\npct: 50\n",
    "reformatted": "key: reformatted\ndescription: R\nstate: targeted\nscope:\n  plans: [free, enterprise]\n",
    "described": "key: described\ndescription: Old words\nstate: targeted\nscope:\n  partnerSlugs: [nordcloud-it]\n",
    "staging_only": "key: staging_only\ndescription: S\nstate: rollout\npct: 20\nscope:\n  environments: [staging]\n",
}
HEAD_FLAGS = {
    **BASE_FLAGS,
    "rollout_a": "key: rollout_a\ndescription: A\nstate: rollout\npct: 40\n",
    "jumpy": "key: jumpy\ndescription: J\nstate: rollout\npct: 90\n",
    "everyone": "key: everyone\ndescription: E\nstate: on\n",
    "reformatted": "# same meaning\nkey: reformatted\nstate: targeted\ndescription: \"R\"\n"
                   "scope: {plans: [enterprise, free]}\n",
    "described": "key: described\ndescription: New words\nstate: targeted\nscope:\n  partnerSlugs: [nordcloud-it]\n",
    "staging_only": "key: staging_only\ndescription: S\nstate: rollout\npct: 70\nscope:\n  environments: [staging]\n",
    "fresh": "key: fresh\ndescription: F\nstate: targeted\nscope:\n  plans: [enterprise]\n",
}
del HEAD_FLAGS["gone"]
CHANGED = ["described", "everyone", "fresh", "gone", "jumpy", "rollout_a", "staging_only"]


def write_flags(g: GitRepo, flags: dict[str, str]) -> None:
    for path in (g.root / "flags").glob("*.yaml"):
        path.unlink()
    for key, text in flags.items():
        g.flag(key, text)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, str, str]:
    """main holds BASE_FLAGS; the branch "change" holds HEAD_FLAGS (also left in the work tree)."""
    g = GitRepo(tmp_path_factory.mktemp("plan") / "repo")
    g.write("tenants/production.yaml", tenants_yaml("p", 80))
    g.write("tenants/staging.yaml", tenants_yaml("s", 30))
    write_flags(g, BASE_FLAGS)
    base = g.commit("Base flags", ALICE, "2026-10-01T09:00:00+00:00")
    g.git("checkout", "-q", "-b", "change")
    write_flags(g, HEAD_FLAGS)
    head = g.commit("Change flags", BOB, "2026-10-02T09:00:00+00:00")
    return g, base, head


def parsed(text: str) -> dict:
    doc, problems = parse_yaml("f.yaml", text.encode())
    assert doc is not None and not problems
    return doc.data


def expected_flips(tenants: list[dict], env: str, key: str) -> tuple[list[str], list[str], int, int]:
    """The oracle: the one-tenant ``evaluate`` before and after, tenant by tenant."""
    before = parsed(BASE_FLAGS[key]) if key in BASE_FLAGS else None
    after = parsed(HEAD_FLAGS[key]) if key in HEAD_FLAGS else None
    on, off, n_before, n_after = [], [], 0, 0
    for t in tenants:
        b = evaluate(before, t, env) if before else False
        a = evaluate(after, t, env) if after else False
        n_before += b
        n_after += a
        if a and not b:
            on.append(t["slug"])
        if b and not a:
            off.append(t["slug"])
    return sorted(on), sorted(off), n_before, n_after


def test_plan_lists_exactly_the_flipped_tenants(planned, flagops) -> None:
    g, base, head = planned
    run = flagops("plan", "--base", "main", "--head", "change", "--format", "json", root=g.root)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert set(data) == {"base", "head", "headCommit", "dirty", "environments"}
    assert data["base"] == base and data["head"] == head
    assert sorted(data["environments"]) == ["production", "staging"]
    for env in ("production", "staging"):
        tenants = parsed((g.root / f"tenants/{env}.yaml").read_text())
        plan = data["environments"][env]
        assert set(plan) == {"tenants", "flags"} and plan["tenants"] == len(tenants)
        by_key = {f["key"]: f for f in plan["flags"]}
        assert sorted(by_key) == CHANGED  # unchanged and reformatted flags are not listed
        for key, entry in by_key.items():
            assert set(entry) == FLAG_KEYS
            on, off, n_before, n_after = expected_flips(tenants, env, key)
            assert (entry["turnedOn"], entry["turnedOff"]) == (on, off), (env, key)
            assert (entry["enabledBefore"], entry["enabledAfter"]) == (n_before, n_after), (env, key)
            assert entry["tenantCount"] == len(tenants)
            plans = {t["slug"]: t["plan"] for t in tenants}
            for plan_name, counts in entry["byPlan"].items():
                assert counts == {"on": sum(plans[s] == plan_name for s in on),
                                  "off": sum(plans[s] == plan_name for s in off)}
            assert sum(c["on"] for c in entry["byPlan"].values()) == len(on)
        assert by_key["rollout_a"]["turnedOn"] and not by_key["rollout_a"]["turnedOff"]
        assert by_key["described"]["turnedOn"] == [] and by_key["described"]["changes"] == [
            {"field": "description", "before": "Old words", "after": "New words"}]
        assert by_key["gone"]["action"] == "deleted" and by_key["fresh"]["action"] == "created"
        assert by_key["everyone"]["enabledAfter"] == len(tenants)
    staging_only = {f["key"]: f for f in data["environments"]["production"]["flags"]}["staging_only"]
    assert staging_only["turnedOn"] == [] and staging_only["enabledAfter"] == 0


def test_worktree_head_includes_uncommitted_changes(planned) -> None:
    g, base, head = planned
    committed = make_plan(g.root, "main", "change").to_dict()
    worktree = make_plan(g.root, "main").to_dict()
    assert worktree["head"] == "worktree" and committed["head"] == head
    assert worktree["environments"] == committed["environments"]
    path = g.root / "flags/unchanged.yaml"
    original = path.read_text()
    try:
        path.write_text(original.replace("pct: 50", "pct: 55"))
        plan = make_plan(g.root, "main", environments=["staging"])
        entry = {f.key: f for f in plan.environments["staging"].flags}["unchanged"]
        assert entry.changes == [{"field": "pct", "before": 50, "after": 55}]
        assert entry.turned_off == [] and entry.enabled_after >= entry.enabled_before
        assert make_plan(g.root, "change", environments=["staging"]).changed_keys == ["unchanged"]
    finally:
        path.write_text(original)


def test_plan_between_equal_revisions_is_empty(planned, flagops) -> None:
    g, _, _ = planned
    run = flagops("plan", "--base", "change", "--head", "change", "--format", "json", root=g.root)
    assert run.code == 0
    assert all(p["flags"] == [] for p in json.loads(run.out)["environments"].values())
    text = flagops("plan", "--base", "change", root=g.root)
    assert "no flag changes" in text.out
    md = flagops("plan", "--base", "change", "--format", "markdown", root=g.root)
    assert "**no flag changes**" in md.out and "| flag |" not in md.out


def test_markdown_renders_a_table_with_risks(planned, flagops) -> None:
    g, _, _ = planned
    run = flagops("plan", "--base", "main", "--head", "change", "--format", "markdown", root=g.root)
    assert run.code == 0, run.err
    md = run.out
    assert md.startswith("<!-- flagops-plan -->\n")
    assert "### production (80 tenants)" in md and "### staging (30 tenants)" in md
    header = "| flag | change | before | after | turned on | turned off | by plan |"
    assert md.count(header) == 2
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 * len(CHANGED)
    rollout = next(r for r in rows if r.startswith("| `rollout_a`"))
    cells = [c.strip() for c in rollout.strip("|").split("|")]
    assert cells[1] == "pct 10 → 40" and cells[2].endswith(" of 80 tenants") and "~" not in md
    assert all(len([c for c in r.strip("|").split("|")]) == 7 for r in rows)  # no cell breaks the table
    assert "[!WARNING]" in md and "`jumpy` in production: rollout jumps from 10% to 90%" in md
    assert "`everyone` in production: turned on for every tenant of production (80)" in md
    assert "`gone` in production: deleted while still on" in md
    assert "`p-t" in md  # example slugs
    text = flagops("plan", "--base", "main", "--head", "change", "--env", "production", root=g.root)
    assert "~" not in text.out and " of 80 tenants -> " in text.out and "by plan:" in text.out
    assert "staging:" not in text.out and "RISK: rollout jumps from 10% to 90%" in text.out


def test_risks(planned) -> None:
    g, _, _ = planned
    risks = make_plan(g.root, "main", "change").risks
    keys = {(env, key) for env, key, _ in risks}
    assert ("production", "jumpy") in keys and ("staging", "jumpy") in keys
    assert ("production", "everyone") in keys and ("staging", "everyone") in keys
    assert ("production", "gone") in keys
    assert ("staging", "staging_only") not in keys  # 20 -> 70 is 50 points: not more than 50
    assert not any(key in ("rollout_a", "described", "fresh") for _, key, _ in risks)


def test_environment_choice_and_errors(planned, flagops) -> None:
    g, _, _ = planned
    only = flagops("plan", "--base", "main", "--head", "change", "--env", "staging", "--format", "json",
                   root=g.root)
    assert only.code == 0 and list(json.loads(only.out)["environments"]) == ["staging"]
    unknown = flagops("plan", "--base", "main", "--env", "prodution", root=g.root)
    assert unknown.code == 2 and 'did you mean "production"' in unknown.err
    missing = flagops("plan", "--base", "main", "--env", "development", root=g.root)
    assert missing.code == 2 and "no tenant inventory" in missing.err
    bad_ref = flagops("plan", "--base", "no-such-branch", root=g.root)
    assert bad_ref.code == 2 and '"no-such-branch" is not a commit' in bad_ref.err
    no_base = flagops("plan", root=g.root)
    assert no_base.code == 2
    assert "Traceback" not in bad_ref.err + unknown.err


def test_invalid_head_is_refused_invalid_base_still_plans(tmp_path: Path, flagops) -> None:
    g = GitRepo(tmp_path / "repo")
    g.write("tenants/production.yaml", tenants_yaml("p", 12))
    g.flag("broken", "key: broken\ndescription: B\nstate: sometimes\n")
    g.flag("fine", "key: fine\ndescription: F\nstate: off\n")
    g.commit("A broken flag reached main", CAROL, "2026-10-01T09:00:00+00:00")
    g.flag("broken", "key: broken\ndescription: B\nstate: on\n")
    run = flagops("plan", "--base", "HEAD", "--format", "json", root=g.root)
    assert run.code == 0, run.err
    assert "the base has 1 validation error(s)" in run.err and "(broken)" in run.err
    entry = json.loads(run.out)["environments"]["production"]["flags"]
    assert [(f["key"], f["enabledBefore"], f["enabledAfter"], len(f["turnedOn"])) for f in entry] == [
        ("broken", 0, 12, 12)]
    md = flagops("plan", "--base", "HEAD", "--format", "markdown", root=g.root)
    assert "The base has 1 validation error(s)" in md.out
    g.flag("fine", "key: fine\ndescription: F\nstate: maybe\n")
    refused = flagops("plan", "--base", "HEAD", root=g.root)
    assert refused.code == 1 and "fine.yaml" in refused.err and "fix them before planning" in refused.err


def test_plan_uses_the_head_inventories(tmp_path: Path) -> None:
    g = GitRepo(tmp_path / "repo")
    g.write("tenants/production.yaml", tenants_yaml("p", 8))
    g.flag("beta", "key: beta\ndescription: B\nstate: targeted\nscope:\n  tenantSlugs: [p-t001]\n")
    g.commit("Beta for p-t001", ALICE, "2026-10-01T09:00:00+00:00")
    g.write("tenants/production.yaml", tenants_yaml("p", 20))
    g.flag("beta", "key: beta\ndescription: B\nstate: targeted\nscope:\n  tenantSlugs: [p-t001, p-t015]\n")
    plan = make_plan(g.root, "HEAD")
    (entry,) = plan.environments["production"].flags
    assert entry.turned_on == ["p-t015"] and entry.tenant_count == 20
    assert "| `beta` |" in report("plan", "markdown", plan)


def test_outside_git_is_an_error(repo) -> None:
    repo.flag("beta", "key: beta\ndescription: B\nstate: off\n")
    with pytest.raises(FlagopsError, match="not inside a git repository"):
        make_plan(repo.root, "main")


def test_head_revision_is_read_with_its_own_schemas(tmp_path: Path) -> None:
    """--head REF reads flags, inventories and schemas from that commit, not the work tree."""
    g = GitRepo(tmp_path / "repo")
    builtin = Path(__file__).resolve().parent.parent / "schema"
    for src in builtin.glob("*.schema.json"):
        g.write(f"schema/{src.name}", src.read_text())
    g.write("tenants/production.yaml", tenants_yaml("p", 4))
    g.flag("beta", "key: beta\ndescription: B\nstate: off\n")
    g.commit("Base", ALICE, "2026-10-01T09:00:00+00:00")
    g.git("checkout", "-q", "-b", "premium")
    schema = json.loads((g.root / "schema/flag.schema.json").read_text())
    schema["$defs"]["plan"]["enum"].append("premium")
    (g.root / "schema/flag.schema.json").write_text(json.dumps(schema, indent=2))
    g.write("tenants/production.yaml", tenants_yaml("p", 4) + "- {id: p-9, slug: p-t900, plan: premium}\n")
    g.flag("beta", "key: beta\ndescription: B\nstate: targeted\nscope:\n  plans: [premium]\n")
    g.commit("A premium plan", BOB, "2026-10-02T09:00:00+00:00")
    g.git("checkout", "-q", "main")  # the work tree no longer knows the premium plan
    plan = make_plan(g.root, "main", "premium")
    (entry,) = plan.environments["production"].flags
    assert entry.turned_on == ["p-t900"] and entry.by_plan == {"premium": {"on": 1, "off": 0}}
    assert entry.tenant_count == 5
