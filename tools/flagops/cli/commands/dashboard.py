"""``flagops dashboard``: render the static flags dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from ...stale import DEFAULT_DAYS
from ..app import Env, err, pass_env


@click.command(name="dashboard")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the site to (replaced as a whole; must be empty or a dashboard).")
@click.option("--days", type=click.IntRange(min=0), default=DEFAULT_DAYS, show_default=True,
              help="Days without a change after which a flag serving one value is marked stale.")
@pass_env
def command(env: Env, out: Path, days: int) -> int:
    """Render a static dashboard: the flags table with search, and one page per flag.

    Opens from file:// (OUT/index.html) and works beside the published bundles; no network
    requests, no framework, JavaScript only for the search box.
    """
    from ...dashboard import build_dashboard

    result = build_dashboard(env.root, env.path(out), days=days)
    for note in result.notes:
        err(f"warning: {note}")
    err(f"dashboard: {result.flags} flags, {result.pages} pages -> {result.out / 'index.html'}")
    return 0
