"""``<prefix>/<env>/head.json``: the one small, public change signal of an environment.

Every reader polls it (see docs/protocol.md). Publish writes it twice at most: an interim
head naming newly killed flags in ``off`` before any bundle is uploaded, and the final head
(the new revision and snapshot) after the manifest, so it never names content that is not in
the store yet. ``sequence`` only grows.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Optional

from .layout import SCHEMA_VERSION, dumps

__all__ = ["HEAD", "Head", "parse_head"]

HEAD = "head.json"
_KEY = re.compile(r"[a-z][a-z0-9_]{1,63}\Z")
_REVISION = re.compile(r"[0-9a-f]{40}(-dirty)?\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_WHEN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Head:
    environment: str
    revision: Optional[str]
    sequence: int
    off: tuple[str, ...]
    snapshot: Optional[str]
    published_at: str

    def to_bytes(self) -> bytes:
        return dumps({"schemaVersion": SCHEMA_VERSION, "environment": self.environment, "revision": self.revision,
                      "sequence": self.sequence, "publishedAt": self.published_at, "off": list(self.off),
                      "snapshot": self.snapshot})

    def same_content(self, other: Optional["Head"]) -> bool:
        """Equal but for sequence and time: a head that already says this needs no rewrite."""
        return other is not None and (self.environment, self.revision, self.off, self.snapshot) == (
            other.environment, other.revision, other.off, other.snapshot)

    def next(self, **changes: Any) -> "Head":
        return replace(self, sequence=self.sequence + 1, published_at=utc_now(), **changes)


def parse_head(data: bytes, environment: str) -> Optional[Head]:
    """The head in ``data`` (checked as ``head.schema.json`` says), or None when it is not one."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or set(doc) != {"schemaVersion", "environment", "revision", "sequence",
                                                 "publishedAt", "off", "snapshot"}:
        return None
    seq, off, rev, snap, when = doc["sequence"], doc["off"], doc["revision"], doc["snapshot"], doc["publishedAt"]
    ok = (doc["schemaVersion"] == SCHEMA_VERSION and doc["environment"] == environment
          and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1
          and isinstance(off, list) and all(isinstance(k, str) and _KEY.match(k) for k in off)
          and len(set(off)) == len(off)
          and (rev is None or isinstance(rev, str) and _REVISION.match(rev))
          and (snap is None or isinstance(snap, str) and _DIGEST.match(snap))
          and isinstance(when, str) and _WHEN.match(when))
    if not ok:
        return None
    return Head(environment, rev, seq, tuple(sorted(off)), snap, when)
