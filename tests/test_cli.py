"""The command line: eval, list, show, compile output streams, --root, help and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flagops import listing
from flagops_client.evaluation import evaluate_all

ROOT = Path(__file__).resolve().parent.parent
FLAGOPS = Path(sys.executable).parent / "flagops"

INVENTORY = """\
- id: t_1
  slug: acme
  plan: enterprise
- id: t_2
  slug: helsinki-design
  plan: business
  partnerSlug: nordcloud-it
- id: t_3
  slug: tiny
  plan: free
"""


@pytest.fixture
def small(repo):  # type: ignore[no-untyped-def]
    repo.tenants("staging", INVENTORY)
    repo.tenants("production", INVENTORY)
    repo.flag("billing", """\
        key: billing
        description: New billing engine
        owner: billing@dezky.eu
        state: targeted
        scope:
          tenantSlugs: [acme, helsinki-design, tiny]
          environments: [staging]
        """)
    repo.flag("jmap", """\
        key: jmap
        description: Native JMAP
        owner: mail@dezky.eu
        expires: 2099-12-31
        state: rollout
        pct: 100
        scope:
          partnerSlugs: [nordcloud-it]
        """)
    repo.flag("zulip", "key: zulip\ndescription: Team chat\nstate: off\n")
    return repo


# --------------------------------------------------------------------------- eval


def test_eval_prints_json_for_one_tenant(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("eval", "helsinki-design", "--env", "staging", root=small.root)
    assert run.code == 0 and run.err == ""
    assert json.loads(run.out) == {"billing": True, "jmap": True, "zulip": False}
    assert list(json.loads(run.out)) == ["billing", "jmap", "zulip"]
    run = flagops("eval", "acme", "--env", "production", root=small.root)
    assert json.loads(run.out) == {"billing": False, "jmap": False, "zulip": False}


def test_eval_equals_the_semantics_on_the_shipped_repository(flagops) -> None:  # type: ignore[no-untyped-def]
    from flagops.validation import load_and_validate

    project, _, _ = load_and_validate(ROOT)
    tenants = project.inventories["production"].tenants
    for tenant in tenants[:5]:
        run = flagops("eval", tenant["slug"], "--env", "production", root=ROOT)
        assert json.loads(run.out) == evaluate_all(project.flag_data(), tenant, "production")


def test_eval_unknown_tenant_suggests(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("eval", "acm", "--env", "staging", root=small.root)
    assert (run.code, run.out) == (1, "")
    assert run.err == 'error: tenant "acm" is not in the staging inventory (did you mean "acme"?)\n'


def test_eval_unknown_environment(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("eval", "acme", "--env", "prod", root=small.root)
    assert run.code == 2 and run.out == ""
    assert 'unknown environment "prod" (did you mean "production"?)' in run.err
    run = flagops("eval", "acme", "--env", "development", root=small.root)
    assert run.code == 1 and 'no tenant inventory for environment "development"' in run.err


def test_eval_refuses_invalid_input(small, flagops) -> None:  # type: ignore[no-untyped-def]
    small.flag("broken", "key: broken\nstate: maybe\n")
    run = flagops("eval", "acme", "--env", "staging", root=small.root)
    assert run.code == 1 and run.out == ""
    assert "flags/broken.yaml:1:1: error: missing required field" in run.err


def test_eval_with_tenants_override(small, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": "x", "slug": "fresh", "plan": "free", "partnerSlug": "nordcloud-it"}]))
    run = flagops("eval", "fresh", "--env", "production", "--tenants", str(export), root=small.root)
    assert run.code == 0, run.err
    assert json.loads(run.out) == {"billing": False, "jmap": True, "zulip": False}


# --------------------------------------------------------------------------- list and show


def test_list_text(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("list", root=small.root)
    assert run.code == 0 and run.err == ""
    lines = run.out.splitlines()
    assert lines[0].split() == ["KEY", "STATE", "PCT", "SCOPE", "OWNER"]
    assert lines[1].split() == ["billing", "targeted", "tenants:", "acme,", "helsinki-design,", "tiny;",
                                "env:", "staging", "billing@dezky.eu"]
    assert lines[2].split() == ["jmap", "rollout", "100%", "partners:", "nordcloud-it", "mail@dezky.eu"]
    assert lines[3].split() == ["zulip", "off", "everyone"]


def test_list_json(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("list", "--format", "json", root=small.root)
    rows = json.loads(run.out)
    assert [r["key"] for r in rows] == ["billing", "jmap", "zulip"]
    assert rows[1] == {"key": "jmap", "description": "Native JMAP", "state": "rollout", "pct": 100,
                       "scope": {"plans": [], "tenantSlugs": [], "partnerSlugs": ["nordcloud-it"],
                                 "environments": []},
                       "owner": "mail@dezky.eu", "expires": "2099-12-31"}


def test_scope_summary_truncates() -> None:
    summary = listing.scope_summary({"plans": ["free", "starter", "business", "enterprise"]})
    assert summary == "plans: free, starter, business +1"
    assert listing.scope_summary(None) == "everyone"


def test_show_text_and_json(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("show", "jmap", root=small.root)
    assert run.code == 0
    assert run.out.splitlines() == [
        "key:         jmap",
        "description: Native JMAP",
        "state:       rollout",
        "pct:         100",
        "scope:       partners: nordcloud-it",
        "owner:       mail@dezky.eu",
        "expires:     2099-12-31",
    ]
    run = flagops("show", "zulip", root=small.root)
    assert "pct" not in run.out and "owner:       -" in run.out
    run = flagops("show", "billing", "--format", "json", root=small.root)
    doc = json.loads(run.out)
    assert doc["key"] == "billing" and doc["scope"]["tenantSlugs"] == ["acme", "helsinki-design", "tiny"]


def test_show_unknown_flag_suggests(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("show", "jmpa", root=small.root)
    assert run.code == 1 and run.out == ""
    assert 'no flag "jmpa" in flags/ (did you mean "jmap"?)' in run.err


# --------------------------------------------------------------------------- compile output streams


def test_compile_stdout_is_only_the_requested_json(small, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = flagops("compile", "--out", str(tmp_path / "out"), "--format", "json", root=small.root)
    assert run.code == 0
    doc = json.loads(run.out)
    assert [e["environment"] for e in doc["environments"]] == ["production", "staging"]
    assert doc["environments"][1]["enabled"] == {"billing": 3, "jmap": 1, "zulip": 0}
    run = flagops("compile", "--out", str(tmp_path / "out"), root=small.root)
    assert run.out == ""


def test_compile_summary_on_stderr(small, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = flagops("compile", "--out", str(tmp_path / "out"), root=small.root)
    lines = run.err.splitlines()
    assert lines[0].startswith(f"production: 3 tenants x 3 flags -> {tmp_path / 'out' / 'production'}")
    assert lines[1].startswith("staging: 3 tenants x 3 flags")
    table = [l.split() for l in lines[2:]]
    assert table == [["enabled", "for", "production", "staging"], ["billing", "0/3", "3/3"],
                     ["jmap", "1/3", "1/3"], ["zulip", "0/3", "0/3"]]


def test_compile_default_out_is_dist_under_the_root(small, flagops) -> None:  # type: ignore[no-untyped-def]
    assert flagops("compile", root=small.root).code == 0
    assert (small.root / "dist" / "staging" / "manifest.json").is_file()


# --------------------------------------------------------------------------- paths


def test_relative_root_and_paths_resolve_from_the_current_directory(small, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "elsewhere"
    work.mkdir()
    rel_root = Path("..") / small.root.relative_to(tmp_path)
    run = flagops("--root", str(rel_root), "compile", "--out", "built", "--env", "staging", cwd=work)
    assert run.code == 0, run.err
    assert (work / "built" / "staging" / "tenants" / "acme.json").is_file()
    assert not (small.root / "built").exists()
    run = flagops("--root", str(rel_root), "eval", "tiny", "--env", "staging", cwd=work)
    assert json.loads(run.out)["billing"] is True


def test_root_defaults_to_the_current_directory(small, flagops) -> None:  # type: ignore[no-untyped-def]
    run = flagops("list", cwd=small.root)
    assert run.code == 0 and "billing" in run.out


# --------------------------------------------------------------------------- usage, help, exit codes


@pytest.mark.parametrize("args", [
    ["nonsense"],
    ["validate", "--format", "xml"],
    ["validate", "--bogus"],
    ["eval", "acme"],
    ["eval"],
    ["show"],
    ["list", "--format", "yaml"],
    ["--root", "/does/not/exist", "list"],
])
def test_usage_errors_exit_2(small, flagops, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    run = flagops(*args, cwd=small.root)
    assert run.code == 2, run
    assert run.out == "" and "Traceback" not in run.err and run.err


@pytest.mark.parametrize("command,needles", [
    ([], ["validate", "compile", "eval", "list", "show", "--root", "Exit codes"]),
    (["validate"], ["--format", "text", "github", "json", "--strict", "--tenants"]),
    (["compile"], ["--env", "--tenants", "--out", "FLAGOPS_TENANTS_TOKEN", "manifest.json", "rules.json"]),
    (["eval"], ["SLUG", "--env"]),
    (["list"], ["--format"]),
    (["show"], ["KEY", "--format"]),
])
def test_help(flagops, command: list[str], needles: list[str]) -> None:  # type: ignore[no-untyped-def]
    run = flagops(*command, "--help")
    assert run.code == 0
    for needle in needles:
        assert needle in run.out, needle


def test_unexpected_error_exits_3_without_traceback(small, flagops, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(listing, "read_flags", explode)
    run = flagops("list", root=small.root)
    assert run.code == 3
    assert "unexpected error: RuntimeError: disk on fire" in run.err and "Traceback" not in run.err
    monkeypatch.setenv("FLAGOPS_DEBUG", "1")
    assert "Traceback" in flagops("list", root=small.root).err


def test_exit_codes_of_the_installed_script(small, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The console script itself, in a subprocess: 0 valid, 1 invalid, 2 usage."""
    if not FLAGOPS.exists():
        pytest.skip("the flagops console script is not installed next to this interpreter")
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLAGOPS), "--root", str(small.root), *args], capture_output=True, text=True,
                              timeout=60)

    assert run("validate").returncode == 0
    assert run("validate", "--format", "nope").returncode == 2
    small.flag("bad", "key: bad\n")
    done = run("validate")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stdout.startswith("flags/bad.yaml:1:1: error: missing required field")


def test_python_dash_m(small) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run([sys.executable, "-m", "flagops", "--root", str(small.root), "eval", "tiny",
                           "--env", "staging"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"billing": True, "jmap": False, "zulip": False}


# --------------------------------------------------------------------------- the lazy command table


def test_the_command_table_matches_the_command_modules() -> None:
    """Every row names a module whose command has that name and that short help, and back."""
    import pkgutil

    import flagops.cli.commands as package
    from flagops.cli.registry import COMMANDS, load

    modules = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
    assert modules == {entry.module for entry in COMMANDS.values()}
    for name, entry in COMMANDS.items():
        command = load(name)
        assert command.name == name
        assert command.get_short_help_str(10**6) == entry.short_help, name


def test_help_lists_every_command_without_importing_one() -> None:
    probe = ("import sys; from flagops.cli import main; main(['--help']); "
             "print(sorted(m for m in sys.modules if m.startswith('flagops.cli.commands.') "
             "or m.split('.')[0] in ('jinja2', 'boto3', 'numpy', 'ruamel', 'git', 'jsonschema', 'yaml')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from flagops.cli.registry import COMMANDS

    listed = done.stdout.split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in listed
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command, subject", [("validate", "validation"), ("stale", "stale"), ("refs", "refs"),
                                              ("compile", "compile")])
def test_format_choices_are_the_named_reporters(command: str, subject: str) -> None:
    from flagops import reporters
    from flagops.cli.registry import load

    option = next(p for p in load(command).params if p.name == "fmt")
    assert tuple(option.type.choices) == reporters.formats(subject)  # type: ignore[attr-defined]


def test_refs_github_annotates_unknown_keys_and_unreferenced_flags(small, flagops, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.ts").write_text("if (flags.isEnabled('biling')) {}\nuse('jmap')\n", encoding="utf-8")
    run = flagops("refs", str(src), "--format", "github", root=small.root)
    assert run.code == 0
    assert run.out.splitlines() == [
        f"::warning file={src / 'app.ts'},line=1,title=flagops refs%3A unknown key::"
        '"biling" is not a flag (did you mean "billing"?)',
        "::warning file=flags/billing.yaml,line=1,title=flagops refs%3A unreferenced flag::no code references billing",
        "::warning file=flags/zulip.yaml,line=1,title=flagops refs%3A unreferenced flag::no code references zulip"]
