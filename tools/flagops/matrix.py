"""The whole tenants x flags matrix at once: the vectorised form of the client's ``evaluate``.

The semantics are stated once, in :mod:`flagops_client.evaluation`; this module only computes
them for a whole inventory, column by column with numpy, and must agree with ``evaluate`` for
every tenant (the tests check it). Only rollout flags hash, only for tenants inside their
scope, and each (tenant, key) bucket is computed once (see :class:`BucketCache`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from flagops_client.evaluation import AXES, evaluate, has_any_scope, normalise_scope

from .fastpath import TenantColumns
from .parallel import fork_map, jobs

__all__ = [
    "BucketCache",
    "ChunkedMatrix",
    "TenantIndex",
    "enabled_tenants",
    "evaluate_columns",
    "evaluate_matrix",
    "flag_column",
    "normalise_flag",
]


def normalise_flag(flag: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a flag that decide its value: state, pct (0 when absent), all four axes."""
    return {
        "state": flag.get("state", "off"),
        "pct": int(flag.get("pct") or 0),
        "scope": normalise_scope(flag.get("scope")),
    }


@dataclass
class _Axes:
    """Each tenant's plan and partner as small integer codes (the last code means "none")."""

    plan_codes: np.ndarray
    plan_ids: dict[str, int]
    partner_codes: np.ndarray
    partner_ids: dict[str, int]

    @classmethod
    def build(cls, plans: list[Any], partners: list[Any]) -> "_Axes":
        # Codes in order of first appearance; map() and fromiter keep the loops in C.
        plan_ids = {p: c for c, p in enumerate(dict.fromkeys(plans))}
        seen = dict.fromkeys(partners)
        seen.pop(None, None)
        partner_ids = {p: c for c, p in enumerate(seen)}
        lookup = {**partner_ids, None: len(partner_ids)}
        return cls(np.fromiter(map(plan_ids.__getitem__, plans), dtype=np.int32, count=len(plans)), plan_ids,
                   np.fromiter(map(lookup.__getitem__, partners), dtype=np.int32, count=len(partners)),
                   partner_ids)


@dataclass
class TenantIndex:
    """One inventory's tenants as the vectorised evaluation reads them, built once.

    Positions by slug, each tenant's id, plan and partner (as codes, :meth:`axes`), and, built
    on first use, the tenants' rollout buckets (a :class:`BucketCache`), so evaluating several
    flags (or the same flag before and after a change) hashes each (tenant, key) once.
    """

    tenants: Sequence[Mapping[str, Any]]
    by_slug: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    slugs: list[str] = field(default_factory=list)
    buckets: Optional["BucketCache"] = field(default=None, repr=False, compare=False)
    _axes: Optional[_Axes] = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, tenants: Sequence[Mapping[str, Any]], columns: Optional[TenantColumns] = None) -> "TenantIndex":
        """The index of ``tenants``; ``columns``: their fields, when the validation read them already."""
        if columns is None:
            columns = TenantColumns(list(map(str, map(itemgetter("id"), tenants))),
                                    list(map(itemgetter("slug"), tenants)), list(map(itemgetter("plan"), tenants)),
                                    list(map(methodcaller("get", "partnerSlug"), tenants)))
        slugs = columns.slugs
        return cls(tenants, dict(zip(slugs, range(len(slugs)))), columns.ids, slugs,
                   _axes=_Axes.build(columns.plans, columns.partners))

    def __len__(self) -> int:
        return len(self.tenants)

    def axes(self) -> _Axes:
        assert self._axes is not None
        return self._axes

    @property
    def partners(self) -> list[str]:
        """The partner slugs of the inventory, in order of first appearance."""
        return list(self.axes().partner_ids)

    def bucket_cache(self) -> "BucketCache":
        if self.buckets is None:
            self.buckets = BucketCache(self.ids)
        return self.buckets


# --------------------------------------------------------------------------- rollout buckets

#: Below this many missing (tenant, key) pairs, hashing stays in one process.
PARALLEL_HASH_MIN = 200_000
_UNKNOWN = 255  # bucket not computed yet


def id_prefixes(ids: Sequence[str]) -> list[bytes]:
    """``"<id>:"`` in UTF-8 for each tenant id: what a rollout bucket hashes before the key."""
    return list(map(str.encode, map(str.__add__, ids, repeat(":"))))


def _hash_buckets(prefixes: Sequence[bytes], positions: np.ndarray, key: str) -> bytes:
    """``bucket(id, key)`` for the tenants at ``positions``, one byte each (the hot loop).

    The digests are joined and read as four big-endian 64-bit words each; the remainder by 100
    of the whole 256-bit number is then taken with numpy (2**64, 2**128 and 2**192 are 16, 56
    and 96 modulo 100), which is the client's ``int.from_bytes(digest, "big") % 100``.
    """
    kb = key.encode("utf-8")
    sha = hashlib.sha256
    if len(positions) == len(prefixes) and np.array_equal(positions, np.arange(len(prefixes))):
        # Every tenant in order (an unscoped rollout): no lookups.
        data = b"".join([sha(prefix + kb).digest() for prefix in prefixes])
    else:
        data = b"".join([sha(prefixes[i] + kb).digest() for i in positions.tolist()])
    words = np.frombuffer(data, dtype=">u8").reshape(-1, 4) % 100
    return ((words[:, 0] * 96 + words[:, 1] * 56 + words[:, 2] * 16 + words[:, 3]) % 100).astype(np.uint8).tobytes()


class BucketCache:
    """Rollout buckets of one inventory's tenants, per flag key, computed at most once.

    A bucket depends only on (tenant id, key), so buckets stay valid across compiles: the
    compiler saves the columns next to its output and loads them again (see ``bundles``);
    missing entries (new tenants, new keys, tenants newly in scope) are hashed on demand.
    """

    def __init__(self, ids: Sequence[str]):
        self.ids = list(ids)
        self.columns: dict[str, np.ndarray] = {}
        self.hashed = 0  # (tenant, key) pairs hashed by this process, for reports
        self.changed = False
        self._prefixes: Optional[list[bytes]] = None

    def _prefix_list(self) -> list[bytes]:
        if self._prefixes is None:
            self._prefixes = id_prefixes(self.ids)
        return self._prefixes

    def column(self, key: str) -> np.ndarray:
        col = self.columns.get(key)
        if col is None:
            col = self.columns[key] = np.full(len(self.ids), _UNKNOWN, dtype=np.uint8)
        return col

    def ensure(self, requests: Sequence[tuple[str, np.ndarray]]) -> None:
        """Compute every missing bucket of the given (key, tenant positions), on all cores."""
        work = []
        for key, positions in requests:
            col = self.column(key)
            missing = positions[col[positions] == _UNKNOWN]
            if len(missing):
                work.append((key, missing))
        total = sum(len(m) for _, m in work)
        if not total:
            return
        prefixes = self._prefix_list()
        shares = min(jobs(), max(1, total // (PARALLEL_HASH_MIN // 2))) if total >= PARALLEL_HASH_MIN else 1
        parts = [(key, np.array_split(missing, shares)) for key, missing in work]

        def run(share: int) -> list[bytes]:
            return [_hash_buckets(prefixes, split[share], key) for key, split in parts]

        for share, result in enumerate(fork_map(run, shares)):
            for (key, split), data in zip(parts, result):
                self.columns[key][split[share]] = np.frombuffer(data, dtype=np.uint8)
        self.hashed += total
        self.changed = True

    def get(self, key: str, positions: np.ndarray) -> np.ndarray:
        self.ensure([(key, positions)])
        return self.columns[key][positions]


# --------------------------------------------------------------------------- columns


def _plain_scope(scope: Any) -> bool:
    """True for the validated shape (a mapping of lists of strings) the fast path handles."""
    if not isinstance(scope, Mapping):
        return False
    for axis in AXES:
        values = scope.get(axis)
        if values and not (isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values)):
            return False
    return True


def _lookup(codes: dict[str, int], wanted: Iterable[str], values: np.ndarray) -> np.ndarray:
    table = np.zeros(len(codes) + 1, dtype=bool)  # the last slot is "none": never matches
    chosen = [codes[w] for w in wanted if w in codes]
    table[chosen] = True
    return table[values]


def _scope_mask(scope: Mapping[str, Any], index: TenantIndex, environment: str) -> Optional[np.ndarray]:
    """Tenants matching every non-empty axis (``matches_scope``); None means everyone."""
    n = len(index)
    envs = scope.get("environments") or ()
    if envs and environment not in envs:
        return np.zeros(n, dtype=bool)
    mask: Optional[np.ndarray] = None
    plans = scope.get("plans") or ()
    if plans:
        axes = index.axes()
        mask = _lookup(axes.plan_ids, plans, axes.plan_codes)
    slugs = scope.get("tenantSlugs") or ()
    if slugs:
        chosen = np.zeros(n, dtype=bool)
        chosen[[index.by_slug[s] for s in slugs if s in index.by_slug]] = True
        mask = chosen if mask is None else mask & chosen
    partners = scope.get("partnerSlugs") or ()
    if partners:
        axes = index.axes()
        chosen = _lookup(axes.partner_ids, partners, axes.partner_codes)
        mask = chosen if mask is None else mask & chosen
    return mask


def _rollout_request(key: str, flag: Mapping[str, Any], index: TenantIndex,
                     environment: str) -> Optional[tuple[str, np.ndarray]]:
    """(key, positions) whose buckets a rollout flag needs, or None when it needs none."""
    if flag.get("state") != "rollout" or not _plain_scope(flag.get("scope") or {}):
        return None
    pct = int(flag.get("pct") or 0)
    if pct <= 0 or pct >= 100:
        return None
    mask = _scope_mask(flag.get("scope") or {}, index, environment)
    positions = np.arange(len(index)) if mask is None else np.flatnonzero(mask)
    return (key, positions) if len(positions) else None


def flag_column(key: str, flag: Mapping[str, Any], index: TenantIndex, environment: str) -> np.ndarray:
    """One flag for every tenant of the index, as a boolean array: ``evaluate`` vectorised."""
    n = len(index)
    state = flag.get("state")
    if state == "on":
        return np.ones(n, dtype=bool)
    if state not in ("targeted", "rollout"):
        return np.zeros(n, dtype=bool)
    scope = flag.get("scope") or {}
    if not _plain_scope(scope):  # never for validated input; keep the reference semantics anyway
        probe = {**flag, "key": key}
        return np.array([evaluate(probe, t, environment) for t in index.tenants], dtype=bool)
    if state == "targeted":
        if not has_any_scope(scope):
            return np.zeros(n, dtype=bool)
        mask = _scope_mask(scope, index, environment)
        return np.ones(n, dtype=bool) if mask is None else mask
    pct = int(flag.get("pct") or 0)
    if pct <= 0:
        return np.zeros(n, dtype=bool)
    mask = _scope_mask(scope, index, environment)
    if pct >= 100:
        return np.ones(n, dtype=bool) if mask is None else mask
    positions = np.arange(n) if mask is None else np.flatnonzero(mask)
    column = np.zeros(n, dtype=bool)
    if len(positions):
        column[positions] = index.bucket_cache().get(key, positions) < pct
    return column


def evaluate_columns(flags: Mapping[str, Mapping[str, Any]], keys: Sequence[str], index: TenantIndex,
                     environment: str) -> np.ndarray:
    """The tenants x flags matrix (bool, one column per key in ``keys`` order).

    The rollout buckets of every flag are computed first in one batch, so hashing spreads
    over all cores.
    """
    requests = [r for r in (_rollout_request(k, flags[k], index, environment) for k in keys) if r]
    if requests:
        index.bucket_cache().ensure(requests)
    matrix = np.zeros((len(index), len(keys)), dtype=bool)
    for j, key in enumerate(keys):
        matrix[:, j] = flag_column(key, flags[key], index, environment)
    return matrix


class ChunkedMatrix:
    """The matrix of :func:`evaluate_columns`, with its rollout hashing split by tenant ranges.

    Every column that needs no hashing is computed at once; the missing buckets are hashed
    one range of tenants at a time (:meth:`hash_range`, possibly in another process) and
    stored (:meth:`store`), after which :meth:`rows` gives that range's final rows. A
    compile writes the bundles of one range while the next range is being hashed.
    """

    def __init__(self, flags: Mapping[str, Mapping[str, Any]], keys: Sequence[str], index: TenantIndex,
                 environment: str):
        self.index = index
        cache = self.cache = index.bucket_cache()
        self.work: list[tuple[str, np.ndarray]] = []  # (key, sorted positions whose bucket is missing)
        for key, positions in (r for r in (_rollout_request(k, flags[k], index, environment) for k in keys) if r):
            missing = positions[cache.column(key)[positions] == _UNKNOWN]
            if len(missing):
                self.work.append((key, missing))
        pending = {key for key, _ in self.work}
        # One row per key: each column is written whole and contiguous; rows() reads its transpose.
        self.columns = np.zeros((len(keys), len(index)), dtype=bool)
        #: (column, key, in-scope mask or None, pct) of the columns that wait for buckets
        self.pending: list[tuple[int, str, Optional[np.ndarray], int]] = []
        for j, key in enumerate(keys):
            flag = flags[key]
            if key in pending:
                mask = _scope_mask(flag.get("scope") or {}, index, environment)
                self.pending.append((j, key, mask, int(flag.get("pct") or 0)))
            else:
                self.columns[j] = flag_column(key, flag, index, environment)
        self.pairs = sum(len(m) for _, m in self.work)
        # Counted now: the ranges may be hashed in other processes, whose counters are their own.
        cache.hashed += self.pairs
        cache.changed = cache.changed or bool(self.pairs)

    def _cuts(self, lo: int, hi: int) -> list[tuple[str, np.ndarray]]:
        return [(key, missing[np.searchsorted(missing, lo):np.searchsorted(missing, hi)])
                for key, missing in self.work]

    def hash_range(self, lo: int, hi: int) -> bytes:
        """The missing buckets of tenants ``lo:hi``, every key's in turn (pure: no state changes)."""
        cuts = self._cuts(lo, hi)
        if not any(len(positions) for _, positions in cuts):
            return b""
        # This range's "<id>:" prefixes only: made by whichever process hashes the range.
        prefixes = id_prefixes(self.index.ids[lo:hi])
        return b"".join(_hash_buckets(prefixes, positions - lo, key) for key, positions in cuts)

    def store(self, lo: int, hi: int, data: bytes) -> None:
        """Keep the buckets :meth:`hash_range` computed for tenants ``lo:hi``."""
        at = 0
        for key, positions in self._cuts(lo, hi):
            self.cache.columns[key][positions] = np.frombuffer(data, dtype=np.uint8, count=len(positions), offset=at)
            at += len(positions)

    def share_columns(self, allocate: Callable[[int], np.ndarray]) -> None:
        """Move the columns that wait for buckets into arrays from ``allocate(length)`` (shared memory)."""
        for key, _ in self.work:
            column = allocate(len(self.index))
            column[:] = self.cache.columns[key]
            self.cache.columns[key] = column

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """The final rows of tenants ``lo:hi`` (their buckets stored)."""
        for j, key, mask, pct in self.pending:
            column = self.cache.columns[key][lo:hi] < pct
            self.columns[j, lo:hi] = column if mask is None else column & mask[lo:hi]
        return np.ascontiguousarray(self.columns[:, lo:hi].T)


def enabled_tenants(key: str, flag: Mapping[str, Any], index: TenantIndex, environment: str) -> set[int]:
    """Positions of the tenants for which the flag is on: ``evaluate`` for a whole inventory."""
    return set(np.flatnonzero(flag_column(key, flag, index, environment)).tolist())


def evaluate_matrix(flags: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                    environment: str, index: Optional[TenantIndex] = None) -> dict[str, set[int]]:
    """For every flag key, the positions of the tenants it is on for."""
    index = index or TenantIndex.build(tenants)
    keys = sorted(flags)
    matrix = evaluate_columns(flags, keys, index, environment)
    return {key: set(np.flatnonzero(matrix[:, j]).tolist()) for j, key in enumerate(keys)}
