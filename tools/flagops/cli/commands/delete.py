"""``flagops delete``: remove a flag file, with a warning while the flag is still on."""

from __future__ import annotations

import click

from ..app import Env, err
from ._edits import edit_options, run_edit


@click.command(name="delete")
@click.argument("key")
@edit_options
def command(env: Env, key: str, dry_run: bool, yes: bool) -> int:
    """Remove flags/KEY.yaml; its history stays in git (flagops history KEY).

    A flag that is still on for some tenant warns "still on for N tenants" and is risky: it
    needs --yes or a "yes" on a terminal. Remove the flag's uses in code first (flagops refs).
    """
    from ...edit import delete_flag

    edit = run_edit(delete_flag, env.root, key, dry_run=dry_run, yes=yes, verb="deleted")
    if dry_run:
        err("dry run: nothing removed")
    elif edit.written:
        err(f"its history stays in git: flagops history {key}")
    return 0
