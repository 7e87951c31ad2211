"""The peers: the same flags evaluated by flagd's in-process evaluator and by UnleashClient.

Flags are translated to each peer's own format (flagd JSON with ``fractional`` for rollouts;
Unleash features with constraints and ``flexibleRollout``), and every (tenant, flag) pair is
evaluated through the peer's public API, offline (Unleash is bootstrapped from a dict and
never fetches). Rollout bucketing differs by design (flagd and Unleash hash with murmur3), so
agreement with flagops is checked on the non-rollout flags only.

Both peers are benchmark-only dependencies (the ``bench`` extra).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Optional, Sequence

Flag = Mapping[str, Any]
Tenant = Mapping[str, Any]

_CONTEXT = {"plans": "plan", "tenantSlugs": "slug", "partnerSlugs": "partnerSlug", "environments": "environment"}


# --------------------------------------------------------------------------- flagd


def flagd_flag(key: str, flag: Flag) -> dict[str, Any]:
    """One flag as flagd JSON: variants on/off, targeting as JSON Logic, ``fractional`` for rollouts."""
    base: dict[str, Any] = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    state = flag.get("state")
    scope = flag.get("scope") or {}
    conditions = [{"in": [{"var": _CONTEXT[axis]}, list(values)]} for axis, values in scope.items() if values]
    if state == "on":
        base["defaultVariant"] = "on"
    elif state == "targeted" and conditions:
        base["targeting"] = {"if": [{"and": conditions}, "on", "off"]}
    elif state == "rollout":
        pct = int(flag.get("pct") or 0)
        if pct >= 100:
            inner: Any = "on"
        elif pct <= 0:
            inner = "off"
        else:
            inner = {"fractional": [["on", pct], ["off", 100 - pct]]}
        base["targeting"] = {"if": [{"and": conditions}, inner, "off"]} if conditions else (
            {"if": [True, inner, "off"]} if isinstance(inner, str) else inner)
    return base


def flagd_evaluator(flags: Mapping[str, Flag]) -> Callable[[Tenant, str], dict[str, bool]]:
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    core = FlagdCore()
    core.set_flags({"flags": {k: flagd_flag(k, f) for k, f in flags.items()}})
    keys = sorted(flags)
    resolve = core.resolve_boolean_value

    def evaluate(tenant: Tenant, environment: str) -> dict[str, bool]:
        attrs = {"plan": tenant["plan"], "slug": tenant["slug"], "environment": environment}
        if tenant.get("partnerSlug") is not None:
            attrs["partnerSlug"] = tenant["partnerSlug"]
        ctx = EvaluationContext(targeting_key=str(tenant["id"]), attributes=attrs)
        return {k: bool(resolve(k, False, ctx).value) for k in keys}

    return evaluate


# --------------------------------------------------------------------------- Unleash


def unleash_feature(key: str, flag: Flag) -> dict[str, Any]:
    """One flag as an Unleash feature: constraints per axis, ``flexibleRollout`` for rollouts."""
    state = flag.get("state")
    scope = flag.get("scope") or {}
    constraints = [{"contextName": "flagopsEnv" if axis == "environments" else _CONTEXT[axis],
                    "operator": "IN", "values": list(values)} for axis, values in scope.items() if values]
    feature: dict[str, Any] = {"name": key, "enabled": False, "strategies": [], "type": "release"}
    if state == "on":
        feature.update(enabled=True, strategies=[{"name": "default", "parameters": {}}])
    elif state == "targeted" and constraints:
        feature.update(enabled=True, strategies=[{"name": "default", "parameters": {}, "constraints": constraints}])
    elif state == "rollout":
        pct = max(0, min(100, int(flag.get("pct") or 0)))
        feature.update(enabled=True, strategies=[{
            "name": "flexibleRollout", "constraints": constraints,
            "parameters": {"rollout": str(pct), "stickiness": "userId", "groupId": key}}])
    return feature


def unleash_evaluator(flags: Mapping[str, Flag]) -> tuple[Callable[[Tenant, str], dict[str, bool]], Callable[[], None]]:
    """(evaluate, close) for an UnleashClient bootstrapped offline: it never fetches or reports."""
    from UnleashClient import UnleashClient
    from UnleashClient.cache import BaseCache
    from UnleashClient.constants import FEATURES_URL
    import json

    class MemoryCache(BaseCache):
        def __init__(self) -> None:
            self.data: dict[str, Any] = {}
            self.bootstrapped = True

        def set(self, key: str, value: Any) -> None:
            self.data[key] = value

        def mset(self, data: dict) -> None:
            self.data.update(data)

        def get(self, key: str, default: Optional[Any] = None) -> Any:
            return self.data.get(key, default)

        def exists(self, key: str) -> bool:
            return key in self.data

        def destroy(self) -> None:
            self.data.clear()

    logging.getLogger("UnleashClient").setLevel(logging.ERROR)
    cache = MemoryCache()
    cache.set(FEATURES_URL, json.dumps({"version": 2, "features": [unleash_feature(k, f) for k, f in flags.items()]}))
    client = UnleashClient(url="http://127.0.0.1:9/api", app_name="flagops-bench", disable_metrics=True,
                           disable_registration=True, cache=cache, refresh_interval=3600)
    client.initialize_client(fetch_toggles=False)
    keys = sorted(flags)
    is_enabled = client.is_enabled

    def evaluate(tenant: Tenant, environment: str) -> dict[str, bool]:
        props = {"plan": tenant["plan"], "slug": tenant["slug"], "flagopsEnv": environment}
        if tenant.get("partnerSlug") is not None:
            props["partnerSlug"] = tenant["partnerSlug"]
        context = {"userId": str(tenant["id"]), "properties": props}
        return {k: bool(is_enabled(k, context)) for k in keys}

    return evaluate, client.destroy


# --------------------------------------------------------------------------- timing


def time_peer(evaluate: Callable[[Tenant, str], dict[str, bool]], tenants: Sequence[Tenant],
              environment: str) -> tuple[float, list[dict[str, bool]]]:
    """Seconds to evaluate every flag for every tenant, and the values."""
    start = time.perf_counter()
    values = [evaluate(t, environment) for t in tenants]
    return time.perf_counter() - start, values


def agreement(flags: Mapping[str, Flag], expected: Sequence[Mapping[str, bool]],
              got: Sequence[Mapping[str, bool]]) -> float:
    """Share of non-rollout (tenant, flag) values on which a peer agrees with flagops."""
    keys = [k for k, f in flags.items() if f.get("state") != "rollout"]
    total = same = 0
    for e, g in zip(expected, got):
        for k in keys:
            total += 1
            same += e[k] == g[k]
    return same / total if total else 1.0


def main(argv: Sequence[str]) -> int:
    """``peers.py ROOT ENV SAMPLE RUNS``: time both peers on a sample, print JSON (own process)."""
    import json
    import sys
    from pathlib import Path

    from flagops.loading import FsSource, load_project
    from flagops_client.evaluation import evaluate_all

    root, environment, sample_size, runs = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    project = load_project(FsSource(root), [environment])
    flags = project.flag_data()
    tenants = project.inventories[environment].tenants
    sample = tenants[:: max(1, len(tenants) // sample_size)][:sample_size]
    expected = [evaluate_all(flags, t, environment) for t in sample]
    result: dict[str, Any] = {"tenants": len(tenants), "sample": len(sample)}
    makers = {"flagd": lambda: (flagd_evaluator(flags), None), "unleash": lambda: unleash_evaluator(flags)}
    for name, make in makers.items():
        try:
            evaluate, close = make()
        except ImportError as exc:
            result[name] = {"missing": exc.name}
            continue
        times, agree = [], 1.0
        for _ in range(runs):
            seconds, got = time_peer(evaluate, sample, environment)
            times.append(seconds)
            agree = agreement(flags, expected, got)
        if close:
            close()
        result[name] = {"times": times, "agree": agree}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
