"""``flagops restore``: undo a kill, from the killed: record it left in the flag file."""

from __future__ import annotations

import click

from ..app import Env, err
from ._edits import edit_options, run_edit


@click.command(name="restore")
@click.argument("key")
@edit_options
def command(env: Env, key: str, dry_run: bool, yes: bool) -> int:
    """Bring a killed flag back: the state and pct its killed: block recorded; the block removed.

    Refused (exit 1) when the flag has no killed: block. A risky restore (every tenant of an
    environment, a rollout jumping by more than 50 points) needs --yes or a "yes" on a terminal.
    """
    from ...edit import restore_flag

    run_edit(restore_flag, env.root, key, dry_run=dry_run, yes=yes, verb="restored")
    if dry_run:
        err("dry run: nothing written")
    return 0
