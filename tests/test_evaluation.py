"""The semantics: committed vectors, hand-picked cases, and the column-wise path against evaluate."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import pytest

from flagops_client.evaluation import (
    AXES,
    bucket,
    evaluate,
    evaluate_all,
    has_any_scope,
    in_rollout_bucket,
    matches_scope,
)

from flagops.matrix import TenantIndex, enabled_tenants, evaluate_matrix, normalise_flag

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "scripts" / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bucket_rows() -> list[dict[str, str]]:
    with (VECTORS / "buckets.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _cases() -> list[dict[str, Any]]:
    return json.loads((VECTORS / "evaluate.json").read_text(encoding="utf-8"))["cases"]


# --------------------------------------------------------------------------- buckets.csv


def test_bucket_vectors_are_many_and_diverse() -> None:
    rows = _bucket_rows()
    assert len(rows) >= 1000
    ids = {r["tenantId"] for r in rows}
    assert any(not i.isascii() for i in ids), "unicode ids"
    assert any(len(i) >= 256 for i in ids), "long ids"
    assert any("," in i or '"' in i for i in ids), "ids that need CSV quoting"
    assert {int(r["bucket"]) for r in rows} == set(range(100)), "every bucket value occurs"


def test_bucket_matches_every_vector() -> None:
    wrong = [(r["tenantId"], r["key"]) for r in _bucket_rows() if bucket(r["tenantId"], r["key"]) != int(r["bucket"])]
    assert wrong == []


def test_vectorised_buckets_equal_bucket() -> None:
    """The compiler's batch hashing (digests as 64-bit words, remainder by numpy) is ``bucket``."""
    import numpy as np

    from flagops.matrix import _hash_buckets

    rows = _bucket_rows()
    ids = sorted({r["tenantId"] for r in rows}) + [f"t-{i}-\u00e9\U0001f680" for i in range(3000)]
    prefixes = [f"{i}:".encode("utf-8") for i in ids]
    for key in sorted({r["key"] for r in rows})[:5] + ["k", "unicode_\u00fc"]:
        got = _hash_buckets(prefixes, np.arange(len(ids)), key)
        assert list(got) == [bucket(i, key) for i in ids], key
        # Some tenants, and every tenant in another order: each position's own bucket.
        for positions in (np.arange(1, len(ids), 3), np.arange(len(ids))[::-1].copy()):
            got = _hash_buckets(prefixes, positions, key)
            assert list(got) == [bucket(ids[p], key) for p in positions.tolist()], key
    assert _hash_buckets(prefixes, np.arange(0), "k") == b""


def test_in_rollout_bucket_is_bucket_below_pct() -> None:
    for row in _bucket_rows()[:300]:
        b = int(row["bucket"])
        tid, key = row["tenantId"], row["key"]
        assert not in_rollout_bucket(tid, key, 0)
        assert in_rollout_bucket(tid, key, 100)
        assert not in_rollout_bucket(tid, key, b)
        assert in_rollout_bucket(tid, key, b + 1)


def test_committed_vectors_are_what_the_script_generates(tmp_path: Path) -> None:
    script = _load_script()
    import sys

    argv = sys.argv
    sys.argv = ["make_vectors.py", "--out", str(tmp_path)]
    try:
        script.main()
    finally:
        sys.argv = argv
    for name in ("buckets.csv", "evaluate.json"):
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), f"{name} is stale"


def test_the_reference_in_the_script_is_independent() -> None:
    source = (ROOT / "scripts" / "make_vectors.py").read_text(encoding="utf-8")
    assert "flagops" not in "\n".join(l for l in source.splitlines() if l.startswith(("import", "from")))


# --------------------------------------------------------------------------- evaluate.json


def test_cases_cover_every_state_and_axis() -> None:
    cases = _cases()
    assert {c["flag"]["state"] for c in cases} == {"off", "on", "targeted", "rollout"}
    for axis in AXES:
        hits = [c for c in cases if (c["flag"].get("scope") or {}).get(axis)]
        assert any(c["expected"] for c in hits) and not all(c["expected"] for c in hits), axis
    assert any("partnerSlug" not in c["tenant"] and (c["flag"].get("scope") or {}).get("partnerSlugs")
               for c in cases)
    assert {0, 100} <= {c["flag"].get("pct") for c in cases}
    names = {c["name"] for c in cases}
    assert "targeted with only environments matches everyone there" in names
    assert "tenant without partner never matches a partner axis" in names


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_evaluate_matches_the_vectors(case: dict[str, Any]) -> None:
    assert evaluate(case["flag"], case["tenant"], case["environment"]) is case["expected"]


def test_evaluate_all_matches_the_vectors() -> None:
    cases = _cases()
    for case in cases:
        flag = case["flag"]
        assert evaluate_all([flag], case["tenant"], case["environment"]) == {flag["key"]: case["expected"]}
        keyless = {k: v for k, v in flag.items() if k != "key"}
        assert evaluate_all({flag["key"]: keyless}, case["tenant"], case["environment"]) == {
            flag["key"]: case["expected"]}


def test_enabled_tenants_matches_the_vectors() -> None:
    for case in _cases():
        flag = case["flag"]
        index = TenantIndex.build([case["tenant"]])
        assert (enabled_tenants(flag["key"], flag, index, case["environment"]) == {0}) is case["expected"], case["name"]


def test_evaluate_all_is_sorted_and_complete() -> None:
    tenant = {"id": "t1", "slug": "acme", "plan": "enterprise"}
    flags = {"zeta": {"state": "on"}, "alpha": {"state": "off"},
             "mid": {"state": "targeted", "scope": {"plans": ["enterprise"]}}}
    result = evaluate_all(flags, tenant, "production")
    assert list(result) == ["alpha", "mid", "zeta"]
    assert result == {"alpha": False, "mid": True, "zeta": True}
    assert evaluate_all({}, tenant, "production") == {}


def test_scope_helpers() -> None:
    tenant = {"id": "t1", "slug": "acme", "plan": "free"}
    assert not has_any_scope(None) and not has_any_scope({}) and not has_any_scope({a: [] for a in AXES})
    assert has_any_scope({"environments": ["staging"]})
    assert matches_scope(None, tenant, "production")
    assert matches_scope({"plans": [], "environments": ["production"]}, tenant, "production")
    assert not matches_scope({"partnerSlugs": ["x"]}, tenant, "production")
    assert not matches_scope({"tenantSlugs": ["other"]}, tenant, "production")


def test_bucket_uses_the_id_never_the_slug() -> None:
    flag = {"key": "jmap_native_v2", "state": "rollout", "pct": 50}
    values = set()
    for slug in ("acme", "acme-renamed", "x"):
        values.add(evaluate(flag, {"id": "t_fixed", "slug": slug, "plan": "free"}, "production"))
    assert len(values) == 1


def test_raising_pct_only_adds_tenants() -> None:
    ids = [f"t{i}" for i in range(300)]
    previous: set[str] = set()
    for pct in range(0, 101, 5):
        now = {i for i in ids if in_rollout_bucket(i, "video_meetings", pct)}
        assert previous <= now
        previous = now
    assert previous == set(ids)


def test_unknown_state_fails_closed() -> None:
    assert evaluate({"key": "k1", "state": "maybe"}, {"id": "1", "slug": "a", "plan": "free"}, "staging") is False


def test_normalise_flag_has_every_axis() -> None:
    out = normalise_flag({"state": "targeted", "scope": {"plans": ["free"]}})
    assert out == {"state": "targeted", "pct": 0,
                   "scope": {"plans": ["free"], "tenantSlugs": [], "partnerSlugs": [], "environments": []}}


# --------------------------------------------------------------------------- column-wise path


PLANS = ["free", "starter", "business", "enterprise"]
ENVS = ["development", "staging", "production"]


def random_tenants(rng: random.Random, n: int) -> list[dict[str, Any]]:
    partners = ["p-a", "p-b", "p-c"]
    tenants = []
    for i in range(n):
        t: dict[str, Any] = {"id": rng.choice([f"t_{rng.getrandbits(48):012x}", f"ü-{i}", str(i)]),
                             "slug": f"s-{i}", "plan": rng.choice(PLANS)}
        if rng.random() < 0.5:
            t["partnerSlug"] = rng.choice(partners)
        tenants.append(t)
    return tenants


def random_flag(rng: random.Random, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    state = rng.choice(["off", "on", "targeted", "rollout", "targeted", "rollout"])
    flag: dict[str, Any] = {"state": state}
    if state == "rollout" or rng.random() < 0.2:
        flag["pct"] = rng.choice([0, 1, 50, 99, 100, rng.randint(0, 100)])
    if rng.random() < 0.8:
        slugs = [t["slug"] for t in tenants] + ["not-in-inventory"]
        pools = {"plans": PLANS, "tenantSlugs": slugs, "partnerSlugs": ["p-a", "p-b", "p-c", "p-none"],
                 "environments": ENVS}
        flag["scope"] = {axis: rng.sample(pool, rng.randint(0, min(3, len(pool))))
                         for axis, pool in pools.items() if rng.random() < 0.5}
    return flag


@pytest.mark.parametrize("seed", range(40))
def test_enabled_tenants_equals_evaluate(seed: int) -> None:
    rng = random.Random(seed)
    tenants = random_tenants(rng, rng.randint(0, 60))
    index = TenantIndex.build(tenants)
    for _ in range(25):
        key = rng.choice(["k_" + str(rng.randint(0, 999)), "jmap_native_v2"])
        flag = random_flag(rng, tenants)
        env = rng.choice(ENVS)
        expected = {i for i, t in enumerate(tenants) if evaluate({**flag, "key": key}, t, env)}
        assert enabled_tenants(key, flag, index, env) == expected, (key, flag, env)


def test_evaluate_matrix_equals_evaluate_all() -> None:
    rng = random.Random(7)
    tenants = random_tenants(rng, 120)
    flags = {f"flag_{i}": random_flag(rng, tenants) for i in range(30)}
    for env in ENVS:
        matrix = evaluate_matrix(flags, tenants, env)
        assert list(matrix) == sorted(flags)
        for i, tenant in enumerate(tenants):
            row = evaluate_all(flags, tenant, env)
            assert row == {key: i in matrix[key] for key in flags}


def test_large_inventory_hashed_on_several_cores_equals_evaluate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough rollout hashing that the column-wise path splits the work across processes."""
    import flagops.matrix

    monkeypatch.setenv("FLAGOPS_JOBS", "2")
    monkeypatch.setattr(flagops.matrix, "PARALLEL_HASH_MIN", 2_000, raising=False)
    rng = random.Random(2026)
    tenants = random_tenants(rng, 20_000)
    flags = {"roll_a": {"state": "rollout", "pct": 37},
             "roll_b": {"state": "rollout", "pct": 50, "scope": {"environments": ["production"]}},
             "roll_c": {"state": "rollout", "pct": 99, "scope": {"plans": ["free", "starter", "business",
                                                                            "enterprise"]}},
             "target": {"state": "targeted", "scope": {"partnerSlugs": ["p-a"], "plans": ["free"]}}}
    matrix = evaluate_matrix(flags, tenants, "production")
    for key, flag in flags.items():
        expected = {i for i, t in enumerate(tenants) if evaluate({**flag, "key": key}, t, "production")}
        assert matrix[key] == expected, key
