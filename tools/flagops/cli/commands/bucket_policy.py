"""``flagops bucket-policy``: the bucket policy that keeps everything but tenant bundles and heads private."""

from __future__ import annotations

import json

import click


@click.command(name="bucket-policy")
@click.option("--bucket", required=True, help="The bucket name.")
@click.option("--prefix", default="", help="The key prefix of the --target URL (may be empty).")
def command(bucket: str, prefix: str) -> int:
    """Print the bucket policy that makes only tenant bundles and heads publicly readable.

    <prefix>/*/tenants/* and <prefix>/*/head.json (flag keys, never tenants). Manifests, rules,
    snapshots, catalogs and the dashboard list every tenant and allowlist: they stay private. Apply it with e.g. `aws s3api put-bucket-policy --bucket B --policy file://policy.json`.
    """
    from ... import publish as pub

    click.echo(json.dumps(pub.bucket_policy(bucket, prefix.strip("/")), indent=2))
    return 0
