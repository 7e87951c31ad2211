"""``flagops new``: create a flag file with the schema modeline (off unless told otherwise)."""

from __future__ import annotations

from typing import Any, Optional

import click

from ..app import Env, err
from ._edits import change_from, edit_options, run_edit, scope_options


@click.command(name="new")
@click.argument("key")
@click.option("--description", required=True, help="What the flag gates, for operators.")
@click.option("--owner", help="Who answers for the flag (a team address).")
@click.option("--expires", metavar="YYYY-MM-DD", help="Date after which the flag should be removed.")
@click.option("--state", type=click.Choice(["off", "on", "targeted", "rollout"]), help="[default: off]")
@click.option("--pct", type=click.IntRange(0, 100), help="Rollout percentage, 0..100 (with --state rollout).")
@scope_options
@edit_options
def command(env: Env, key: str, description: str, owner: Optional[str], expires: Optional[str],
            state: Optional[str], pct: Optional[int], dry_run: bool, yes: bool, **scope: Any) -> int:
    """Create flags/KEY.yaml with the schema modeline, `off` unless --state says otherwise.

    Refuses a key that is taken or does not match the key pattern. The new file is validated
    first and its blast radius shown; a risky one needs --yes or a "yes" on a terminal.
    """
    from ...edit import flag_rel, new_flag

    change = change_from(scope, state=state, pct=pct)
    edit = run_edit(new_flag, env.root, key, description, owner=owner, expires=expires, change=change,
                    dry_run=dry_run, yes=yes, verb="wrote")
    click.echo(edit.after, nl=False)
    if dry_run:
        err("dry run: nothing written")
    elif not state or state == "off":
        err(f"{flag_rel(key)} is off; flagops set {key} --state ... turns it on")
    return 0
