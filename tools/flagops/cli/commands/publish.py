"""``flagops publish``: put one environment's compiled bundles on object storage."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import click

from ..app import Env, err, pass_env
from ._targets import publish_options, report, target_options


@click.command(name="publish")
@target_options
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A compiled output directory (holding <env>/); default: compile the repository now.")
@click.option("--allow-rollback", is_flag=True,
              help="Publish even if the revision is older than, unrelated to or unknown beside the published one.")
@click.option("--dashboard", "dashboard_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also upload this built dashboard (flagops dashboard --out DIR) under <prefix>/dashboard/.")
@pass_env
def command(env: Env, environment: str, target: str, endpoint_url: Optional[str], dry_run: bool,
            no_conditional_writes: bool, cache_control: str, workers: int, fmt: str,
            from_dir: Optional[Path], allow_rollback: bool, dashboard_dir: Optional[Path]) -> int:
    """Publish one environment: only what the store does not hold yet, the head last, race-safe.

    \b
    Every compiled file is checked against its schema first. Order: a kill (a flag now off for
    every tenant) goes into <env>/head.json before any bundle; then the bundles whose bytes
    differ from the store's, rules.json, catalog.json and snapshot.json; the manifest with a
    conditional write; the final head; deletion of the bundles of tenants that left. A
    revision older than the published one is refused.
    """
    from ... import publish as pub
    from ...storage import open_target

    store, prefix = open_target(target, endpoint_url=endpoint_url, max_connections=workers + 2)
    options = publish_options(dry_run, no_conditional_writes, cache_control, workers, allow_rollback)
    if from_dir is not None:
        result = pub.publish_environment(env.path(from_dir), environment, store, prefix, root=env.root,
                                         options=options, target=target)
    else:
        with tempfile.TemporaryDirectory(prefix="flagops-publish-") as tmp:
            pub.compile_to(env.root, environment, Path(tmp), cwd=env.cwd)
            result = pub.publish_environment(Path(tmp), environment, store, prefix, root=env.root,
                                             options=options, target=target)
    report(result, fmt)
    if dashboard_dir is not None:
        if dry_run:
            err(f"dashboard: would upload {env.path(dashboard_dir)} under dashboard/ (dry run)")
        else:
            count = pub.publish_directory(store, prefix, env.path(dashboard_dir), options=options)
            err(f"dashboard: {count} files uploaded under dashboard/")
    return 0
