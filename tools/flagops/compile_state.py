"""The hidden files a compile keeps beside its output, to do less work the next time.

Per environment, in ``OUT/``:

* ``.flagops-<env>.buckets``: rollout buckets per (tenant id, key); a bucket never changes,
  so a recompile hashes only new tenants and new rollout keys;
* ``.flagops-<env>.state``: what the last compile wrote: the flag keys, the tenant slugs,
  every tenant's packed row, the sha256 and size of every bundle, and the digest of the
  manifest.

Both are a header line, one JSON line (with the payload's sha256) and a binary payload; a
damaged or foreign file reads as absent. Deleting them is always safe: they only save time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .fsutil import atomic_write
from .matrix import BucketCache

__all__ = ["STATE_VERSION", "State", "cache_paths", "load_buckets", "load_state", "read_blob", "save_buckets",
           "save_state", "write_blob"]

STATE_VERSION = 2
_MAGIC = b"FLAGOPS-STATE 1\n"


def cache_paths(out: Path, environment: str) -> tuple[Path, Path]:
    """(buckets file, state file) of one environment's output."""
    return out / f".flagops-{environment}.buckets", out / f".flagops-{environment}.state"


def write_blob(path: Path, meta: Mapping[str, Any], payload: bytes) -> None:
    """A header line, one JSON line (with the payload's sha256), the payload; atomically."""
    head = dict(meta, length=len(payload), check=hashlib.sha256(payload).hexdigest())
    # No fsync: a file lost in a power cut is only a cache miss, a torn one fails its check.
    atomic_write(path, _MAGIC + json.dumps(head, sort_keys=True).encode("utf-8") + b"\n" + payload,
                 durable=False, mode=0o644)


def read_blob(path: Path) -> Optional[tuple[dict[str, Any], bytes]]:
    """(meta, payload) of a file from :func:`write_blob`, or None if absent or damaged."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(_MAGIC):
        return None
    end = raw.find(b"\n", len(_MAGIC))
    try:
        meta = json.loads(raw[len(_MAGIC):end])
    except ValueError:
        return None
    payload = raw[end + 1:]
    if (not isinstance(meta, dict) or meta.get("length") != len(payload)
            or meta.get("check") != hashlib.sha256(payload).hexdigest()):
        return None
    return meta, payload


# --------------------------------------------------------------------------- rollout buckets


def save_buckets(cache: BucketCache, path: Path, keys: Sequence[str]) -> None:
    chosen = sorted(k for k in keys if k in cache.columns)
    table = b"".join(cache.columns[k].tobytes() for k in chosen)
    ids = json.dumps(cache.ids).encode("utf-8")
    write_blob(path, {"kind": "buckets", "keys": chosen, "ids": len(ids)}, ids + table)


def load_buckets(path: Path, ids: Sequence[str]) -> BucketCache:
    """The saved buckets re-keyed to ``ids`` (tenants matched by id); empty if unusable."""
    cache = BucketCache(ids)
    blob = read_blob(path)
    if blob is None:
        return cache
    meta, payload = blob
    keys, cut = meta.get("keys"), meta.get("ids")
    if meta.get("kind") != "buckets" or not isinstance(keys, list) or not isinstance(cut, int):
        return cache
    try:
        old_ids = json.loads(payload[:cut])
    except ValueError:
        return cache
    table = np.frombuffer(payload, dtype=np.uint8, offset=cut)
    if not isinstance(old_ids, list) or table.size != len(keys) * len(old_ids):
        return cache
    table = table.reshape(len(keys), len(old_ids))
    if old_ids == cache.ids:
        for key, row in zip(keys, table):
            cache.columns[key] = row.copy()
        return cache
    where = {tid: i for i, tid in enumerate(old_ids)}
    old_pos = np.fromiter((where.get(tid, -1) for tid in cache.ids), dtype=np.int64, count=len(cache.ids))
    found = old_pos >= 0
    for key, row in zip(keys, table):
        col = np.full(len(cache.ids), 255, dtype=np.uint8)
        col[found] = row[old_pos[found]]
        cache.columns[key] = col
    cache.changed = True
    return cache


def save_buckets_if_needed(cache: Optional[BucketCache], path: Path, keys: Sequence[str], loaded: set[str]) -> None:
    """Rewrite the buckets file when this compile hashed something or the rollout keys changed."""
    if cache is None:
        return
    wanted = {k for k in keys if k in cache.columns}
    if cache.changed or wanted != loaded:
        save_buckets(cache, path, keys)


# --------------------------------------------------------------------------- what was written


@dataclass
class State:
    """What one compile wrote for one environment."""

    keys: list[str]
    slugs: list[str]
    packed: np.ndarray  # (tenants, bytes per row) uint8, :func:`flagops.layout.pack` order
    digests: list[bytes]  # raw sha256 of each bundle, in ``slugs`` order
    sizes: np.ndarray  # bytes of each bundle (uint32), in ``slugs`` order
    manifest: str  # hex sha256 of the manifest written
    #: The manifest's ctime once in place: every bundle this compile wrote has an older or equal
    #: one, so a bundle with a newer ctime was changed since (``touch`` cannot set a ctime).
    fence_ns: int = 0


def save_state(path: Path, environment: str, state: State) -> None:
    names = json.dumps(list(state.slugs)).encode("utf-8")
    sizes = np.ascontiguousarray(state.sizes, dtype="<u4")
    write_blob(path, {"kind": "state", "version": STATE_VERSION, "environment": environment,
                      "keys": list(state.keys), "slugs": len(names), "width": state.packed.shape[1],
                      "manifest": state.manifest, "fence": state.fence_ns},
               names + np.ascontiguousarray(state.packed).tobytes() + sizes.tobytes() + b"".join(state.digests))


def load_state(path: Path, environment: str, keys: Sequence[str]) -> Optional[State]:
    """The state saved for ``environment`` if it is intact and was made for the same ``keys``."""
    blob = read_blob(path)
    if blob is None:
        return None
    meta, payload = blob
    if (meta.get("kind") != "state" or meta.get("version") != STATE_VERSION
            or meta.get("environment") != environment or meta.get("keys") != list(keys)):
        return None
    cut, width, manifest, fence = meta.get("slugs"), meta.get("width"), meta.get("manifest"), meta.get("fence")
    if not (isinstance(cut, int) and isinstance(width, int) and isinstance(manifest, str) and isinstance(fence, int)):
        return None
    try:
        slugs = json.loads(payload[:cut])
    except ValueError:
        return None
    n = len(slugs)
    if width != (len(keys) + 7) // 8 or len(payload) != cut + n * (width + 4 + 32):
        return None
    packed = np.frombuffer(payload, dtype=np.uint8, offset=cut, count=n * width).reshape(n, width)
    sizes = np.frombuffer(payload, dtype="<u4", offset=cut + n * width, count=n)
    raw = payload[cut + n * (width + 4):]
    digests = [raw[i:i + 32] for i in range(0, len(raw), 32)]
    return State(list(keys), slugs, packed, digests, sizes, manifest, fence)
