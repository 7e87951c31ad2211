"""validate, compile, eval, list and show."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from flagops_client.evaluation import evaluate_all

from ..compile import compile_project
from ..errors import EXIT_INVALID, FlagopsError, InvalidInputError, UsageError
from ..formatters import format_json
from ..loading import INVENTORY_SUFFIXES, TENANTS_DIR
from ..listing import find_flag, flag_summaries, scope_summary
from ..validation import did_you_mean, load_and_validate
from ._app import FORMAT_OPTION, Env, cli, err, pass_env, print_json, report_problems, terminal_progress

TENANTS_HELP = ("Replace the inventory of the --env environment with this YAML/JSON file or http(s) URL "
                "(bearer token from FLAGOPS_TENANTS_TOKEN).")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="text: path:line:col: severity: message (rule); github: "
              "workflow annotations; json: one document.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@click.option("--env", "environment", metavar="ENV", help="The environment --tenants replaces.")
@pass_env
def validate(env: Env, fmt: str, strict: bool, tenants: Optional[str], environment: Optional[str]) -> int:
    """Check every file under flags/ and tenants/ and report all problems.

    Problems are sorted by file and line. Errors (schema violations, a key that differs from
    its file name, unknown tenants or partners, stray files) exit 1; warnings (a targeted flag
    with an empty scope, an ignored scope or pct, a past expiry) exit 0 unless --strict.
    """
    if tenants is not None and environment is None:
        environment = _only_inventory(env.root)
    _, _, result = load_and_validate(env.root, tenants=tenants, environment=environment, cwd=env.cwd)
    if fmt == "json":
        click.echo(format_json(result, strict=strict), nl=False)  # "valid" agrees with the exit code
    else:
        report_problems(result, fmt)
    return 0 if result.ok(strict=strict) else EXIT_INVALID


@cli.command(name="compile")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="Environment to compile; repeat for several (default: every one with an inventory).")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: dist under the root].")
@FORMAT_OPTION
@pass_env
def compile_cmd(env: Env, environments: tuple[str, ...], tenants: Optional[str], out: Optional[Path],
                fmt: str) -> int:
    """Validate, then write one bundle per tenant, a manifest and the rules per environment.

    \b
    OUT/<env>/tenants/<slug>.json  {"environment":..,"flags":{KEY:BOOL},"schemaVersion":1,"tenant":..}
    OUT/<env>/manifest.json        revision, flag keys, sha256 of every bundle
    OUT/<env>/rules.json           every flag normalised, for tenants without a bundle

    Invalid input is refused and the previous output stays as it was.
    """
    out_dir = env.path(out) if out is not None else env.root / "dist"
    if tenants is not None and not environments:
        only = _only_inventory(env.root)
        environments = (only,) if only else environments
    try:
        result = compile_project(env.root, environments=environments, out=out_dir, tenants=tenants,
                                 cwd=env.cwd, progress=terminal_progress("compile"))
    except OSError as exc:  # an output directory that cannot be written is the operator's to fix
        where = exc.filename or out_dir
        raise FlagopsError(f"cannot write the compiled output to {where}: {exc.strerror or exc}",
                           hint="choose a writable --out directory") from exc
    for problem in result.validation.warnings:
        err(f"{problem.path}:{problem.line}:{problem.col}: warning: {problem.message} ({problem.rule})")
    if fmt == "json":
        print_json({"out": str(result.out), "environments": [e.to_dict() for e in result.environments]})
    err(compile_summary(result.environments))
    return 0


def _only_inventory(root: Path) -> Optional[str]:
    """The environment of the repository's one inventory, if it has exactly one.

    ``--tenants`` replaces one environment's inventory; when the repository holds only one,
    that is the environment meant, and ``--env`` may be left out.
    """
    directory = root / TENANTS_DIR
    if not directory.is_dir():
        return None
    stems = {p.stem for p in directory.iterdir() if p.is_file() and p.suffix in INVENTORY_SUFFIXES}
    return next(iter(stems)) if len(stems) == 1 else None


def compile_summary(environments: list[Any]) -> str:
    """The stderr summary of a compile: one line per environment, then tenants on per flag."""
    lines = []
    for e in environments:
        on = sum(1 for v in e.enabled.values() if v)
        lines.append(f"{e.environment}: {e.tenants} tenants x {e.flags} flags -> {e.path} "
                     f"({on} flag(s) on for someone; revision {e.revision or 'none'})")
    keys = sorted({k for e in environments for k in e.enabled})
    if keys and environments:
        headers = ["enabled for", *(e.environment for e in environments)]
        rows = [[k, *(f"{e.enabled.get(k, 0)}/{e.tenants}" for e in environments)] for k in keys]
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            lines.append("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _valid_project(env: Env, tenants: Optional[str], environment: Optional[str]):
    project, schemas, result = load_and_validate(env.root, tenants=tenants, environment=environment, cwd=env.cwd)
    if result.errors:
        raise InvalidInputError(f"{len(result.errors)} error(s) in the input; fix them first "
                                "(flagops validate)", result.problems)
    return project, schemas


@cli.command(name="eval")
@click.argument("slug")
@click.option("--env", "environment", required=True, metavar="ENV", help="Environment to evaluate in.")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@pass_env
def eval_cmd(env: Env, slug: str, environment: str, tenants: Optional[str]) -> int:
    """Print every flag's value for one tenant as JSON: {KEY: BOOL}."""
    project, schemas = _valid_project(env, tenants, environment if tenants else None)
    if environment not in schemas.environments:
        raise UsageError(f'unknown environment "{environment}"{did_you_mean(environment, schemas.environments)}; '
                         f'known: {", ".join(schemas.environments)}')
    inventory = project.inventories.get(environment)
    if inventory is None:
        raise FlagopsError(f'no tenant inventory for environment "{environment}"'
                           + (f"; inventories: {', '.join(sorted(project.inventories))}" if project.inventories else ""),
                           hint=f"add tenants/{environment}.yaml or pass --tenants")
    tenant = next((t for t in inventory.tenants if t["slug"] == slug), None)
    if tenant is None:
        raise FlagopsError(f'tenant "{slug}" is not in the {environment} inventory'
                           f"{did_you_mean(slug, [t['slug'] for t in inventory.tenants])}")
    print_json(evaluate_all(project.flag_data(), tenant, environment))
    return 0


@cli.command(name="list")
@FORMAT_OPTION
@pass_env
def list_cmd(env: Env, fmt: str) -> int:
    """Every flag: key, state, pct, a one-line scope summary and owner."""
    rows = flag_summaries(env.root)
    if fmt == "json":
        print_json(rows)
        return 0
    headers = ["KEY", "STATE", "PCT", "SCOPE", "OWNER"]
    table = [[r["key"], r["state"], "" if r["state"] != "rollout" else f"{r['pct']}%",
              _scope_cell(r), r.get("owner") or ""] for r in rows]
    widths = [max(len(h), *(len(str(row[i])) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    for row in [headers, *table]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _scope_cell(flag: dict[str, Any]) -> str:
    """The scope as it acts: a targeted flag with an empty scope reaches nobody, not everyone."""
    summary = scope_summary(flag.get("scope"))
    if flag.get("state") == "targeted" and summary == "everyone":
        return "nobody (empty scope)"
    return summary


@cli.command()
@click.argument("key")
@FORMAT_OPTION
@pass_env
def show(env: Env, key: str, fmt: str) -> int:
    """One flag's definition."""
    flag = find_flag(env.root, key)
    if fmt == "json":
        print_json(flag)
        return 0
    lines: list[tuple[str, Any]] = [("key", flag["key"]), ("description", flag.get("description")),
                                    ("state", flag.get("state"))]
    if flag.get("state") == "rollout" or flag.get("pct") is not None:
        lines.append(("pct", "-" if flag.get("pct") is None else flag["pct"]))
    lines += [("scope", _scope_cell(flag)), ("owner", flag.get("owner") or "-"),
              ("expires", flag.get("expires") or "-")]
    for name, value in lines:
        click.echo(f"{name + ':':<13}{value}")
    return 0
