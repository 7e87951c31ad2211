"""``flagops set``: change one flag, validated before it is written, with its impact and risks."""

from __future__ import annotations

from typing import Any, Optional

import click

from ..app import Env, err
from ._edits import change_from, edit_options, run_edit, scope_options


@click.command(name="set")
@click.argument("key")
@click.option("--state", type=click.Choice(["off", "on", "targeted", "rollout"]))
@click.option("--pct", type=click.IntRange(0, 100), help="Rollout percentage, 0..100.")
@scope_options
@click.option("--description", help="New description.")
@click.option("--owner", help='New owner ("" removes it).')
@click.option("--expires", metavar="YYYY-MM-DD", help='New expiry date ("" removes it).')
@edit_options
def command(env: Env, key: str, state: Optional[str], pct: Optional[int], description: Optional[str],
            owner: Optional[str], expires: Optional[str], dry_run: bool, yes: bool, **scope: Any) -> int:
    """Change one flag, validate the result, write it atomically, show the blast radius.

    The result is validated like `flagops validate` before anything is written; an invalid
    result is refused (exit 1) and the file stays as it was. Prints, per environment, how many
    tenants the flag is on for before and after ("N of M tenants", exact) and who flips, and
    the risk checks of `flagops plan`. A risky change needs --yes or a "yes" on a terminal.
    """
    from ...edit import edit_flag

    change = change_from(scope, state=state, pct=pct, description=description, owner=owner, expires=expires)
    run_edit(edit_flag, env.root, key, change, dry_run=dry_run, yes=yes, verb="wrote")
    if dry_run:
        err("dry run: nothing written")
    return 0
