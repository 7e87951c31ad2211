"""The output layout: names and canonical bytes of everything ``flagops compile`` writes.

Per environment ``OUT/<env>/`` holds ``tenants/<slug>.json`` (one bundle per tenant),
``manifest.json``, ``rules.json`` and ``snapshot.json``; ``OUT/catalog.json`` is shared.
Every document is :func:`dumps`: sorted keys, compact separators, UTF-8, one trailing newline.
The large documents (bundles, manifest, snapshot) are assembled from byte pieces by the
functions here, and equal ``dumps`` of their reference form (the tests check it).
The format of the snapshot is specified in ``docs/protocol.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from itertools import repeat
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["BUNDLES_DIR", "CATALOG", "ENVIRONMENT_FILES", "MANIFEST", "RULES", "SCHEMA_VERSION", "SNAPSHOT",
           "BundleRenderer", "SlugTable", "bundle_document", "digest", "dumps", "json_str", "manifest_bytes", "pack",
           "rules_document", "snapshot_bytes", "snapshot_document"]

SCHEMA_VERSION = 1
BUNDLES_DIR = "tenants"
MANIFEST = "manifest.json"
RULES = "rules.json"
SNAPSHOT = "snapshot.json"
CATALOG = "catalog.json"
#: What an environment's directory holds besides ``BUNDLES_DIR``, in the order a compile writes it.
ENVIRONMENT_FILES = (RULES, SNAPSHOT, MANIFEST)

_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def dumps(value: Any) -> bytes:
    """The canonical JSON of every file flagops writes: sorted keys, compact, one newline."""
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def digest(data: bytes) -> str:
    """``sha256:<hex>``, as the manifest and the head name bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_str(value: str) -> bytes:
    """``value`` as a JSON string, as :func:`dumps` writes it."""
    if _PLAIN.fullmatch(value):
        return b'"' + value.encode("utf-8") + b'"'
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def bundle_document(environment: str, slug: str, values: Mapping[str, bool]) -> dict[str, Any]:
    """The reference form of one bundle (:class:`BundleRenderer` must produce exactly its ``dumps``)."""
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment, "tenant": slug,
            "flags": dict(sorted(values.items()))}


def rules_document(environment: str, rules: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``rules.json``: key -> ``Flag.as_rule()`` (state, pct, every scope axis)."""
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment,
            "flags": {key: dict(rule) for key, rule in sorted(rules.items())}}


def pack(matrix: np.ndarray) -> np.ndarray:
    """Rows of bits, flag j of a row at bit j % 8 of byte j // 8 (the snapshot's bit order)."""
    return np.packbits(matrix, axis=1, bitorder="little")


class BundleRenderer:
    """Assembles bundle bytes from packed rows: one lookup per 8 flags."""

    def __init__(self, environment: str, keys: Sequence[str]):
        self.head = b'{"environment":' + json_str(environment) + b',"flags":{'
        self.mid = b'},"schemaVersion":' + str(SCHEMA_VERSION).encode() + b',"tenant":'
        self.tables: list[list[bytes]] = []
        for c in range(0, len(keys), 8):
            group = keys[c:c + 8]
            off = [json_str(k) + b":false" for k in group]
            on = [json_str(k) + b":true" for k in group]
            lead = b"," if c else b""  # the separator before a group is part of its pieces
            self.tables.append([lead + b",".join(on[b] if v >> b & 1 else off[b] for b in range(len(group)))
                                if v < 1 << len(group) else b"" for v in range(256)])

    def tails(self, slugs: Sequence[str]) -> list[bytes]:
        """What follows the flags in each slug's bundle (one regular expression for all of them)."""
        if _PLAIN.fullmatch("".join(slugs)):
            mid = self.mid.decode("utf-8")
            return [f'{mid}"{slug}"}}\n'.encode("utf-8") for slug in slugs]
        return [self.mid + json_str(slug) + b"}\n" for slug in slugs]

    def bundle(self, row: bytes, slug: str, tail: Optional[bytes] = None) -> bytes:
        """The bundle of one tenant from its packed row (bytes, one per 8 flags).

        ``tail``: ``tails([slug])[0]``, when the caller has it already.
        """
        return b"".join([self.head, *map(list.__getitem__, self.tables, row),
                         tail if tail is not None else self.mid + json_str(slug) + b"}\n"])

    def render(self, packed_rows: np.ndarray, slugs: Sequence[str]) -> list[bytes]:
        """The bundles of ``slugs`` from their packed rows (one row each), column by column."""
        columns = [list(map(table.__getitem__, packed_rows[:, g].tolist())) for g, table in enumerate(self.tables)]
        return list(map(b"".join, zip(repeat(self.head, len(slugs)), *columns, self.tails(slugs))))


def slug_order(slugs: Sequence[str]) -> list[int]:
    """Positions of ``slugs`` in sorted order (the order of every tenants object)."""
    return sorted(range(len(slugs)), key=slugs.__getitem__)


class SlugTable:
    """The slugs in sorted order, as every tenants object (manifest, snapshot) lists them.

    ``encoded``: the sorted slugs' UTF-8, one NUL-padded row each (:meth:`encoded_width` wide),
    or None when some slug needs escaping in JSON. Both are found once and read by both documents
    (:meth:`fill` writes them into arrays the caller provides, shared with other processes).
    """

    def __init__(self, slugs: Sequence[str], order: "Optional[Sequence[int] | np.ndarray]" = None,
                 encoded: Optional[np.ndarray] = None):
        self.slugs = slugs
        self.order = np.asarray(slug_order(slugs) if order is None else order, dtype=np.int64)
        self._encoded = encoded

    @staticmethod
    def encoded_width(slugs: Sequence[str]) -> int:
        """The width of the encoded rows: the widest slug in UTF-8 bytes (at least 1)."""
        if "".join(slugs).isascii():
            return max(1, max(map(len, slugs), default=0))
        return max(1, max(map(len, map(str.encode, slugs)), default=0))

    @staticmethod
    def fill(slugs: Sequence[str], order: np.ndarray, encoded: np.ndarray) -> bool:
        """Write the sorted order, then the encoded rows (``encoded_width`` wide); False when
        the slugs need escaping (the rows are not written then)."""
        order[:] = slug_order(slugs)
        return SlugTable._encode(slugs, order, encoded)

    @staticmethod
    def _encode(slugs: Sequence[str], order: np.ndarray, encoded: np.ndarray) -> bool:
        ordered = list(map(slugs.__getitem__, order.tolist()))
        if not _PLAIN.fullmatch("".join(ordered)):  # never for valid slugs; kept exact anyway
            return False
        rows = np.array(list(map(str.encode, ordered)), dtype=f"S{encoded.shape[1]}")
        encoded[:] = rows.view(np.uint8).reshape(encoded.shape)
        return True

    def encoded(self) -> Optional[np.ndarray]:
        if self._encoded is None and len(self.order):
            table = np.empty((len(self.order), self.encoded_width(self.slugs)), dtype=np.uint8)
            if self._encode(self.slugs, self.order, table):
                self._encoded = table
        return self._encoded

    def ordered(self) -> list[str]:
        return list(map(self.slugs.__getitem__, self.order.tolist()))


def _tenants_object(table: SlugTable, values: np.ndarray) -> bytes:
    """``{"<slug>":"<value>",...}`` in the table's order, as :func:`dumps` writes it.

    ``values``: one row of ASCII bytes per slug (base64 or hex: never escaped, never NUL).
    """
    n = len(table.order)
    if not n:
        return b"{}"
    rows = values[table.order]
    encoded = table.encoded()
    if encoded is None:
        return b"{" + b",".join([json_str(s) + b':"' + row.tobytes() + b'"'
                                 for s, row in zip(table.ordered(), rows)]) + b"}"
    # One table row per entry, the slug NUL-padded to the longest; dropping the NULs (no
    # slug or value holds one) leaves the entries joined. No Python code runs per tenant.
    width, value_width = encoded.shape[1], rows.shape[1]
    out = np.empty((n, width + value_width + 6), dtype=np.uint8)
    out[:, 0] = ord('"')
    out[:, 1:1 + width] = encoded
    out[:, 1 + width:4 + width] = np.frombuffer(b'":"', dtype=np.uint8)
    out[:, 4 + width:4 + width + value_width] = rows
    out[:, 4 + width + value_width:] = np.frombuffer(b'",', dtype=np.uint8)
    return b"{" + out[out != 0].tobytes()[:-1] + b"}"


def _with_tenants(small: bytes, tenants: bytes) -> bytes:
    """"tenants" sorts last among the document's keys: splice it in before the closing brace."""
    return small[:-2] + b',"tenants":' + tenants + b"}\n"


def manifest_bytes(environment: str, revision: Optional[str], keys: Sequence[str], slugs: Sequence[str],
                   digests: "Sequence[bytes] | np.ndarray", table: Optional[SlugTable] = None) -> bytes:
    """``dumps`` of the manifest (``digests``: the raw sha256 of each tenant's bundle, or their rows)."""
    small = dumps({"schemaVersion": SCHEMA_VERSION, "environment": environment, "revision": revision,
                   "flags": list(keys)})
    n = len(slugs)
    values = np.empty((n, 71), dtype=np.uint8)
    values[:, :7] = np.frombuffer(b"sha256:", dtype=np.uint8)
    raw = np.ascontiguousarray(digests).tobytes() if isinstance(digests, np.ndarray) else b"".join(digests)
    values[:, 7:] = np.frombuffer(raw.hex().encode("ascii"), dtype=np.uint8).reshape(n, 64)
    return _with_tenants(small, _tenants_object(table or SlugTable(slugs), values))


def snapshot_document(environment: str, revision: Optional[str], keys: Sequence[str],
                      rows: Mapping[str, Sequence[bool]]) -> dict[str, Any]:
    """The reference form of ``snapshot.json`` (slug -> the tenant's values in ``keys`` order)."""
    width = (len(keys) + 7) // 8
    tenants = {}
    for slug, values in rows.items():
        bits = bytearray(width)
        for i, on in enumerate(values):
            if on:
                bits[i >> 3] |= 1 << (i & 7)
        tenants[slug] = base64.b64encode(bytes(bits)).decode("ascii")
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment, "revision": revision,
            "flags": list(keys), "tenants": tenants}


def _base64_rows(packed: np.ndarray) -> np.ndarray:
    """Standard base64 (padded) of each row as ASCII bytes, one row each, in one call for all."""
    n, width = packed.shape
    groups = (width + 2) // 3
    if n == 0 or width == 0:
        return np.zeros((n, groups * 4), dtype=np.uint8)
    padded = np.zeros((n, groups * 3), dtype=np.uint8)
    padded[:, :width] = packed
    text = np.frombuffer(base64.b64encode(padded.tobytes()), dtype=np.uint8).reshape(n, groups * 4).copy()
    tail = groups * 3 - width  # zero bytes added to each row: they encode as "A", standard is "="
    if tail:
        text[:, groups * 4 - tail:] = ord("=")
    return text


def snapshot_bytes(environment: str, revision: Optional[str], keys: Sequence[str], slugs: Sequence[str],
                   packed: np.ndarray, table: Optional[SlugTable] = None) -> bytes:
    """``dumps`` of the snapshot from the packed matrix (one row per slug, :func:`pack` order)."""
    small = dumps({"schemaVersion": SCHEMA_VERSION, "environment": environment, "revision": revision,
                   "flags": list(keys)})
    encoded = _base64_rows(packed)
    return _with_tenants(small, _tenants_object(table or SlugTable(slugs), encoded))
