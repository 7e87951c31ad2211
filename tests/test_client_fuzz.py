"""Fuzz the client's document checks (bundle, head, snapshot, rules): whatever the bytes, a check
either returns a well-formed value or raises DocumentError, never anything else. Bounded to a
few seconds in all."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagops_client.documents import (
    KEY,
    SLUG,
    DocumentError,
    parse_bundle,
    parse_head,
    parse_rules,
    parse_snapshot,
)

ENV = "production"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
keys = st.text(alphabet="ab_1", min_size=1, max_size=6).map(lambda s: "k" + s)
slugs = st.text(alphabet="ab-1", max_size=6).map(lambda s: "t" + s)

VALID = {
    "bundle": {"environment": ENV, "flags": {"a_flag": True}, "schemaVersion": 1, "tenant": "acme"},
    "head": {"environment": ENV, "off": ["a_flag"], "publishedAt": "2026-12-01T21:30:00Z",
             "revision": "0" * 40, "schemaVersion": 1, "sequence": 3, "snapshot": "sha256:" + "a" * 64},
    "snapshot": {"environment": ENV, "flags": ["a_flag", "b_flag"], "revision": None, "schemaVersion": 1,
                 "tenants": {"acme": "Aw==", "globex": "AQ=="}},
    "rules": {"environment": ENV, "schemaVersion": 1, "flags": {"a_flag": {
        "state": "rollout", "pct": 5, "scope": {"plans": [], "partnerSlugs": [], "tenantSlugs": [], "environments": []}}}},
}


def check(kind: str, data: bytes) -> Any:
    try:
        if kind == "bundle":
            flags = parse_bundle(data, ENV, "acme")
            assert all(type(v) is bool and KEY.fullmatch(k) for k, v in flags.items())
            return flags
        if kind == "head":
            head = parse_head(data, ENV)
            assert type(head.sequence) is int and head.sequence >= 1
            assert all(KEY.fullmatch(k) for k in head.off)
            return head
        if kind == "snapshot":
            snap = parse_snapshot(data, ENV)
            size = (len(snap.flags) + 7) // 8
            assert all(SLUG.fullmatch(t) and len(b) == size for t, b in snap.tenants.items())
            assert list(snap.flags) == sorted(set(snap.flags))
            return snap
        rules = parse_rules(data, ENV)
        assert all(0 <= f["pct"] <= 100 and type(f["pct"]) is int for f in rules.values())
        return rules
    except DocumentError:
        return None


KINDS = st.sampled_from(sorted(VALID))


def test_the_valid_documents_pass():
    for kind, doc in VALID.items():
        assert check(kind, json.dumps(doc).encode()) is not None


@FUZZ
@given(KINDS, st.binary(max_size=200))
def test_arbitrary_bytes(kind, data):
    check(kind, data)


@FUZZ
@given(KINDS, json_values)
def test_arbitrary_json(kind, value):
    check(kind, json.dumps(value).encode())


@FUZZ
@given(KINDS, st.data())
def test_one_field_of_a_valid_document_replaced(kind, data):
    doc = json.loads(json.dumps(VALID[kind]))
    field = data.draw(st.sampled_from(sorted(doc)))
    doc[field] = data.draw(json_values)
    check(kind, json.dumps(doc).encode())


@FUZZ
@given(st.lists(keys, max_size=20, unique=True), st.dictionaries(slugs, st.binary(max_size=4), max_size=8))
def test_snapshot_bitsets_round_trip_or_are_refused(flags, tenants):
    doc = {**VALID["snapshot"], "flags": sorted(flags),
           "tenants": {t: base64.b64encode(b).decode() for t, b in tenants.items()}}
    snap = check("snapshot", json.dumps(doc).encode())
    size = (len(flags) + 7) // 8
    assert (snap is not None) == all(len(b) == size for b in tenants.values())
    if snap is not None:
        for t, b in tenants.items():
            assert snap.values(t) == {k: bool(b[i >> 3] >> (i & 7) & 1) for i, k in enumerate(sorted(flags))}


@settings(max_examples=20, deadline=None)
@given(KINDS, st.integers(1, 200_000), st.sampled_from("[{"))
def test_deep_nesting_is_a_document_error(kind, depth, bracket):
    assert check(kind, (bracket if bracket == "[" else '{"a":') .encode() * depth) is None
