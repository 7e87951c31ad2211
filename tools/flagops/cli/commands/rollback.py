"""``flagops rollback``: compile an earlier git revision and publish it, deliberately."""

from __future__ import annotations

from typing import Optional

import click

from ..app import Env, pass_env
from ._targets import publish_options, report, target_options


@click.command(name="rollback")
@target_options
@click.option("--to", "rev", required=True, help="The git revision to restore (sha, tag, HEAD~1...).")
@pass_env
def command(env: Env, environment: str, target: str, endpoint_url: Optional[str], dry_run: bool,
            no_conditional_writes: bool, cache_control: str, workers: int, fmt: str, rev: str) -> int:
    """Compile revision REV from git and publish it (a deliberate rollback)."""
    from ... import publish as pub
    from ...storage import open_target

    store, prefix = open_target(target, endpoint_url=endpoint_url, max_connections=workers + 2)
    options = publish_options(dry_run, no_conditional_writes, cache_control, workers, allow_rollback=True)
    result = pub.rollback(env.root, environment, rev, store, prefix, options=options, target=target)
    report(result, fmt)
    return 0
