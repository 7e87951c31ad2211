"""``flagops set``: change one flag, validated before it is written, with its blast radius."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, err, pass_env
from ._edits import csv, show_edit


@click.command(name="set")
@click.argument("key")
@click.option("--state", type=click.Choice(["off", "on", "targeted", "rollout"]))
@click.option("--pct", type=click.IntRange(0, 100), help="Rollout percentage, 0..100.")
@click.option("--add-plan", multiple=True, metavar="PLAN")
@click.option("--remove-plan", multiple=True, metavar="PLAN")
@click.option("--add-tenant", multiple=True, metavar="SLUG")
@click.option("--remove-tenant", multiple=True, metavar="SLUG")
@click.option("--add-partner", multiple=True, metavar="SLUG")
@click.option("--remove-partner", multiple=True, metavar="SLUG")
@click.option("--environments", metavar="E,...", help='Replace the environments axis ("" clears it).')
@click.option("--description", help="New description.")
@click.option("--owner", help='New owner ("" removes it).')
@click.option("--expires", metavar="YYYY-MM-DD", help='New expiry date ("" removes it).')
@click.option("--dry-run", is_flag=True, help="Validate and show the blast radius; write nothing.")
@pass_env
def command(env: Env, key: str, state: Optional[str], pct: Optional[int], add_plan: tuple[str, ...],
            remove_plan: tuple[str, ...], add_tenant: tuple[str, ...], remove_tenant: tuple[str, ...],
            add_partner: tuple[str, ...], remove_partner: tuple[str, ...], environments: Optional[str],
            description: Optional[str], owner: Optional[str], expires: Optional[str], dry_run: bool) -> int:
    """Change one flag, validate the result, write it atomically, show the blast radius.

    The result is validated like `flagops validate` before anything is written; an invalid
    result is refused (exit 1) and the file stays as it was. Prints, per environment, how many
    tenants the flag is on for before and after ("~N of M tenants") and who flips.
    """
    from ... import editing

    change = editing.FlagChange(
        state=state, pct=pct,
        add={"plans": list(add_plan), "tenantSlugs": list(add_tenant), "partnerSlugs": list(add_partner)},
        remove={"plans": list(remove_plan), "tenantSlugs": list(remove_tenant),
                "partnerSlugs": list(remove_partner)},
        environments=csv(environments), description=description, owner=owner, expires=expires)
    edit = editing.edit_flag(env.root, key, change, dry_run=dry_run)
    show_edit(edit, verb="wrote")
    if dry_run:
        err("dry run: nothing written")
    return 0
