"""``flagops compile``: validate, then write the bundles, manifest and rules of every environment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..app import (FORMAT_OPTION, TENANTS_HELP, Env, err, only_inventory, pass_env, report, report_problems,
                   terminal_progress)


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
    from ...problems import Result
    from ...reporters.compile import summary

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
    report_problems(Result(list(result.validation.warnings)), "text", stream_summary=False, err_stream=True)
    report("compile", fmt, result)
    err(summary(result.environments))
    return 0

