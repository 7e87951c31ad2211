"""What a publish must upload: the difference between the compiled output and what the store holds.

The store is asked, not the remote manifest: one listing of ``<prefix>/<env>/`` (about one
request per 1,000 objects) gives every object's ETag, which for a single-part upload is the
MD5 of its bytes (S3, SeaweedFS and the file store alike). A bundle is uploaded when it is
missing or its ETag differs from the local file's MD5, so bytes left by an interrupted or
overlapping run are always repaired, whatever the manifest claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from .layout import BUNDLES_DIR, CATALOG, RULES, SNAPSHOT
from .release import LocalRelease
from .storage import ObjectInfo, etag_of, join_key

__all__ = ["Delta", "plan_delta"]


@dataclass
class Delta:
    uploads: list[str] = field(default_factory=list)  # tenant slugs whose bundle differs or is missing
    unchanged: int = 0
    gone: list[str] = field(default_factory=list)  # bundles in the store of tenants not in the compile
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (key, bytes) of rules, catalog, snapshot
    drifted: int = 0  # bundles the published manifest calls current whose stored bytes differ

    @property
    def empty(self) -> bool:
        return not (self.uploads or self.gone or self.files)


def plan_delta(release: LocalRelease, listing: Iterable[ObjectInfo], env_prefix: str,
               published: Optional[dict[str, str]]) -> Delta:
    """Compare ``release`` (its bundles verified) with the listing of ``env_prefix``.

    ``published``: the remote manifest's digests, only to count bundles whose stored bytes
    drifted from it (an interrupted run), which the caller reports.
    """
    bundles = join_key(env_prefix, BUNDLES_DIR) + "/"
    remote: dict[str, str] = {}
    others: dict[str, str] = {}
    for info in listing:
        rest = info.key[len(bundles):] if info.key.startswith(bundles) else None
        if rest is not None and rest.endswith(".json") and "/" not in rest:
            remote[rest[:-len(".json")]] = info.etag
        else:
            others[info.key] = info.etag
    delta = Delta()
    digests = release.digests
    for slug, etag in release.etags.items():
        held = remote.get(slug)
        if held != etag:
            delta.uploads.append(slug)
            if held is not None and published is not None and published.get(slug) == digests[slug]:
                delta.drifted += 1
    delta.uploads.sort()
    delta.unchanged = len(release.etags) - len(delta.uploads)
    delta.gone = sorted(set(remote) - set(digests))
    for name, data in ((RULES, release.rules_bytes), (CATALOG, release.catalog_bytes),
                       (SNAPSHOT, release.snapshot_bytes)):
        key = join_key(env_prefix, name)
        if data is not None and others.get(key) != etag_of(data):
            delta.files.append((key, data))
    return delta
