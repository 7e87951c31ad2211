"""Checks for the documents the client reads: a fetched document replaces good flags only once
it passed every check here. Standard library only; mirrors schema/bundle.schema.json and
schema/rules.schema.json without needing a JSON Schema implementation.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .evaluation import AXES, STATES

SCHEMA_VERSION = 1
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
KEY = re.compile(r"[a-z][a-z0-9_]{1,63}")
ENVIRONMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
REVISION = re.compile(r"[0-9a-f]{40}(-dirty)?")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
WHEN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
HEAD_FIELDS = frozenset({"schemaVersion", "environment", "revision", "sequence", "publishedAt", "off",
                         "snapshot"})
SNAPSHOT_FIELDS = frozenset({"schemaVersion", "environment", "revision", "flags", "tenants"})

__all__ = ["DocumentError", "Head", "SCHEMA_VERSION", "Snapshot", "check_bundle", "check_head",
           "check_rules", "digest", "parse_bundle", "parse_head", "parse_rules", "parse_snapshot",
           "valid_slug"]


class DocumentError(ValueError):
    """A fetched or cached document that must not replace the flags in use."""


def valid_slug(value: object) -> bool:
    return isinstance(value, str) and SLUG.fullmatch(value) is not None


def _load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise DocumentError(f"not JSON ({exc})") from None
    except RecursionError:  # e.g. 100,000 nested "[": the decoder gives up, so do we
        raise DocumentError("nested too deeply") from None


def _check_header(doc: Any, environment: str) -> None:
    if not isinstance(doc, dict):
        raise DocumentError("not a JSON object")
    version = doc.get("schemaVersion")
    # bool is an int subclass: `true` must not pass for 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DocumentError(f"schemaVersion {version!r}, expected {SCHEMA_VERSION}")
    if doc.get("environment") != environment:
        raise DocumentError(f"environment {doc.get('environment')!r}, expected {environment!r}")


def _check_revision(doc: Mapping[str, Any]) -> Optional[str]:
    revision = doc.get("revision")
    if revision is not None and not (isinstance(revision, str) and REVISION.fullmatch(revision)):
        raise DocumentError(f"revision {revision!r} is not a commit")
    return revision


def _check_keys(keys: Any, what: str) -> list[str]:
    if not isinstance(keys, list) or not all(isinstance(k, str) and KEY.fullmatch(k) for k in keys):
        raise DocumentError(f"{what} is not a list of flag keys")
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise DocumentError(f"{what} is not sorted and unique")
    return keys


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``, as the head names the snapshot."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Head:
    """``<env>/head.json``: the change signal of an environment."""

    sequence: int
    revision: Optional[str]
    off: frozenset[str]
    snapshot: Optional[str]
    published_at: str


def check_head(doc: Any, environment: str) -> Head:
    _check_header(doc, environment)
    if set(doc) != HEAD_FIELDS:
        raise DocumentError(f"head fields {sorted(doc)}, expected {sorted(HEAD_FIELDS)}")
    sequence = doc["sequence"]
    if type(sequence) is not int or sequence < 1:
        raise DocumentError(f"sequence {sequence!r} is not a positive integer")
    off = _check_keys(doc["off"], "off")
    snapshot = doc["snapshot"]
    if snapshot is not None and not (isinstance(snapshot, str) and DIGEST.fullmatch(snapshot)):
        raise DocumentError(f"snapshot {snapshot!r} is not a sha256: digest")
    when = doc["publishedAt"]
    if not (isinstance(when, str) and WHEN.fullmatch(when)):
        raise DocumentError(f"publishedAt {when!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return Head(sequence, _check_revision(doc), frozenset(off), snapshot, when)


def parse_head(data: bytes, environment: str) -> Head:
    """Parse and check the bytes of ``<env>/head.json``."""
    return check_head(_load(data), environment)


@dataclass(frozen=True)
class Snapshot:
    """Every tenant of an environment: ``index`` maps a key to (byte, mask) in each bitset."""

    revision: Optional[str]
    flags: tuple[str, ...]
    index: dict[str, tuple[int, int]]
    tenants: dict[str, bytes]

    def values(self, tenant: str) -> Optional[dict[str, bool]]:
        bits = self.tenants.get(tenant)
        if bits is None:
            return None
        return {key: bits[byte] & mask != 0 for key, (byte, mask) in self.index.items()}


def parse_snapshot(data: bytes, environment: str) -> Snapshot:
    """Parse and check the bytes of ``<env>/snapshot.json``; bitsets are decoded at load."""
    doc = _load(data)
    _check_header(doc, environment)
    if set(doc) != SNAPSHOT_FIELDS:
        raise DocumentError(f"snapshot fields {sorted(doc)}, expected {sorted(SNAPSHOT_FIELDS)}")
    flags = _check_keys(doc["flags"], "flags")
    tenants = doc["tenants"]
    if not isinstance(tenants, dict):
        raise DocumentError("tenants is not an object")
    size = (len(flags) + 7) // 8
    encoded = 4 * ((size + 2) // 3)
    decode, slug, b64 = binascii.a2b_base64, SLUG.fullmatch, BASE64.fullmatch
    out: dict[str, bytes] = {}
    for tenant, value in tenants.items():
        if not (isinstance(value, str) and len(value) == encoded and b64(value)):
            raise DocumentError(f"tenant {tenant!r}: not a base64 bitset of {size} bytes")
        bits = decode(value)
        if len(bits) != size or slug(tenant) is None:  # 1 and 2 bytes both take 4 characters
            raise DocumentError(f"tenant {tenant!r}: not a valid slug with a bitset of {size} bytes")
        out[tenant] = bits
    index = {key: (i >> 3, 1 << (i & 7)) for i, key in enumerate(flags)}
    return Snapshot(_check_revision(doc), tuple(flags), index, out)


def check_bundle(doc: Any, environment: str, tenant: str) -> dict[str, bool]:
    """The ``{key: bool}`` of a bundle object, or DocumentError."""
    _check_header(doc, environment)
    if doc.get("tenant") != tenant:
        raise DocumentError(f"tenant {doc.get('tenant')!r}, expected {tenant!r}")
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        raise DocumentError("flags is not an object")
    for key, value in flags.items():
        if type(value) is not bool:
            raise DocumentError(f"flag {key!r} is {value!r}, not a boolean")
        if KEY.fullmatch(key) is None:
            raise DocumentError(f"flag key {key!r} is not a valid key")
    return flags


def parse_bundle(data: bytes, environment: str, tenant: str) -> dict[str, bool]:
    """Parse and check the bytes of ``<env>/tenants/<tenant>.json``."""
    return check_bundle(_load(data), environment, tenant)


def check_rules(doc: Any, environment: str) -> dict[str, dict[str, Any]]:
    """``{key: flag}`` of a rules object (each flag carrying its key), or DocumentError."""
    _check_header(doc, environment)
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        raise DocumentError("flags is not an object")
    out: dict[str, dict[str, Any]] = {}
    for key, flag in flags.items():
        if KEY.fullmatch(key) is None:
            raise DocumentError(f"flag key {key!r} is not a valid key")
        if not isinstance(flag, dict) or flag.get("state") not in STATES:
            raise DocumentError(f"flag {key!r}: state missing or unknown")
        pct = flag.get("pct")
        if type(pct) is not int or not 0 <= pct <= 100:
            raise DocumentError(f"flag {key!r}: pct {pct!r} is not an integer 0..100")
        scope = flag.get("scope")
        if not isinstance(scope, dict):
            raise DocumentError(f"flag {key!r}: scope is not an object")
        for axis in AXES:
            values = scope.get(axis)
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise DocumentError(f"flag {key!r}: scope.{axis} is not a list of strings")
        out[key] = {"key": key, "state": flag["state"], "pct": pct,
                    "scope": {axis: list(scope[axis]) for axis in AXES}}
    return out


def parse_rules(data: bytes, environment: str) -> dict[str, dict[str, Any]]:
    """Parse and check the bytes of ``<env>/rules.json``."""
    return check_rules(_load(data), environment)


def rules_document(environment: str, flags: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The rules object back from checked flags (for the cache)."""
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment,
            "flags": {k: {"state": f["state"], "pct": f["pct"], "scope": f["scope"]} for k, f in flags.items()}}
