"""``flagops compile``: validate, then write the bundles, manifest and rules of every environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

from ..app import FORMAT_OPTION, TENANTS_HELP, Env, err, only_inventory, pass_env, print_json, terminal_progress


@click.command(name="compile")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="Environment to compile; repeat for several (default: every one with an inventory).")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: dist under the root].")
@FORMAT_OPTION
@pass_env
def command(env: Env, environments: tuple[str, ...], tenants: Optional[str], out: Optional[Path],
            fmt: str) -> int:
    """Validate, then write one bundle per tenant, a manifest and the rules per environment.

    \b
    OUT/<env>/tenants/<slug>.json  {"environment":..,"flags":{KEY:BOOL},"schemaVersion":1,"tenant":..}
    OUT/<env>/manifest.json        revision, flag keys, sha256 of every bundle
    OUT/<env>/rules.json           every flag normalised, for tenants without a bundle

    Invalid input is refused and the previous output stays as it was.
    """
    from ...compile import compile_project
    from ...errors import FlagopsError

    out_dir = env.path(out) if out is not None else env.root / "dist"
    if tenants is not None and not environments:
        only = only_inventory(env.root)
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
