"""Evaluation: the pure semantics (shared with the service client) and whole-matrix evaluation.

``evaluate`` and friends are re-exported from :mod:`flagops_client.evaluation`, the one source
of truth. ``enabled_tenants`` evaluates one flag for a whole inventory at once, column by
column, and must agree with ``evaluate`` for every tenant (the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from flagops_client.evaluation import (
    AXES,
    STATES,
    bucket,
    evaluate,
    evaluate_all,
    has_any_scope,
    in_rollout_bucket,
    matches_scope,
    normalise_scope,
)

__all__ = [
    "AXES",
    "STATES",
    "TenantIndex",
    "bucket",
    "enabled_tenants",
    "evaluate",
    "evaluate_all",
    "evaluate_matrix",
    "has_any_scope",
    "in_rollout_bucket",
    "matches_scope",
    "normalise_flag",
    "normalise_scope",
]


def normalise_flag(flag: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a flag that decide its value: state, pct (0 when absent), all four axes."""
    return {
        "state": flag.get("state", "off"),
        "pct": int(flag.get("pct") or 0),
        "scope": normalise_scope(flag.get("scope")),
    }


@dataclass
class TenantIndex:
    """Tenant positions grouped by axis value, built once per inventory."""

    tenants: Sequence[Mapping[str, Any]]
    by_plan: dict[str, list[int]] = field(default_factory=dict)
    by_slug: dict[str, int] = field(default_factory=dict)
    by_partner: dict[str, list[int]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, tenants: Sequence[Mapping[str, Any]]) -> "TenantIndex":
        index = cls(tenants)
        for i, t in enumerate(tenants):
            index.by_plan.setdefault(t["plan"], []).append(i)
            index.by_slug[t["slug"]] = i
            partner = t.get("partnerSlug")
            if partner is not None:
                index.by_partner.setdefault(partner, []).append(i)
            index.ids.append(str(t["id"]))
        return index

    def __len__(self) -> int:
        return len(self.tenants)


def _candidates(scope: Mapping[str, Sequence[str]], index: TenantIndex, environment: str) -> Optional[set[int]]:
    """Tenants matching every non-empty axis; None means "all tenants" (no tenant axis set)."""
    envs = scope.get("environments") or ()
    if envs and environment not in envs:
        return set()
    result: Optional[set[int]] = None
    plans = scope.get("plans") or ()
    if plans:
        result = {i for p in plans for i in index.by_plan.get(p, ())}
    slugs = scope.get("tenantSlugs") or ()
    if slugs:
        chosen = {index.by_slug[s] for s in slugs if s in index.by_slug}
        result = chosen if result is None else result & chosen
    partners = scope.get("partnerSlugs") or ()
    if partners:
        chosen = {i for p in partners for i in index.by_partner.get(p, ())}
        result = chosen if result is None else result & chosen
    return result


def enabled_tenants(key: str, flag: Mapping[str, Any], index: TenantIndex, environment: str) -> set[int]:
    """Positions of the tenants for which the flag is on: ``evaluate`` for a whole inventory."""
    state = flag.get("state")
    n = len(index)
    if state == "on":
        return set(range(n))
    if state not in ("targeted", "rollout"):
        return set()
    scope = flag.get("scope") or {}
    if state == "targeted" and not has_any_scope(scope):
        return set()
    candidates = _candidates(scope, index, environment)
    if state == "targeted":
        return set(range(n)) if candidates is None else candidates
    pct = int(flag.get("pct") or 0)
    pool = range(n) if candidates is None else candidates
    if pct <= 0:
        return set()
    if pct >= 100:
        return set(pool)
    ids = index.ids
    return {i for i in pool if in_rollout_bucket(ids[i], key, pct)}


def evaluate_matrix(flags: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                    environment: str, index: Optional[TenantIndex] = None) -> dict[str, set[int]]:
    """For every flag key, the positions of the tenants it is on for."""
    index = index or TenantIndex.build(tenants)
    return {key: enabled_tenants(key, flag, index, environment) for key, flag in sorted(flags.items())}
