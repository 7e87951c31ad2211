"""flagops new, set, kill and fmt: comments and layout kept, invalid results refused, blast radius shown."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from flagops import edit as editing
from flagops.fmt import format_flag_text
from flagops_client.evaluation import evaluate
from flagops.loading import parse_yaml

TENANTS = """
- {id: t_1, slug: acme, plan: enterprise}
- {id: t_2, slug: beta, plan: business}
- {id: t_3, slug: gamma, plan: business, partnerSlug: nordcloud}
- {id: t_4, slug: delta, plan: free}
- {id: t_5, slug: epsilon, plan: starter, partnerSlug: nordcloud}
"""

COMMENTED = """\
# yaml-language-server: $schema=../schema/flag.schema.json
# Owned by billing; ask in #billing before touching.
key: billing   # never rename
description: "Billing engine"   # quoted on purpose

# who answers for it
owner: billing@dezky.eu
state: targeted  # was a rollout
scope:
  plans: [business]  # paying customers only
  # the pilot customers
  tenantSlugs:
    - acme      # first pilot
    - delta
# keep this note at the end
"""

COMMENTS = [line.split("#", 1)[1] for line in COMMENTED.splitlines() if "#" in line]


@pytest.fixture
def project(repo):
    repo.tenants("production", TENANTS)
    repo.tenants("staging", "- {id: s_1, slug: acme, plan: enterprise}\n")
    repo.flag("billing", COMMENTED)
    return repo


def read(repo, key: str) -> str:
    return (repo.root / "flags" / f"{key}.yaml").read_text(encoding="utf-8")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines only in ``before`` and lines only in ``after`` (a multiset difference)."""
    a, b = before.splitlines(), after.splitlines()
    removed = [line for line in a if a.count(line) > b.count(line)]
    added = [line for line in b if b.count(line) > a.count(line)]
    return removed, added


def assert_comments_kept(text: str) -> None:
    for comment in COMMENTS:
        assert comment in text, f"lost comment: #{comment}"


def data(text: str) -> dict:
    doc, problems = parse_yaml("flags/x.yaml", text.encode())
    assert doc is not None and not problems
    return doc.data


# --------------------------------------------------------------------------- new


def test_new_writes_a_valid_off_flag_with_the_modeline(project, flagops):
    run = flagops("new", "gdpr_export", "--description", "Export: zipped per user", "--owner",
                  "platform@dezky.eu", "--expires", "2027-03-31", root=project.root)
    assert run.code == 0, run.err
    text = read(project, "gdpr_export")
    assert text == textwrap.dedent("""\
        # yaml-language-server: $schema=../schema/flag.schema.json
        key: gdpr_export
        description: 'Export: zipped per user'
        owner: platform@dezky.eu
        expires: 2027-03-31
        state: off
        """)
    assert data(text)["state"] == "off" and data(text)["expires"] == "2027-03-31"
    assert flagops("validate", root=project.root).code == 0
    assert flagops("fmt", "--check", root=project.root).code == 0


@pytest.mark.parametrize("key, message", [
    ("billing", 'a flag "billing" already exists'),
    ("Bad-Key", '"Bad-Key" is not a valid flag key'),
    ("x", '"x" is not a valid flag key'),
])
def test_new_refuses_a_taken_or_malformed_key(project, flagops, key, message):
    before = sorted(p.name for p in (project.root / "flags").iterdir())
    run = flagops("new", key, "--description", "something", root=project.root)
    assert run.code == 1
    assert message in run.err and "Traceback" not in run.err
    assert sorted(p.name for p in (project.root / "flags").iterdir()) == before
    assert read(project, "billing") == COMMENTED


def test_new_refuses_an_invalid_result_and_a_bad_date(project, flagops):
    run = flagops("new", "blank", "--description", "  ", root=project.root)
    assert run.code == 1
    assert "flags/blank.yaml:3:14: error: description must not be blank (schema)" in run.err
    assert not (project.root / "flags" / "blank.yaml").exists()
    run = flagops("new", "dated", "--description", "x", "--expires", "31.03.2027", root=project.root)
    assert run.code == 2 and "YYYY-MM-DD" in run.err
    assert not (project.root / "flags" / "dated.yaml").exists()


# --------------------------------------------------------------------------- set: round trips


@pytest.mark.parametrize("args, removed, added", [
    (["--state", "on"], ["state: targeted  # was a rollout"], ["state: on  # was a rollout"]),
    (["--state", "rollout", "--pct", "40"], ["state: targeted  # was a rollout"],
     ["state: rollout  # was a rollout", "pct: 40"]),
    (["--add-plan", "enterprise"], ["  plans: [business]  # paying customers only"],
     ["  plans: [business, enterprise]  # paying customers only"]),
    (["--remove-plan", "business"], ["  plans: [business]  # paying customers only"],
     ["  plans: []  # paying customers only"]),
    (["--add-tenant", "beta"], [], ["    - beta"]),
    (["--remove-tenant", "delta"], ["    - delta"], []),
    (["--add-partner", "nordcloud"], [], ["  partnerSlugs: [nordcloud]"]),
    (["--environments", "production,staging"], [], ["  environments: [production, staging]"]),
    (["--description", "Stripe billing"], ['description: "Billing engine"   # quoted on purpose'],
     ['description: "Stripe billing"   # quoted on purpose']),
    (["--owner", "money@dezky.eu"], ["owner: billing@dezky.eu"], ["owner: money@dezky.eu"]),
    (["--owner", ""], ["owner: billing@dezky.eu"], []),
    (["--expires", "2027-06-30"], [], ["expires: 2027-06-30"]),
])
def test_set_changes_only_the_edited_lines_and_keeps_every_comment(project, flagops, args, removed, added):
    run = flagops("set", "billing", *args, "--yes", root=project.root)
    assert run.code == 0, run.err
    after = read(project, "billing")
    assert changed_lines(COMMENTED, after) == (removed, added)
    assert_comments_kept(after)
    assert flagops("validate", root=project.root).code == 0


def test_set_inserts_new_fields_in_canonical_order_below_their_comments(project, flagops):
    assert flagops("set", "billing", "--expires", "2027-06-30", "--state", "rollout", "--pct", "5",
                   root=project.root).code == 0
    after = read(project, "billing")
    keys = [m.group(1) for m in re.finditer(r"^([a-z]+):", after, re.MULTILINE)]
    assert keys == ["key", "description", "owner", "expires", "state", "pct", "scope"]
    # The comment above owner stays directly above owner.
    assert "# who answers for it\nowner: billing@dezky.eu\nexpires: 2027-06-30\n" in after
    # A file in the canonical layout stays in it.
    assert flagops("fmt", "--check", root=project.root).code == 0


def test_set_writes_on_and_off_unquoted_and_they_read_back_as_strings(project, flagops):
    for state in ("on", "off"):
        assert flagops("set", "billing", "--state", state, "--yes", root=project.root).code == 0
        text = read(project, "billing")
        assert f"\nstate: {state}  # was a rollout\n" in text
        assert data(text)["state"] == state


def test_set_with_several_changes_round_trips_and_leaves_no_temp_files(project, flagops):
    run = flagops("set", "billing", "--add-plan", "enterprise", "--add-tenant", "beta", "--remove-tenant",
                  "delta", "--add-partner", "nordcloud", "--environments", "production",
                  "--expires", "2027-01-31", "--owner", "ops@dezky.eu", root=project.root)
    assert run.code == 0, run.err
    after = read(project, "billing")
    assert_comments_kept(after)
    flag = data(after)
    assert flag["scope"] == {"plans": ["business", "enterprise"], "tenantSlugs": ["acme", "beta"],
                             "partnerSlugs": ["nordcloud"], "environments": ["production"]}
    assert flag["owner"] == "ops@dezky.eu" and flag["expires"] == "2027-01-31"
    assert sorted(p.name for p in (project.root / "flags").iterdir()) == ["billing.yaml"]


# --------------------------------------------------------------------------- set: refusals


def test_set_refuses_an_invalid_result_with_the_errors_validate_reports(project, flagops, tmp_path):
    run = flagops("set", "billing", "--add-plan", "gold", "--add-tenant", "acmee", root=project.root)
    assert run.code == 1
    assert "nothing was written" in run.err
    assert read(project, "billing") == COMMENTED
    # The same errors validate reports for that content.
    other = type(project)(tmp_path / "other")
    other.tenants("production", TENANTS)
    other.tenants("staging", "- {id: s_1, slug: acme, plan: enterprise}\n")
    invalid = COMMENTED.replace("[business]", "[business, gold]").replace("    - delta\n", "    - delta\n    - acmee\n")
    other.flag("billing", invalid)
    expected = flagops("validate", root=other.root)
    assert expected.code == 1
    problems = [line for line in expected.out.splitlines() if ": error: " in line]
    assert len(problems) == 2
    for line in problems:
        assert line in run.err


@pytest.mark.parametrize("args, code, message", [
    (["--remove-tenant", "nobody"], 1, '"nobody" is not in scope.tenantSlugs'),
    (["--state", "rollout"], 1, 'missing required field "pct"'),
    (["--pct", "101"], 2, "101"),
    (["--state", "maybe"], 2, "maybe"),
    ([], 2, "nothing to change"),
])
def test_set_refusals_write_nothing(project, flagops, args, code, message):
    run = flagops("set", "billing", *args, root=project.root)
    assert run.code == code
    assert message in run.err and "Traceback" not in run.err
    assert read(project, "billing") == COMMENTED


def test_set_unknown_flag_suggests_the_closest(project, flagops):
    run = flagops("set", "biling", "--state", "on", root=project.root)
    assert run.code == 1 and 'did you mean "billing"' in run.err


# --------------------------------------------------------------------------- blast radius


def test_set_prints_the_blast_radius_per_environment(project, flagops):
    run = flagops("set", "billing", "--add-plan", "enterprise", "--state", "targeted", "--yes", root=project.root)
    assert run.code == 0
    # Before: plans [business] and tenants [acme, delta]: nobody matches both axes.
    # After: plans [business, enterprise]: acme (enterprise) matches.
    assert "staging: 0 of 1 tenants -> 1 of 1 tenants (+1 turn on: acme)" in run.out
    assert "production: 0 of 5 tenants -> 1 of 5 tenants (+1 turn on: acme)" in run.out
    run = flagops("set", "billing", "--state", "on", "--yes", root=project.root)
    assert ("production: 1 of 5 tenants -> 5 of 5 tenants (+4 turn on: beta, delta, epsilon, gamma)"
            in run.out)
    run = flagops("set", "billing", "--state", "off", root=project.root)
    assert "production: 5 of 5 tenants -> 0 of 5 tenants (-5 turn off: acme, beta, delta, epsilon, gamma)" in run.out


def test_blast_radius_of_a_rollout_agrees_with_evaluate(repo):
    tenants = "".join(f"- {{id: t_{i}, slug: s{i}, plan: business}}\n" for i in range(300))
    repo.tenants("production", tenants)
    repo.flag("ramp", "key: ramp\ndescription: Ramp\nstate: rollout\npct: 10\n")
    edit = editing.edit_flag(repo.root, "ramp", editing.FlagChange(pct=35))
    (radius,) = edit.radius
    expect = {pct: [f"s{i}" for i in range(300)
                    if evaluate({"key": "ramp", "state": "rollout", "pct": pct}, {"id": f"t_{i}"}, "production")]
              for pct in (10, 35)}
    assert (radius.enabled_before, radius.enabled_after) == (len(expect[10]), len(expect[35]))
    assert radius.turned_off == [] and radius.turned_on == sorted(set(expect[35]) - set(expect[10]))
    assert f"{len(expect[10])} of 300 tenants -> {len(expect[35])} of 300 tenants" in radius.describe()
    assert "more" in radius.describe()


def test_dry_run_shows_the_radius_and_writes_nothing(project, flagops):
    run = flagops("set", "billing", "--state", "on", "--dry-run", root=project.root)
    assert run.code == 0 and "5 of 5 tenants" in run.out and "dry run" in run.err
    assert read(project, "billing") == COMMENTED


# --------------------------------------------------------------------------- kill


def test_kill_turns_off_sets_pct_zero_keeps_scope_and_comments(project, flagops):
    assert flagops("set", "billing", "--state", "rollout", "--pct", "60", root=project.root).code == 0
    before = read(project, "billing")
    run = flagops("kill", "billing", root=project.root)
    assert run.code == 0, run.err
    after = read(project, "billing")
    removed, added = changed_lines(before, after)
    assert removed == ["state: rollout  # was a rollout", "pct: 60"]
    assert added[:3] == ["state: off  # was a rollout", "pct: 0", "killed:"]
    assert {k: data(after)["killed"][k] for k in ("state", "pct")} == {"state": "rollout", "pct": 60}
    assert data(after)["scope"] == data(before)["scope"]
    assert "-> 0 of 5 tenants" in run.out
    assert_comments_kept(after)


def test_kill_of_a_flag_without_pct_adds_none_and_is_idempotent(project, flagops):
    assert flagops("kill", "billing", root=project.root).code == 0
    first = read(project, "billing")
    assert "pct" not in data(first) and data(first)["state"] == "off"
    run = flagops("kill", "billing", root=project.root)
    assert run.code == 0 and "already off" in run.err
    assert read(project, "billing") == first


# --------------------------------------------------------------------------- fmt

MESSY = """\
state: targeted   # who sees it
# the key comes first
key: messy
scope:
  environments:
  - production
  # pilot tenants
  tenantSlugs: [ acme,  delta ]   # two of them
  plans:
    - business
# yaml-language-server: $schema=../schema/flag.schema.json
description:   Messy flag
owner:    ops@dezky.eu
"""

MESSY_FORMATTED = """\
# yaml-language-server: $schema=../schema/flag.schema.json
# the key comes first
key: messy
description: Messy flag
owner: ops@dezky.eu
state: targeted   # who sees it
scope:
  plans: [business]
  # pilot tenants
  tenantSlugs: [acme, delta]   # two of them
  environments: [production]
"""


def test_fmt_normalises_layout_and_keeps_comments(project, flagops):
    project.flag("messy", MESSY)
    run = flagops("fmt", "--check", root=project.root)
    assert run.code == 1 and run.out.splitlines() == ["flags/messy.yaml"]
    assert read(project, "messy") == MESSY  # --check writes nothing
    run = flagops("fmt", root=project.root)
    assert run.code == 0 and run.out.splitlines() == ["flags/messy.yaml"]
    assert read(project, "messy") == MESSY_FORMATTED
    assert read(project, "billing") == COMMENTED  # already canonical
    assert data(MESSY_FORMATTED) == data(MESSY)
    run = flagops("fmt", "--check", root=project.root)
    assert run.code == 0 and run.out == ""


def test_fmt_keeps_block_lists_that_carry_comments_and_is_idempotent():
    text = ("key: x\ndescription: X\nstate: targeted\nscope:\n  tenantSlugs:\n      - acme   # first\n"
            "      - beta\n  plans: [free]\n")
    once = format_flag_text(text)
    assert once == ("# yaml-language-server: $schema=../schema/flag.schema.json\nkey: x\ndescription: X\n"
                    "state: targeted\nscope:\n  plans: [free]\n  tenantSlugs:\n      - acme   # first\n"
                    "      - beta\n")
    assert format_flag_text(once) == once


def test_fmt_reports_unparsable_files_and_exits_1(project, flagops):
    project.flag("broken", "key: broken\ndescription: [unclosed\n")
    run = flagops("fmt", "--check", root=project.root)
    assert run.code == 1
    assert "flags/broken.yaml:" in run.err and "yaml-syntax" in run.err


def test_the_repository_flags_are_formatted(flagops):
    root = Path(__file__).resolve().parent.parent
    run = flagops("fmt", "--check", root=root)
    assert run.code == 0, f"run `flagops fmt`; not formatted:\n{run.out}{run.err}"
    for path in sorted((root / "flags").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert format_flag_text(text, f"flags/{path.name}") == text


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "flags").glob("*.yaml")))
def test_editing_a_repository_flag_changes_only_the_owner_line(repo, flagops, name):
    for inventory in (REPO_ROOT / "tenants").iterdir():
        (repo.root / "tenants" / inventory.name).write_bytes(inventory.read_bytes())
    original = (REPO_ROOT / "flags" / name).read_text(encoding="utf-8")
    (repo.root / "flags" / name).write_text(original, encoding="utf-8")
    run = flagops("set", name[:-5], "--owner", "oncall@dezky.eu", root=repo.root)
    assert run.code == 0, run.err
    removed, added = changed_lines(original, (repo.root / "flags" / name).read_text(encoding="utf-8"))
    assert [line for line in removed if not line.startswith("owner:")] == []
    assert added == ["owner: oncall@dezky.eu"]


def test_an_other_indentation_style_is_kept(project, flagops):
    text = ("key: wide\ndescription: Wide indents\nstate: targeted\nscope:\n    plans:\n      - business\n"
            "      - enterprise   # big ones\n    environments: [production]\n")
    project.flag("wide", text)
    assert flagops("set", "wide", "--add-plan", "starter", "--state", "on", "--yes", root=project.root).code == 0
    after = read(project, "wide")
    assert changed_lines(text, after) == (["state: targeted"], ["state: on", "      - starter"])
    assert "      - enterprise   # big ones\n      - starter\n" in after


def test_removing_every_item_of_a_block_list_leaves_an_empty_flow_list(project, flagops):
    run = flagops("set", "billing", "--remove-tenant", "acme", "--remove-tenant", "delta", root=project.root)
    assert run.code == 0, run.err
    after = read(project, "billing")
    assert "  tenantSlugs: []\n# keep this note at the end\n" in after
    assert data(after)["scope"]["tenantSlugs"] == []
