"""``flagops fmt``: normalise the layout of every flag file, comments kept."""

from __future__ import annotations

import click

from ..app import Env, err, pass_env


@click.command(name="fmt")
@click.option("--check", is_flag=True, help="Only list files that would change; exit 1 if any.")
@pass_env
def command(env: Env, check: bool) -> int:
    """Normalise the layout of every flag file, comments kept.

    Modeline first; fields in the order key, description, owner, expires, state, pct, scope;
    scope axes in the order plans, tenantSlugs, partnerSlugs, environments as flow lists
    [a, b]. CI runs `flagops fmt --check`.
    """
    from ...fmt import format_flags
    from ...errors import EXIT_INVALID
    from ...reporters.validation import text as format_text
    from ...problems import Result

    result = format_flags(env.root, check=check)
    if result.problems:
        click.echo(format_text(Result(result.problems)), nl=False, err=True)
    for rel in result.changed:
        click.echo(rel)
    if check:
        if result.changed:
            err(f"{len(result.changed)} file(s) not formatted; run flagops fmt")
            return EXIT_INVALID
        err(f"{result.unchanged} file(s) already formatted")
    else:
        err(f"reformatted {len(result.changed)} file(s), {result.unchanged} already formatted")
    return EXIT_INVALID if result.problems else 0
