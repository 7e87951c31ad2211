#!/usr/bin/env python3
"""Regenerate tests/vectors/: rollout buckets and evaluation cases, for every language.

The expected values come from a second implementation written straight from the README's
semantics, with nothing imported from flagops, so the committed vectors check the shipped
functions rather than echo them. Output is deterministic (fixed seed): rerunning it must
leave the files unchanged.

    python scripts/make_vectors.py [--out tests/vectors]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

PLANS = ["free", "starter", "business", "enterprise"]
ENVIRONMENTS = ["development", "staging", "production"]
FLAG_KEYS = ["jmap_native_v2", "gdpr_export_v2", "new_billing_engine", "activesync_mobile",
             "ocis_spaces_v2", "collabora_editing", "zulip_chat", "video_meetings",
             "partner_whitelabel", "dkim_auto_rotation"]


# --------------------------------------------------------------------------- the semantics, again


def spec_bucket(tenant_id: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{tenant_id}:{key}".encode("utf-8")).digest(), "big") % 100


def spec_evaluate(flag: dict[str, Any], tenant: dict[str, Any], environment: str) -> bool:
    scope = flag.get("scope") or {}
    axes = {
        "plans": tenant["plan"],
        "tenantSlugs": tenant["slug"],
        "partnerSlugs": tenant.get("partnerSlug"),
        "environments": environment,
    }
    non_empty = {axis: values for axis, values in scope.items() if values}
    matches = all(axes[axis] is not None and axes[axis] in values for axis, values in non_empty.items())
    state = flag["state"]
    if state == "off":
        return False
    if state == "on":
        return True
    if state == "targeted":
        return bool(non_empty) and matches
    if state == "rollout":
        return matches and spec_bucket(tenant["id"], flag["key"]) < flag["pct"]
    raise ValueError(state)


# --------------------------------------------------------------------------- buckets.csv


def tenant_ids(rng: random.Random) -> list[str]:
    ids = [
        "t_e1b52bb98c4aac2b", "1", "0", "-1", " ", "a b", "tenant:with:colons", "comma,separated",
        'quote"inside', "München GmbH", "Société Générale", "Ærø",
        "日本語テナント", "租户-42", "Ελληνικά", "кириллица", "عربي", "emoji-🚀", "👩‍💻", "\u00e9",
        "e\u0301",  # the same letter, decomposed: a different id, a different bucket
        "x" * 256, "Z" * 1000, "ü" * 300, "0" * 64,
    ]
    for i in range(120):
        ids.append(f"t_{rng.getrandbits(64):016x}")
    for i in range(60):
        ids.append(str(rng.getrandbits(128) >> 1).zfill(39))
    for i in range(40):
        h = f"{rng.getrandbits(128):032x}"
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}")
    for i in range(20):
        ids.append("".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                           rng.randint(0x1f300, 0x1f64f)])) for _ in range(rng.randint(1, 40))))
    return ids


def bucket_rows(rng: random.Random) -> list[tuple[str, str, int]]:
    keys = FLAG_KEYS + ["ab", "a" * 64, "z9_", "new_search", "k_" + "0" * 61]
    rows = []
    for tid in tenant_ids(rng):
        for key in rng.sample(keys, 4):
            rows.append((tid, key, spec_bucket(tid, key)))
    return rows


def render_csv(rows: list[tuple[str, str, int]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["tenantId", "key", "bucket"])
    writer.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- evaluate.json

TENANTS = {
    "ent_partner": {"id": "t_0001", "slug": "acme", "plan": "enterprise", "partnerSlug": "nordcloud-it"},
    "biz_no_partner": {"id": "t_0002", "slug": "muenchen-kanzlei", "plan": "business"},
    "free_partner": {"id": "t_0003", "slug": "helsinki-design", "plan": "free", "partnerSlug": "alpine-msp"},
    "starter_unicode_id": {"id": "Mandant-ä-🚀", "slug": "studio-x", "plan": "starter"},
}


def named_cases() -> list[dict[str, Any]]:
    """Hand-picked cases: every state, every axis, the edges the semantics name."""
    def flag(state: str, pct: Any = None, key: str = "gdpr_export_v2", **scope: list[str]) -> dict[str, Any]:
        f: dict[str, Any] = {"key": key, "state": state}
        if pct is not None:
            f["pct"] = pct
        if scope:
            f["scope"] = scope
        return f

    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("off is false", flag("off"), "ent_partner", "production"),
        ("off ignores a matching scope", flag("off", plans=["enterprise"]), "ent_partner", "production"),
        ("on is true", flag("on"), "biz_no_partner", "development"),
        ("on ignores a non-matching scope", flag("on", plans=["free"]), "ent_partner", "staging"),
        ("targeted without scope matches nobody", flag("targeted"), "ent_partner", "production"),
        ("targeted with all axes empty matches nobody",
         flag("targeted", plans=[], tenantSlugs=[], partnerSlugs=[], environments=[]), "ent_partner", "production"),
        ("targeted plan matches", flag("targeted", plans=["business", "enterprise"]), "ent_partner", "production"),
        ("targeted plan misses", flag("targeted", plans=["business"]), "ent_partner", "production"),
        ("targeted slug matches", flag("targeted", tenantSlugs=["acme"]), "ent_partner", "staging"),
        ("targeted slug misses", flag("targeted", tenantSlugs=["acme"]), "biz_no_partner", "staging"),
        ("targeted partner matches", flag("targeted", partnerSlugs=["nordcloud-it"]), "ent_partner", "staging"),
        ("targeted partner misses", flag("targeted", partnerSlugs=["nordcloud-it"]), "free_partner", "staging"),
        ("tenant without partner never matches a partner axis",
         flag("targeted", partnerSlugs=["nordcloud-it", "alpine-msp"]), "biz_no_partner", "production"),
        ("targeted with only environments matches everyone there",
         flag("targeted", environments=["production"]), "biz_no_partner", "production"),
        ("targeted with only environments misses elsewhere",
         flag("targeted", environments=["production"]), "biz_no_partner", "staging"),
        ("every non-empty axis must match (all match)",
         flag("targeted", plans=["enterprise"], tenantSlugs=["acme"], partnerSlugs=["nordcloud-it"],
              environments=["production"]), "ent_partner", "production"),
        ("every non-empty axis must match (environment misses)",
         flag("targeted", plans=["enterprise"], tenantSlugs=["acme"], partnerSlugs=["nordcloud-it"],
              environments=["staging"]), "ent_partner", "production"),
        ("empty axes are ignored", flag("targeted", plans=["enterprise"], tenantSlugs=[]), "ent_partner", "staging"),
        ("rollout 0 is nobody", flag("rollout", 0), "ent_partner", "production"),
        ("rollout 100 is everyone in scope", flag("rollout", 100), "biz_no_partner", "production"),
        ("rollout 100 still needs the scope", flag("rollout", 100, plans=["free"]), "biz_no_partner", "production"),
        ("rollout 100 with partner axis, no partner",
         flag("rollout", 100, partnerSlugs=["alpine-msp"]), "biz_no_partner", "production"),
        ("rollout with empty scope uses the bucket", flag("rollout", 50, key="jmap_native_v2"),
         "ent_partner", "production"),
        ("rollout with environments", flag("rollout", 30, key="jmap_native_v2", environments=["staging"]),
         "free_partner", "development"),
        ("rollout hashes the id, not the slug", flag("rollout", 50, key="new_billing_engine"),
         "starter_unicode_id", "staging"),
    ]
    out = []
    for name, f, tenant_name, env in cases:
        tenant = TENANTS[tenant_name]
        out.append({"name": name, "flag": f, "tenant": tenant, "environment": env,
                    "expected": spec_evaluate(f, tenant, env)})
    # The rollout threshold: one tenant, one key, pct on each side of its bucket.
    tenant = TENANTS["ent_partner"]
    b = spec_bucket(tenant["id"], "zulip_chat")
    for pct in sorted({0, b, b + 1, 100}):
        f = flag("rollout", pct, key="zulip_chat")
        out.append({"name": f"rollout threshold: bucket {b}, pct {pct}", "flag": f, "tenant": tenant,
                    "environment": "production", "expected": spec_evaluate(f, tenant, "production")})
    return out


def random_cases(rng: random.Random, n: int) -> list[dict[str, Any]]:
    partners = ["nordcloud-it", "alpine-msp", "benelux-hosting"]
    slugs = [f"tenant-{i}" for i in range(8)]
    out = []
    for i in range(n):
        tenant = {"id": f"t_{rng.getrandbits(40):010x}", "slug": rng.choice(slugs), "plan": rng.choice(PLANS)}
        if rng.random() < 0.6:
            tenant["partnerSlug"] = rng.choice(partners)
        scope = {}
        for axis, pool in (("plans", PLANS), ("tenantSlugs", slugs), ("partnerSlugs", partners),
                           ("environments", ENVIRONMENTS)):
            if rng.random() < 0.45:
                scope[axis] = rng.sample(pool, rng.randint(0, 2))
        f: dict[str, Any] = {"key": rng.choice(FLAG_KEYS), "state": rng.choice(["off", "on", "targeted", "rollout"])}
        if f["state"] == "rollout":
            f["pct"] = rng.choice([0, 1, 25, 50, 99, 100, rng.randint(0, 100)])
        if scope:
            f["scope"] = scope
        env = rng.choice(ENVIRONMENTS)
        out.append({"name": f"random {i}", "flag": f, "tenant": tenant, "environment": env,
                    "expected": spec_evaluate(f, tenant, env)})
    return out


def render_cases(rng: random.Random) -> str:
    doc = {
        "description": "flag x tenant x environment -> expected value; see README 'Semantics'",
        "cases": named_cases() + random_cases(rng, 300),
    }
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "vectors")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20260101)
    rows = bucket_rows(rng)
    (args.out / "buckets.csv").write_text(render_csv(rows), encoding="utf-8", newline="")
    (args.out / "evaluate.json").write_text(render_cases(rng), encoding="utf-8")
    print(f"{len(rows)} bucket rows, evaluation cases written to {args.out}")


if __name__ == "__main__":
    main()
