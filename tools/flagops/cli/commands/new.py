"""``flagops new``: create a flag file, off, with the schema modeline."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env


@click.command(name="new")
@click.argument("key")
@click.option("--description", required=True, help="What the flag gates, for operators.")
@click.option("--owner", help="Who answers for the flag (a team address).")
@click.option("--expires", metavar="YYYY-MM-DD", help="Date after which the flag should be removed.")
@pass_env
def command(env: Env, key: str, description: str, owner: Optional[str], expires: Optional[str]) -> int:
    """Create flags/KEY.yaml as an `off` flag with the schema modeline.

    Refuses a key that is taken or does not match the key pattern.
    """
    from ... import editing

    edit = editing.new_flag(env.root, key, description, owner=owner, expires=expires)
    click.echo(edit.after, nl=False)
    err(f"wrote {editing.flag_rel(key)} (state off; flagops set {key} --state ... to turn it on)")
    return 0
