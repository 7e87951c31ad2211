"""What else a publish puts in the bucket: the dashboard site, and the bucket policy that opens it safely."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from .errors import UsageError
from .head import HEAD
from .layout import BUNDLES_DIR
from .storage import ObjectStore, join_key, retrying
from .transfers import Transfers

__all__ = ["DASHBOARD_DIR", "bucket_policy", "publish_directory"]

DASHBOARD_DIR = "dashboard"


def publish_directory(store: ObjectStore, prefix: str, directory: Path, *, subdir: str = DASHBOARD_DIR,
                      options: Any = None) -> int:
    """Upload every file of ``directory`` under ``<prefix>/<subdir>/`` (the dashboard); returns the count.

    Files are uploaded whole with their guessed Content-Type. A path with a ``tenants`` segment
    is refused: the bucket policy makes ``<prefix>/*/tenants/*`` public.
    """
    if options is None:
        from .publish import PublishOptions

        options = PublishOptions()
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file())
    jobs = []
    for path in files:
        rel = path.relative_to(directory).as_posix()
        if "tenants" in rel.split("/") or rel == HEAD or rel.endswith("/" + HEAD):
            raise UsageError(f"{rel}: this path would be public under the bucket policy")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        key = join_key(prefix, subdir, rel)

        def do(key: str = key, path: Path = path, ctype: str = ctype) -> int:
            data = path.read_bytes()
            store.put(key, data, content_type=ctype, cache_control=options.cache_control)
            return len(data)
        jobs.append((rel, do))
    Transfers(options, subdir, len(jobs)).run(jobs)
    # Then drop what the new copy no longer has (a removed flag's page), so the site mirrors it.
    base = join_key(prefix, subdir) + "/"
    keep = {join_key(prefix, subdir, path.relative_to(directory).as_posix()) for path in files}
    stale = [info.key for info in retrying(lambda: list(store.list(base)), options.retry) if info.key not in keep]
    for key in stale:
        retrying(lambda key=key: store.delete(key), options.retry)
    return len(jobs)


def bucket_policy(bucket: str, prefix: str = "") -> dict[str, Any]:
    """The bucket policy that opens only tenant bundles and heads to anonymous reads.

    ``<prefix>/*/tenants/*`` (one tenant's values; services know their own slug) and
    ``<prefix>/*/head.json`` (flag keys and a revision, never a tenant). Manifests, rules,
    snapshots, catalogs and the dashboard list every tenant and allowlist: they stay private.
    """
    resources = [f"arn:aws:s3:::{bucket}/{join_key(prefix, '*', BUNDLES_DIR, '*')}",
                 f"arn:aws:s3:::{bucket}/{join_key(prefix, '*', HEAD)}"]
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "PublicReadTenantBundlesAndHeads", "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject", "Resource": resources}]}
