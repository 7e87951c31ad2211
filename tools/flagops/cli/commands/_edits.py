"""What the flag-editing commands (new, set, kill) print: the blast radius and what was written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import click

from ..app import err

if TYPE_CHECKING:
    from ... import editing

#: Warnings a kill causes on purpose (the scope and pct are kept for turning the flag back on).
KILL_WARNINGS = ("ignored-scope", "ignored-pct")


def show_edit(edit: editing.EditResult, *, verb: str, expected: tuple[str, ...] = ()) -> None:
    """Blast radius on stdout (the requested output); what was written on stderr."""
    from ... import editing
    from ...formatters import format_text
    from ...problems import Result

    for note in edit.notes:
        err(f"note: {note}")
    others = [p for p in edit.validation.problems
              if p.path == editing.flag_rel(edit.key) and p.severity == "warning" and p.rule not in expected]
    if others:
        click.echo(format_text(Result(others)), nl=False, err=True)
    click.echo(f"blast radius of {edit.key} (before -> after):")
    for line in edit.describe_radius() or ["no tenant inventories: nothing to count"]:
        click.echo(f"  {line}")
    rel = editing.flag_rel(edit.key)
    if edit.written:
        err(f"{verb} {rel}")
    elif not edit.changed:
        err(f"{rel} unchanged")


def csv(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]
