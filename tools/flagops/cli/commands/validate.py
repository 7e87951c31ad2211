"""``flagops validate``: check every flag and inventory, report every problem."""

from __future__ import annotations

from typing import Optional

import click

from ..app import TENANTS_HELP, Env, only_inventory, pass_env, report_problems


@click.command(name="validate")
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="text: path:line:col: severity: message (rule); github: "
              "workflow annotations; json: one document.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@click.option("--env", "environment", metavar="ENV", help="The environment --tenants replaces.")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@pass_env
def command(env: Env, fmt: str, strict: bool, tenants: Optional[str], environment: Optional[str],
            paths: tuple[str, ...]) -> int:
    """Check every file under flags/ and tenants/ and report all problems.

    With PATHs (what pre-commit passes: the files a commit holds), report only the problems
    of those files and of what they reference (the inventories a flag's slugs name, the flags
    that name an inventory's tenants; a schema file means everything).

    Problems are sorted by file and line. Errors (schema violations, a key that differs from
    its file name, unknown tenants or partners, stray files) exit 1; warnings (a targeted flag
    with an empty scope, an ignored scope or pct, a past expiry) exit 0 unless --strict.
    """
    from ...errors import EXIT_INVALID
    from ...validation import load_and_validate

    if tenants is not None and environment is None:
        environment = only_inventory(env.root)
    _, _, result = load_and_validate(env.root, tenants=tenants, environment=environment, cwd=env.cwd)
    if paths:
        from ...validation import repository_paths, restrict_to

        result = restrict_to(result, repository_paths(env.root, [env.path(p) for p in paths]))
    # In json, "valid" agrees with the exit code: --strict counts warnings there too.
    report_problems(result, fmt, **({"strict": strict} if fmt == "json" else {}))
    return 0 if result.ok(strict=strict) else EXIT_INVALID
