"""The flag semantics, as pure functions with no dependencies beyond the standard library.

This module is the single source of truth for how a flag evaluates for a tenant. The
pipeline (compiler, plan, validation) and the service client both import it; the test
vectors in ``tests/vectors/buckets.csv`` pin the rollout hash for other languages.

The semantics never change: a changed bucket would reshuffle live tenants.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Optional, Union

STATES = ("off", "on", "targeted", "rollout")
#: Scope axes, in the order they are reported.
AXES = ("plans", "tenantSlugs", "partnerSlugs", "environments")

__all__ = [
    "AXES",
    "STATES",
    "bucket",
    "evaluate",
    "evaluate_all",
    "has_any_scope",
    "in_rollout_bucket",
    "matches_scope",
    "normalise_scope",
    "tenant_axis_values",
]


def bucket(tenant_id: str, key: str) -> int:
    """The tenant's rollout bucket for a flag, 0..99.

    The sha256 digest of ``"{tenant_id}:{key}"`` read as one big-endian integer, modulo 100.
    It depends on the immutable tenant id, never on the slug, so renames never reshuffle.
    """
    digest = hashlib.sha256(f"{tenant_id}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % 100


def in_rollout_bucket(tenant_id: str, key: str, pct: int) -> bool:
    """True when the tenant falls inside a ``pct`` percent rollout of ``key``.

    Raising ``pct`` only ever adds tenants: the bucket is fixed, the threshold moves.
    """
    return bucket(tenant_id, key) < pct


def normalise_scope(scope: Optional[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Every axis present, as a list (missing or null axes become empty)."""
    scope = scope or {}
    return {axis: list(scope.get(axis) or ()) for axis in AXES}


def has_any_scope(scope: Optional[Mapping[str, Any]]) -> bool:
    """True when at least one axis of the scope is non-empty."""
    if not scope:
        return False
    return any(scope.get(axis) for axis in AXES)


def tenant_axis_values(tenant: Mapping[str, Any], environment: str) -> dict[str, Optional[str]]:
    """The value a tenant presents on each axis (None when it has none, e.g. no partner)."""
    return {
        "plans": tenant.get("plan"),
        "tenantSlugs": tenant.get("slug"),
        "partnerSlugs": tenant.get("partnerSlug"),
        "environments": environment,
    }


def matches_scope(
    scope: Optional[Mapping[str, Any]], tenant: Mapping[str, Any], environment: str
) -> bool:
    """True when every non-empty axis of the scope contains the tenant's value on that axis.

    An empty scope matches everyone; a tenant without a partner never matches a non-empty
    ``partnerSlugs`` axis.
    """
    if not scope:
        return True
    values = tenant_axis_values(tenant, environment)
    for axis in AXES:
        allowed: Iterable[str] = scope.get(axis) or ()
        if allowed:
            value = values[axis]
            if value is None or value not in allowed:
                return False
    return True


def evaluate(flag: Mapping[str, Any], tenant: Mapping[str, Any], environment: str) -> bool:
    """The value of one flag for one tenant in one environment.

    ``flag`` carries ``key``, ``state``, ``pct`` and ``scope``; ``tenant`` carries ``id``,
    ``slug``, ``plan`` and optionally ``partnerSlug``.
    """
    state = flag.get("state")
    if state == "on":
        return True
    if state == "off":
        return False
    scope = flag.get("scope")
    if state == "targeted":
        return has_any_scope(scope) and matches_scope(scope, tenant, environment)
    if state == "rollout":
        if not matches_scope(scope, tenant, environment):
            return False
        return in_rollout_bucket(str(tenant["id"]), str(flag["key"]), int(flag.get("pct") or 0))
    # An unknown state never enables anything: fail closed.
    return False


def evaluate_all(
    flags: Union[Mapping[str, Mapping[str, Any]], Iterable[Mapping[str, Any]]],
    tenant: Mapping[str, Any],
    environment: str,
) -> dict[str, bool]:
    """Every flag's value for one tenant, keys sorted: the content of its bundle.

    ``flags`` is a mapping of key to flag (the key may be omitted from each flag) or an
    iterable of flags that carry their ``key``.
    """
    if isinstance(flags, Mapping):
        items = [(key, {**flag, "key": key}) for key, flag in flags.items()]
    else:
        items = [(flag["key"], flag) for flag in flags]
    return {key: evaluate(flag, tenant, environment) for key, flag in sorted(items, key=lambda kv: kv[0])}
