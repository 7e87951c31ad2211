"""What publish and rollback share: the target options, the publish options, the summary."""

from __future__ import annotations

from typing import Any, Callable

import click

from ... import publish as pub
from ..app import FORMAT_OPTION, err, print_json, terminal_progress

TARGET_HELP = "s3://bucket/prefix or file:///absolute/dir (the embedded local store)."


def target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
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


def publish_options(dry_run: bool, no_conditional_writes: bool, cache_control: str, workers: int,
                    allow_rollback: bool = False) -> pub.PublishOptions:
    return pub.PublishOptions(allow_rollback=allow_rollback, dry_run=dry_run,
                              conditional_writes=not no_conditional_writes,
                              cache_control=cache_control or None, workers=workers,
                              progress=terminal_progress("publish"), warn=lambda m: err(f"warning: {m}"))


def report(result: pub.PublishResult, fmt: str) -> None:
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
