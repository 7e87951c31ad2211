"""What the flag-editing commands print (impact, risks, what was written) and how they confirm.

A risky edit (the risk checks of ``flagops plan``) is written only with ``--yes`` or after a
"yes" on a terminal; without a terminal and without ``--yes`` it is refused, exit 1, and
nothing is written.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Optional

import click

from ..app import err, pass_env

if TYPE_CHECKING:
    from ...edit import EditResult, FlagChange

#: Warnings a kill causes on purpose (the scope and pct are kept for turning the flag back on).
KILL_WARNINGS = ("ignored-scope", "ignored-pct")

DRY_RUN_OPTION = click.option("--dry-run", is_flag=True, help="Validate and show the blast radius; write nothing.")
YES_OPTION = click.option("--yes", "-y", is_flag=True,
                          help="Make a risky change without asking (every tenant of an environment, a "
                               "rollout move of more than 50 points, deleting a flag that is still on).")


def edit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dry-run and --yes, then the environment: what every file-editing command takes last."""
    return DRY_RUN_OPTION(YES_OPTION(pass_env(command)))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class Confirmation:
    """The ``confirm`` callback of an edit: prints the impact once, then asks if it is risky."""

    def __init__(self, yes: bool, *, expected: tuple[str, ...] = ()):
        self.yes = yes
        self.expected = expected
        self.shown = False

    def __call__(self, edit: "EditResult") -> bool:
        self.show(edit)
        if self.yes:
            return True
        if not _interactive():
            err("refused: this change is risky and there is no terminal to confirm it; pass --yes")
            return False
        return click.confirm("This change is risky. Write it anyway?", default=False, err=True)

    def show(self, edit: "EditResult") -> None:
        if not self.shown:
            self.shown = True
            show_impact(edit, expected=self.expected)


def show_impact(edit: "EditResult", *, expected: tuple[str, ...] = ()) -> None:
    """Notes and warnings on stderr; the impact per environment and its risks on stdout."""
    from ...edit import flag_rel
    from ...reporters.validation import text as format_text
    from ...problems import Result

    for note in edit.notes:
        err(f"note: {note}")
    for warning in edit.warnings:
        err(f"warning: {warning}")
    others = [p for p in edit.validation.problems
              if p.path == flag_rel(edit.key) and p.severity == "warning" and p.rule not in expected]
    if others:
        click.echo(format_text(Result(others)), nl=False, err=True)
    click.echo(f"blast radius of {edit.key} (before -> after):")
    for line in edit.describe_radius() or ["no tenant inventories: nothing to count"]:
        click.echo(f"  {line}")
    for environment, message in edit.risks:
        click.echo(f"  RISK: {environment}: {message}")


def finish(edit: "EditResult", confirmation: Confirmation, *, verb: str) -> None:
    """After the edit: the impact (unless the confirmation showed it) and what was written."""
    from ...edit import flag_rel

    confirmation.show(edit)
    rel = flag_rel(edit.key)
    if edit.written:
        err(f"{verb} {rel}")
    elif not edit.changed:
        err(f"{rel} unchanged")


def run_edit(action: Callable[..., "EditResult"], *args: Any, yes: bool, verb: str,
             expected: tuple[str, ...] = (), **kwargs: Any) -> "EditResult":
    """Run an edit of :mod:`flagops.edit` with the confirmation, then report it."""
    confirmation = Confirmation(yes, expected=expected)
    edit = action(*args, confirm=confirmation, **kwargs)
    finish(edit, confirmation, verb=verb)
    return edit


def csv(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def scope_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--add-plan/--remove-plan, --add-tenant/..., --add-partner/..., --environments."""
    for option in reversed((
            click.option("--add-plan", multiple=True, metavar="PLAN"),
            click.option("--remove-plan", multiple=True, metavar="PLAN"),
            click.option("--add-tenant", multiple=True, metavar="SLUG"),
            click.option("--remove-tenant", multiple=True, metavar="SLUG"),
            click.option("--add-partner", multiple=True, metavar="SLUG"),
            click.option("--remove-partner", multiple=True, metavar="SLUG"),
            click.option("--environments", metavar="E,...", help='Replace the environments axis ("" clears it).'))):
        command = option(command)
    return command


def change_from(options: dict[str, Any], **fields: Any) -> "FlagChange":
    """The :class:`FlagChange` of the scope options (and ``fields``) of a command."""
    from ...edit import FlagChange

    def values(name: str) -> list[str]:
        return list(options.get(name) or ())

    return FlagChange(
        add={"plans": values("add_plan"), "tenantSlugs": values("add_tenant"),
             "partnerSlugs": values("add_partner")},
        remove={"plans": values("remove_plan"), "tenantSlugs": values("remove_tenant"),
                "partnerSlugs": values("remove_partner")},
        environments=csv(options.get("environments")), **fields)
