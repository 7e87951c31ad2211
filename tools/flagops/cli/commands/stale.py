"""``flagops stale``: flags to remove, because they serve one value everywhere or are past expiry."""

from __future__ import annotations

import click

from ...stale import DEFAULT_DAYS
from ..app import Env, err, pass_env, report


@click.command(name="stale")
@click.option("--days", type=click.IntRange(min=0), default=DEFAULT_DAYS, show_default=True,
              help="A flag serving one value is stale once its file has not changed for this long.")
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="text: one entry per flag; github: workflow annotations; "
              'json: [{"key","reason","since","owner","action"}].')
@click.option("--strict", is_flag=True, help="Exit 1 when any stale flag is found.")
@pass_env
def command(env: Env, days: int, fmt: str, strict: bool) -> int:
    """Flags to remove: fully on or fully off everywhere and unchanged for --days, or past expiry.

    "Fully on/off" is decided by compiling the flag for every tenant of every environment's
    inventory; "unchanged" by the git history of its file (uncommitted edits count as changes).
    """
    from ...errors import EXIT_INVALID
    from ...reporters.stale import summary
    from ...stale import find_stale

    found, notes = find_stale(env.root, days=days)
    for note in notes:
        err(f"warning: {note}")
    report("stale", fmt, found)
    if fmt != "json":
        err(summary(found))
    return EXIT_INVALID if strict and found else 0
