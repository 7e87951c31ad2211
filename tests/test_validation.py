"""flagops validate: every problem of a mixed directory in one run, exact output formats, warnings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flagops.schemas import Schemas
from flagops.validation import did_you_mean, load_and_validate

ROOT = Path(__file__).resolve().parent.parent

INVENTORY = """\
- id: t_1
  slug: acme
  plan: enterprise
- id: t_2
  slug: helsinki-design
  plan: business
  partnerSlug: nordcloud-it
"""


def mixed_repo(repo) -> None:  # type: ignore[no-untyped-def]
    """Two valid flags, four broken ones, a stray file, a valid and a broken inventory."""
    repo.tenants("development", INVENTORY)
    repo.tenants("staging", """\
        - id: t_1
          slug: acme
          plan: gold
        - id: t_1
          slug: beta
          plan: free
        """)
    repo.flag("good_one", """\
        key: good_one
        description: A valid rollout
        state: rollout
        pct: 10
        scope:
          plans: [business]
        """)
    repo.flag("good_two", """\
        key: good_two
        description: A valid targeted flag
        state: targeted
        scope:
          tenantSlugs: [acme]
          partnerSlugs: [nordcloud-it]
        """)
    repo.flag("bad_pct", """\
        key: bad_pct
        description: Out of range
        state: rollout
        pct: 150
        colour: blue
        """)
    repo.flag("bad_name", """\
        key: other_name
        description: Wrong file name
        state: targeted
        scope:
          tenantSlugs: [acm]
        """)
    repo.flag("bad_yaml", """\
        key: bad_yaml
        description: [unclosed
        state: off
        """)
    repo.flag("warn_only", """\
        key: warn_only
        description: Only warnings
        state: off
        pct: 5
        """)
    (repo.root / "flags" / "legacy.yml").write_text("key: legacy\n")


# The allowed fields, in the schema's order (the schema may gain fields).
ALLOWED = ", ".join(json.loads((ROOT / "schema" / "flag.schema.json").read_text(encoding="utf-8"))["properties"])
EXPECTED_TEXT = f"""\
flags/bad_name.yaml:1:6: error: key "other_name" does not match the file name bad_name.yaml; rename the file to other_name.yaml or set key: bad_name (key-filename)
flags/bad_name.yaml:5:17: error: tenant "acm" is in no tenant inventory (did you mean "acme"?) (unknown-tenant)
flags/bad_pct.yaml:4:6: error: pct 150 is above the maximum of 100 (schema)
flags/bad_pct.yaml:5:1: error: unknown field "colour"; allowed: {ALLOWED} (schema)
flags/bad_yaml.yaml:3:6: error: YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence) (yaml-syntax)
flags/legacy.yml:1:1: error: not a .yaml flag file: rename it to legacy.yaml (stray-file)
flags/warn_only.yaml:4:1: warning: pct is ignored for an off flag; it only applies to rollout (ignored-pct)
tenants/staging.yaml:3:9: error: [0].plan "gold" is not one of: free, starter, business, enterprise (schema)
tenants/staging.yaml:4:7: error: tenant id "t_1" is already used on line 1; every tenant needs its own id (duplicate-tenant-id)
"""


def _expected_problems() -> list[dict[str, object]]:
    out = []
    for line in EXPECTED_TEXT.splitlines():
        path, number, col, rest = line.split(":", 3)
        severity, text = rest.strip().split(": ", 1)
        message, rule = text[:-1].rsplit(" (", 1)
        out.append({"path": path, "line": int(number), "col": int(col), "rule": rule, "message": message,
                    "severity": severity})
    return out


def test_mixed_directory_text(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    mixed_repo(repo)
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out == EXPECTED_TEXT
    assert run.err == "8 errors, 1 warning\n"
    assert "good_one" not in run.out and "good_two" not in run.out and "development" not in run.out


def test_mixed_directory_is_sorted_by_path_and_line(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    mixed_repo(repo)
    lines = flagops("validate", root=repo.root).out.splitlines()
    keys = [(l.split(":")[0], int(l.split(":")[1]), int(l.split(":")[2])) for l in lines]
    assert keys == sorted(keys)


def test_mixed_directory_github(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    mixed_repo(repo)
    run = flagops("validate", "--format", "github", root=repo.root)
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == ('::error file=flags/bad_name.yaml,line=1,col=6::key "other_name" '
                        "does not match the file name bad_name.yaml; rename the file to other_name.yaml or set key: "
                        "bad_name (key-filename)")
    assert lines[2] == ("::error file=flags/bad_pct.yaml,line=4,col=6::"
                        "pct 150 is above the maximum of 100 (schema)")
    assert lines[6] == ("::warning file=flags/warn_only.yaml,line=4,col=1::"
                        "pct is ignored for an off flag; it only applies to rollout (ignored-pct)")
    assert run.out == "".join(f"::{p['severity']} file={p['path']},line={p['line']},col={p['col']}::"
                              f"{p['message']} ({p['rule']})\n" for p in _expected_problems())
    assert run.err == "8 errors, 1 warning\n"


def test_mixed_directory_json(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    mixed_repo(repo)
    run = flagops("validate", "--format", "json", root=repo.root)
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["valid"] is False and doc["errors"] == 8 and doc["warnings"] == 1
    assert doc["problems"][2] == {"path": "flags/bad_pct.yaml", "line": 4, "col": 6, "rule": "schema",
                                  "message": "pct 150 is above the maximum of 100", "severity": "error"}
    assert doc == {"valid": False, "errors": 8, "warnings": 1, "problems": _expected_problems()}
    assert run.err == ""


def test_github_escaping(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("development", INVENTORY)
    repo.flag("a_flag", "key: a_flag\ndescription: d\nstate: off\nweird: 1\n", name="a,b%c.yaml")
    run = flagops("validate", "--format", "github", root=repo.root)
    assert run.out.startswith("::error file=flags/a%2Cb%25c.yaml,line=1,col=6::key ")


def test_valid_repository_raises_nothing(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("development", INVENTORY)
    repo.flag("ok_flag", "key: ok_flag\ndescription: d\nstate: on\n")
    run = flagops("validate", root=repo.root)
    assert (run.code, run.out, run.err) == (0, "", "all files valid\n")
    run = flagops("validate", "--format", "json", root=repo.root)
    assert json.loads(run.out) == {"valid": True, "errors": 0, "warnings": 0, "problems": []}


def test_warnings_exit_zero_unless_strict(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("development", INVENTORY)
    repo.flag("w_targeted", "key: w_targeted\ndescription: d\nstate: targeted\n")
    repo.flag("w_scope", "key: w_scope\ndescription: d\nstate: off\nscope:\n  plans: [free]\n")
    repo.flag("w_expired", "key: w_expired\ndescription: d\nstate: off\nexpires: 2001-01-01\n")
    run = flagops("validate", root=repo.root)
    assert run.code == 0
    assert [l.split(" (")[-1] for l in run.out.splitlines()] == ["expired)", "ignored-scope)",
                                                                  "targeted-empty-scope)"]
    assert all(": warning: " in l for l in run.out.splitlines())
    assert run.err == "0 errors, 3 warnings\n"
    strict = flagops("validate", "--strict", root=repo.root)
    assert strict.code == 1 and strict.out == run.out
    assert json.loads(flagops("validate", "--format", "json", root=repo.root).out)["valid"] is True
    strict = flagops("validate", "--format", "json", "--strict", root=repo.root)
    assert strict.code == 1 and json.loads(strict.out)["valid"] is False


def test_unknown_slugs_against_tenants_override_are_warnings(repo, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("production", INVENTORY)
    repo.flag("pilot", "key: pilot\ndescription: d\nstate: targeted\nscope:\n  tenantSlugs: [acme, gone]\n")
    assert flagops("validate", root=repo.root).code == 1
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": "t_1", "slug": "acme", "plan": "free"}]))
    run = flagops("validate", "--tenants", str(export), "--env", "production", root=repo.root)
    assert run.code == 0
    assert run.out == ('flags/pilot.yaml:5:23: warning: tenant "gone" is in no tenant inventory '
                       "(unknown-tenant)\n")
    assert flagops("validate", "--tenants", str(export), "--env", "production", "--strict",
                   root=repo.root).code == 1


def test_tenants_override_without_env_is_a_usage_error(repo, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo.flag("ok_flag", "key: ok_flag\ndescription: d\nstate: on\n")
    run = flagops("validate", "--tenants", "x.json", root=repo.root)
    assert run.code == 2 and "--env" in run.err and "Traceback" not in run.err


def test_unknown_environment_inventory(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("qa", INVENTORY)
    repo.tenants("prod", INVENTORY, ext="json")
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out.splitlines()[0].startswith('tenants/prod.json:1:1: error: "prod" is not an environment')
    assert run.out.splitlines()[1].startswith('tenants/qa.yaml:1:1: error: "qa" is not an environment')


def test_bad_file_types_never_raise(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    """Every kind of broken file at once: one run, every file reported, no traceback."""
    repo.tenants("development", INVENTORY)
    flags = repo.root / "flags"
    (flags / "binary.yaml").write_bytes(bytes(range(256)))
    (flags / "huge.yaml").write_bytes(b"key: huge\n" + b"#" * (1024 * 1024))
    (flags / "empty.yaml").write_bytes(b"")
    (flags / "list.yaml").write_text("[1, 2]\n")
    (flags / "scalar.yaml").write_text("42\n")
    (flags / "null_values.yaml").write_text("key:\ndescription:\nstate:\npct:\nscope:\n")
    (flags / "deep.yaml").write_text("key: deep\ndescription: d\nstate: targeted\nscope:\n  plans: [[free]]\n")
    (flags / "numbers.yaml").write_text("key: 12\ndescription: 3.5\nstate: 1\nscope:\n  plans: free\n")
    (flags / "complex_key.yaml").write_text("? [a]\n: b\nkey: complex_key\n")
    (flags / "multi.yaml").write_text("key: multi\n---\nkey: again\n")
    run = flagops("validate", root=repo.root)
    assert run.code == 1 and "Traceback" not in run.err and "unexpected" not in run.err
    paths = {l.split(":")[0] for l in run.out.splitlines()}
    assert paths == {f"flags/{p.name}" for p in flags.iterdir()}
    lines = run.out.splitlines()
    assert "flags/huge.yaml:1:1: error: the file is 1048586 bytes; it must stay under 1048576 bytes " \
           "(file-too-large)" in lines
    assert "flags/binary.yaml:2:118: error: the file is not valid UTF-8 (byte 0x80); save it as UTF-8 " \
           "(encoding)" in lines
    assert "flags/multi.yaml:2:1: error: YAML syntax error: expected a single document in the stream, " \
           "but found another document (yaml-syntax)" in lines


def test_the_shipped_repository_is_valid(flagops) -> None:  # type: ignore[no-untyped-def]
    """Whatever operators keep in flags/ and tenants/: valid, one model per file, no tenant twice."""
    run = flagops("validate", root=ROOT)
    assert (run.code, run.out) == (0, ""), run.err
    project, schemas, result = load_and_validate(ROOT)
    assert not result.errors
    assert set(project.flag_models()) == {p.stem for p in (ROOT / "flags").glob("*.yaml")}
    assert set(project.inventories) <= set(schemas.environments)
    for inventory in project.inventories.values():
        tenants = inventory.tenant_models()
        assert len({t.id for t in tenants}) == len({t.slug for t in tenants}) == len(tenants)


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ops", "GIT_AUTHOR_EMAIL": "ops@dezky.eu",
           "GIT_COMMITTER_NAME": "Ops", "GIT_COMMITTER_EMAIL": "ops@dezky.eu"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_an_operators_change_passes_in_a_clone(flagops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The operator's path on a copy of this repository's data: a new flag and a new tenant."""
    origin = tmp_path / "origin"
    for part in ("flags", "tenants", "schema"):
        shutil.copytree(ROOT / part, origin / part)
    _git(origin, "init", "-q", "-b", "main")
    _git(origin, "add", ".")
    _git(origin, "commit", "-q", "-m", "Shipped data")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    _git(clone, "switch", "-q", "-c", "gdpr-v3")

    # Names the shipped data does not hold yet, whatever it holds.
    key = next(k for k in (f"gdpr_export_v{n}" for n in range(3, 1000)) if not (clone / "flags" / f"{k}.yaml").exists())
    slugs = {t.slug for inv in load_and_validate(clone)[0].inventories.values() for t in inv.tenant_models()}
    slug = next(s for s in (f"zz-operator-{n}" for n in range(1000)) if s not in slugs)
    assert flagops("new", key, "--description", "GDPR export, next version", "--owner",
                   "platform@dezky.eu", root=clone).code == 0
    inventories = sorted((clone / "tenants").glob("*.yaml"))
    assert inventories, "the shipped data has no YAML inventory to append to"
    inventory = inventories[0]
    env = inventory.stem
    with inventory.open("a", encoding="utf-8") as fh:
        fh.write(f"- id: t_{slug}\n  slug: {slug}\n  plan: business\n")
    run = flagops("set", key, "--state", "targeted", "--add-tenant", slug,
                  root=clone)
    assert run.code == 0, run.err
    _git(clone, "add", ".")
    _git(clone, "commit", "-q", "-m", "GDPR export for the new tenant")

    run = flagops("validate", root=clone)
    assert (run.code, run.out) == (0, ""), run.err
    run = flagops("compile", "--out", str(tmp_path / "dist"), root=clone)
    assert run.code == 0, run.err
    bundle = json.loads((tmp_path / "dist" / env / "tenants" / f"{slug}.json").read_text())
    assert bundle["flags"][key] is True
    run = flagops("plan", "--base", "origin/main", "--format", "json", root=clone)
    assert run.code == 0, run.err
    assert slug in run.out and key in run.out


# --------------------------------------------------------------------------- schemas


def test_schemas_are_closed_and_identified() -> None:
    for name in ("flag", "tenants", "bundle", "manifest", "rules"):
        doc = json.loads((ROOT / "schema" / f"{name}.schema.json").read_text())
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"].endswith(f"/{name}.schema.json")
    flag = json.loads((ROOT / "schema" / "flag.schema.json").read_text())
    tenants = json.loads((ROOT / "schema" / "tenants.schema.json").read_text())
    assert flag["additionalProperties"] is False and flag["$defs"]["scope"]["additionalProperties"] is False
    assert tenants["$defs"]["tenant"]["additionalProperties"] is False
    # the vocabulary is defined once and reused
    assert tenants["$defs"]["tenant"]["properties"]["plan"] == {"$ref": "flag.schema.json#/$defs/plan"}


def test_adding_a_plan_is_one_line(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    schema_dir = repo.root / "schema"
    shutil.copytree(ROOT / "schema", schema_dir)
    path = schema_dir / "flag.schema.json"
    text = path.read_text()
    old = '"enum": ["free", "starter", "business", "enterprise"]'
    assert text.count(old) == 1
    path.write_text(text.replace(old, '"enum": ["free", "starter", "business", "enterprise", "platinum"]'))
    repo.tenants("development", "- id: t_1\n  slug: acme\n  plan: platinum\n")
    repo.flag("vip", "key: vip\ndescription: d\nstate: targeted\nscope:\n  plans: [platinum]\n")
    assert Schemas.load(schema_dir).plans[-1] == "platinum"
    run = flagops("validate", root=repo.root)
    assert (run.code, run.out) == (0, "")
    run = flagops("eval", "acme", "--env", "development", root=repo.root)
    assert json.loads(run.out) == {"vip": True}


@pytest.mark.parametrize("word,candidates,hint", [
    ("acm", ["acme", "beta"], ' (did you mean "acme"?)'),
    ("prod", ["development", "staging", "production"], ' (did you mean "production"?)'),
    ("zzz", ["acme"], ""),
    ("x", [], ""),
])
def test_did_you_mean(word: str, candidates: list[str], hint: str) -> None:
    assert did_you_mean(word, candidates) == hint


def test_unknown_partner_suggests_the_closest(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("development", INVENTORY)
    repo.tenants("staging", "- id: s_1\n  slug: stage-one\n  plan: free\n  partnerSlug: alpine-msp\n")
    repo.flag("partners", "key: partners\ndescription: d\nstate: targeted\nscope:\n"
                          "  partnerSlugs: [nordcloud, alpine-msp]\n  tenantSlugs: [stage-one]\n")
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out == ('flags/partners.yaml:5:18: error: partner "nordcloud" is in no tenant inventory '
                       '(did you mean "nordcloud-it"?) (unknown-partner)\n')


def test_github_message_escaping() -> None:
    from flagops.reporters.validation import github as format_github
    from flagops.problems import Problem, Result

    out = format_github(Result([Problem("flags/a,b:c.yaml", 3, 2, "schema", "50% done\r\nnext", "warning")]))
    assert out == "::warning file=flags/a%2Cb%3Ac.yaml,line=3,col=2::50%25 done%0D%0Anext (schema)\n"


@pytest.mark.parametrize("pattern,value,ok", [
    ("^[a-z0-9][a-z0-9-]{0,62}$", "acme", True),
    ("^[a-z0-9][a-z0-9-]{0,62}$", "acme\n", False),
    ("^[a-z][a-z0-9_]{1,63}$", "flag_key\n", False),
    ("^sha256:[0-9a-f]{64}$", "sha256:" + "a" * 64 + "\n", False),
    ("^[$]x$", "$x", True),
    (r"^a\$$", "a$", True),
    (r"\S", " x ", True),
])
def test_patterns_anchor_like_json_schema(pattern: str, value: str, ok: bool) -> None:
    from flagops.schemas import ecma_pattern

    assert bool(ecma_pattern(pattern).search(value)) is ok


def test_a_newline_never_passes_as_a_slug_or_key(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    repo.tenants("staging", '[{"id": "1", "slug": "acme", "plan": "free"}]', ext="json")
    repo.flag("nl", 'key: nl\ndescription: d\nstate: targeted\nscope:\n  tenantSlugs: ["acme\\n"]\n')
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out == ('flags/nl.yaml:5:17: error: scope.tenantSlugs[0] "acme\\n" does not match the pattern '
                       "^[a-z0-9][a-z0-9-]{0,62}$ (schema)\n")


def test_validation_parses_each_valid_flag_once_into_the_model(repo) -> None:  # type: ignore[no-untyped-def]
    from flagops.matrix import normalise_flag
    from flagops.model import Flag, Scope, Tenant

    mixed_repo(repo)
    project, _, result = load_and_validate(repo.root)
    assert result.errors
    models = project.flag_models()
    # Broken files are left out; the valid ones are typed, frozen and normalised once.
    broken = {p.path for p in result.errors}
    assert sorted(models) == sorted(s for s, d in project.flags.items() if d.path not in broken)
    assert {"good_one", "good_two"} <= set(models) and "bad_pct" not in models
    one, two = models["good_one"], models["good_two"]
    assert one == Flag(key="good_one", description="A valid rollout", state="rollout", pct=10,
                       scope=Scope(plans=("business",)))
    assert two.pct is None and two.rollout_pct == 0 and two.scope.partner_slugs == ("nordcloud-it",)
    with pytest.raises(AttributeError):
        one.pct = 20  # type: ignore[misc]
    for stem, flag in models.items():
        assert flag.as_rule() == normalise_flag(project.flags[stem].data)
    tenants = project.inventories["development"].tenant_models()
    assert tenants[1] == Tenant("t_2", "helsinki-design", "business", "nordcloud-it")
    assert [two.evaluate(t.as_mapping(), "development") for t in tenants] == [False, False]
    everyone = Flag.from_mapping({**project.flags["good_one"].data, "pct": 100})
    assert [everyone.evaluate(t.as_mapping(), "development") for t in tenants] == [False, True]


@pytest.mark.parametrize("data", [
    {"key": "a_b", "description": "x", "state": "maybe"},
    {"key": "a_b", "description": "x", "state": "rollout"},
    {"key": "a_b", "description": "x", "state": "rollout", "pct": True},
    {"key": "a_b", "description": "x", "state": "on", "scope": {"plans": "free"}},
    {"key": "a_b", "description": "x", "state": "on", "killed": ["no"]},
])
def test_the_model_refuses_what_validation_refuses(data: dict) -> None:
    from flagops.model import Flag

    with pytest.raises(ValueError):
        Flag.from_mapping(data)


def test_a_kill_record_is_read_only_and_round_trips() -> None:
    from flagops.model import Flag

    data = {"key": "a_b", "description": "x", "state": "off", "pct": 0,
            "killed": {"reason": "errors", "at": "2026-12-01T21:00:00Z", "author": "ops@dezky.eu",
                       "previous": {"state": "rollout", "pct": 40}}}
    flag = Flag.from_mapping(data)
    assert flag.killed is not None and flag.killed["previous"]["pct"] == 40
    with pytest.raises(TypeError):
        flag.killed["reason"] = "other"  # type: ignore[index]
    assert flag.to_dict() == data
    assert hash(flag) == hash(Flag.from_mapping({**data, "killed": None}))


def test_the_fast_inventory_check_follows_the_repositorys_tenants_schema(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    """A tenants schema the fast check does not mirror (here: name required) is checked in full."""
    repo.tenants("production", INVENTORY)
    assert flagops("validate", root=repo.root).code == 0
    schema_dir = repo.root / "schema"
    shutil.copytree(ROOT / "schema", schema_dir)
    assert Schemas.load(schema_dir).fast_tenants_check  # the shipped schema takes the fast path
    path = schema_dir / "tenants.schema.json"
    tenants = json.loads(path.read_text(encoding="utf-8"))
    tenants["$defs"]["tenant"]["required"].append("name")
    path.write_text(json.dumps(tenants), encoding="utf-8")
    assert not Schemas.load(schema_dir).fast_tenants_check
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out.splitlines() == [
        'tenants/production.yaml:1:3: error: missing required field "name" in [0] (schema)',
        'tenants/production.yaml:4:3: error: missing required field "name" in [1] (schema)']


def test_the_fast_flag_check_follows_the_repositorys_flag_schema(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    """A flag schema the fast check does not mirror (a longer description, a new plan) is read from the schema."""
    repo.tenants("production", INVENTORY)
    repo.flag("short", "key: short\ndescription: Tiny\nstate: targeted\nscope:\n  plans: [gold]\n")
    schema_dir = repo.root / "schema"
    shutil.copytree(ROOT / "schema", schema_dir)
    assert Schemas.load(schema_dir).fast_flag_check is not None  # the shipped schema takes the fast path
    path = schema_dir / "flag.schema.json"
    flag = json.loads(path.read_text(encoding="utf-8"))
    flag["$defs"]["plan"]["enum"].append("gold")  # the vocabulary is read from the schema: still fast
    path.write_text(json.dumps(flag), encoding="utf-8")
    assert Schemas.load(schema_dir).fast_flag_check is not None
    assert flagops("validate", root=repo.root).code == 0
    nested = json.loads(json.dumps(flag))
    nested["$defs"]["scope"]["$id"] = "tenants.schema.json"  # below the root, $id changes what $ref names
    path.write_text(json.dumps(nested), encoding="utf-8")
    assert Schemas.load(schema_dir).fast_flag_check is None
    flag["properties"]["description"]["minLength"] = 10  # a property named like an annotation
    path.write_text(json.dumps(flag), encoding="utf-8")
    assert Schemas.load(schema_dir).fast_flag_check is None
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out.splitlines() == ["flags/short.yaml:2:14: error: description needs at least 10 character(s) (schema)"]


def test_ids_and_slugs_must_be_nfc(repo, flagops) -> None:  # type: ignore[no-untyped-def]
    nfd = "t_cafe\u0301"
    repo.tenants("production", f"- id: t_caf\u00e9\n  slug: acme\n  plan: free\n- id: {nfd}\n  slug: beta\n  plan: free\n")
    run = flagops("validate", root=repo.root)
    assert run.code == 1
    assert run.out == (f'tenants/production.yaml:4:7: error: tenant id "{nfd}" is not in Unicode NFC; the same '
                       'characters in NFC are "t_caf\u00e9" (export ids and slugs NFC-normalised) (not-nfc)\n')
