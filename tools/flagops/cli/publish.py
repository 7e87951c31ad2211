"""publish, rollback, bucket-policy: put compiled bundles on object storage, and take them back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import click

from .. import publish as pub
from ..storage import open_target
from ._app import FORMAT_OPTION, Env, cli, err, pass_env, print_json, terminal_progress

TARGET_HELP = "s3://bucket/prefix or file:///absolute/dir (the embedded local store)."


def _target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--env", "environment", required=True, help="The environment to publish."),
        click.option("--target", required=True, envvar="FLAGOPS_TARGET", help=TARGET_HELP),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
                     help="S3 endpoint (Hetzner, MinIO, Ceph...); default: AWS_ENDPOINT_URL, else AWS."),
        click.option("--dry-run", is_flag=True, help="Show what would change; write nothing."),
        click.option("--no-conditional-writes", is_flag=True,
                     help="For stores that ignore or reject If-Match/If-None-Match: publish without "
                          "enforcing the lock or a conditional manifest write (CI's concurrency group is then "
                          "the only guard)."),
        click.option("--cache-control", default=pub.DEFAULT_CACHE_CONTROL, show_default=True,
                     envvar="FLAGOPS_CACHE_CONTROL", help="Cache-Control of every uploaded object."),
        click.option("--workers", type=click.IntRange(1, 64), default=pub.DEFAULT_WORKERS, show_default=True,
                     help="Parallel uploads."),
        FORMAT_OPTION,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _options(dry_run: bool, no_conditional_writes: bool, cache_control: str, workers: int,
             allow_rollback: bool = False) -> pub.PublishOptions:
    return pub.PublishOptions(allow_rollback=allow_rollback, dry_run=dry_run,
                              conditional_writes=not no_conditional_writes,
                              cache_control=cache_control or None, workers=workers,
                              progress=terminal_progress("publish"), warn=lambda m: err(f"warning: {m}"))


def _report(result: pub.PublishResult, fmt: str) -> None:
    if fmt == "json":
        print_json(result.summary())
        return
    s = result.summary()
    prev = s["previousRevision"] or "nothing"
    verb = "would publish" if result.dry_run else "published"
    err(f"{verb} {s['environment']} revision {s['revision']} to {result.target} (was {prev}): "
        f"{s['uploaded']} bundle(s) uploaded, {s['unchanged']} unchanged, {s['deleted']} deleted, "
        f"{s['bytes']} bytes in {s['seconds']:.2f}s")
    if result.dry_run:
        for label, slugs in (("upload", result.uploaded), ("delete", result.deleted)):
            if slugs:
                shown = ", ".join(slugs[:20]) + (f" ... (+{len(slugs) - 20})" if len(slugs) > 20 else "")
                err(f"  {label}: {shown}")
    if not result.conditional and not result.dry_run:
        err("note: published without conditional writes; only CI's concurrency group prevents concurrent publishes")



@cli.command()
@_target_options
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A compiled output directory (holding <env>/); default: compile the repository now.")
@click.option("--allow-rollback", is_flag=True,
              help="Publish even if the revision is older than, unrelated to or unknown beside the published one.")
@click.option("--dashboard", "dashboard_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also upload this built dashboard (flagops dashboard --out DIR) under <prefix>/dashboard/.")
@pass_env
def publish(env: Env, environment: str, target: str, endpoint_url: Optional[str], dry_run: bool,
            no_conditional_writes: bool, cache_control: str, workers: int, fmt: str,
            from_dir: Optional[Path], allow_rollback: bool, dashboard_dir: Optional[Path]) -> int:
    """Publish one environment's bundles: only what changed, the manifest last, race-safe.

    \b
    Order: changed bundles, rules.json and catalog.json first; then the manifest with a
    conditional write (a concurrent publish makes one of the two fail); then deletion of the
    bundles of tenants that left. A revision older than the published one is refused.
    """
    store, prefix = open_target(target, endpoint_url=endpoint_url, max_connections=workers + 2)
    options = _options(dry_run, no_conditional_writes, cache_control, workers, allow_rollback)
    if from_dir is not None:
        result = pub.publish_environment(env.path(from_dir), environment, store, prefix, root=env.root,
                                         options=options, target=target)
    else:
        with tempfile.TemporaryDirectory(prefix="flagops-publish-") as tmp:
            pub.compile_to(env.root, environment, Path(tmp), cwd=env.cwd)
            result = pub.publish_environment(Path(tmp), environment, store, prefix, root=env.root,
                                             options=options, target=target)
    _report(result, fmt)
    if dashboard_dir is not None:
        if dry_run:
            err(f"dashboard: would upload {env.path(dashboard_dir)} under dashboard/ (dry run)")
        else:
            count = pub.publish_directory(store, prefix, env.path(dashboard_dir), options=options)
            err(f"dashboard: {count} files uploaded under dashboard/")
    return 0


@cli.command()
@_target_options
@click.option("--to", "rev", required=True, help="The git revision to restore (sha, tag, HEAD~1...).")
@pass_env
def rollback(env: Env, environment: str, target: str, endpoint_url: Optional[str], dry_run: bool,
             no_conditional_writes: bool, cache_control: str, workers: int, fmt: str, rev: str) -> int:
    """Compile revision REV from git and publish it (a deliberate rollback)."""
    store, prefix = open_target(target, endpoint_url=endpoint_url, max_connections=workers + 2)
    options = _options(dry_run, no_conditional_writes, cache_control, workers, allow_rollback=True)
    result = pub.rollback(env.root, environment, rev, store, prefix, options=options, target=target)
    _report(result, fmt)
    return 0


@cli.command("bucket-policy")
@click.option("--bucket", required=True, help="The bucket name.")
@click.option("--prefix", default="", help="The key prefix of the --target URL (may be empty).")
def bucket_policy(bucket: str, prefix: str) -> int:
    """Print the bucket policy that makes only tenant bundles (<prefix>/*/tenants/*) publicly readable.

    Manifests, rules, the catalog and the dashboard list every tenant and allowlist: they stay
    private. Apply it with e.g. `aws s3api put-bucket-policy --bucket B --policy file://policy.json`.
    """
    click.echo(json.dumps(pub.bucket_policy(bucket, prefix.strip("/")), indent=2))
    return 0
