"""Seeded synthetic repositories for the benchmarks: many tenants, many flags, realistic mix.

Tenants: plans skewed to free/starter, about a quarter sold through partners (a few large
partners, a long tail of small ones), realistic slugs and opaque ids. Flags: off, on, targeted
(plan scopes, partner scopes, allowlists of tenant slugs, environment scopes) and rollouts
(unscoped and plan- or partner-scoped), every one valid against the schema.

    python benchmarks/generate.py OUT_DIR --tenants 100000 --flags 200 [--seed 1] [--env production]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, Optional

WORDS = ["alpen", "baltic", "rhein", "danube", "nord", "sud", "atlas", "linden", "eiche", "birke",
         "falke", "adler", "kiefer", "mosel", "elbe", "oder", "loire", "tajo", "arno", "vltava",
         "hansa", "kontor", "werk", "atelier", "studio", "praxis", "kanzlei", "verlag", "bau", "logistik",
         "helsinki", "porto", "gent", "graz", "lyon", "turku", "brno", "malmo", "bergen", "cluj"]
SUFFIXES = ["gmbh", "ag", "sarl", "bv", "srl", "oy", "ab", "kg", "sas", "spa", "sro", "as"]
LEGAL = {"gmbh": "GmbH", "ag": "AG", "sarl": "SARL", "bv": "B.V.", "srl": "S.r.l.", "oy": "Oy", "ab": "AB",
         "kg": "KG", "sas": "SAS", "spa": "S.p.A.", "sro": "s.r.o.", "as": "AS"}
PLANS = ("free", "starter", "business", "enterprise")
PLAN_WEIGHTS = (45, 30, 18, 7)
ENVIRONMENTS = ("development", "staging", "production")
#: Share of flags per state (rollouts are about a fifth of all flags, as on a busy platform).
STATE_WEIGHTS = {"off": 20, "on": 35, "targeted": 25, "rollout": 20}
TOPICS = ["mail", "calendar", "drive", "office", "chat", "meetings", "billing", "admin", "security",
          "search", "sync", "mobile", "export", "import", "audit", "sso", "backup", "spaces", "api", "ui"]
TEAMS = ["mail", "files", "collab", "billing", "platform", "security", "mobile"]


def make_tenants(count: int, seed: int = 1, partner_share: float = 0.25) -> list[dict[str, Any]]:
    """``count`` tenants with unique ids and slugs, deterministic for a seed."""
    rng = random.Random(f"tenants-{seed}")
    n_partners = max(5, count // 400)
    partners = [f"{rng.choice(WORDS)}-{rng.choice(['it', 'msp', 'hosting', 'cloud', 'systems'])}-{i}"
                for i in range(n_partners)]
    # A few partners bring most partner tenants (Zipf-like weights).
    partner_weights = [1.0 / (i + 1) for i in range(n_partners)]
    tenants: list[dict[str, Any]] = []
    used: set[str] = set()
    for i in range(count):
        a, b, suffix = rng.choice(WORDS), rng.choice(WORDS), rng.choice(SUFFIXES)
        slug = f"{a}-{b}-{suffix}"
        if slug in used:
            slug = f"{a}-{b}-{suffix}-{i}"
        used.add(slug)
        tenant: dict[str, Any] = {
            "id": f"t_{rng.getrandbits(64):016x}",
            "slug": slug,
            "name": f"{a.capitalize()} {b.capitalize()} {LEGAL[suffix]}",
            "plan": rng.choices(PLANS, PLAN_WEIGHTS)[0],
        }
        if rng.random() < partner_share:
            tenant["partnerSlug"] = rng.choices(partners, partner_weights)[0]
        tenants.append(tenant)
    return tenants


def make_flags(count: int, tenants: list[dict[str, Any]], seed: int = 1) -> dict[str, dict[str, Any]]:
    """``count`` valid flags keyed by key; targeted/rollout scopes refer to real tenants/partners."""
    rng = random.Random(f"flags-{seed}")
    slugs = [t["slug"] for t in tenants]
    partners = sorted({t["partnerSlug"] for t in tenants if "partnerSlug" in t})
    states = list(STATE_WEIGHTS)
    weights = list(STATE_WEIGHTS.values())
    flags: dict[str, dict[str, Any]] = {}
    for i in range(count):
        key = f"{rng.choice(TOPICS)}_{rng.choice(TOPICS)}_v{i}"
        state = rng.choices(states, weights)[0] if i >= 4 else states[i]  # every state at least once
        flag: dict[str, Any] = {"key": key, "description": f"Synthetic flag {i} for the benchmarks",
                                "owner": f"{rng.choice(TEAMS)}@dezky.eu", "state": state}
        scope: dict[str, list[str]] = {}
        if state == "targeted":
            kind = rng.random()
            if kind < 0.35:
                scope["plans"] = sorted(rng.sample(PLANS[2:], rng.randint(1, 2)))
            elif kind < 0.6:
                scope["tenantSlugs"] = sorted(rng.sample(slugs, min(len(slugs), rng.randint(1, 40))))
            elif kind < 0.8:
                scope["partnerSlugs"] = sorted(rng.sample(partners, min(len(partners), rng.randint(1, 3))))
            else:
                scope["plans"] = ["enterprise"]
                scope["environments"] = sorted(rng.sample(ENVIRONMENTS, 2))
        elif state == "rollout":
            flag["pct"] = rng.choice([1, 5, 10, 25, 50, 75, 90])
            kind = rng.random()
            if kind < 0.3:
                scope["plans"] = sorted(rng.sample(PLANS, rng.randint(1, 2)))
            elif kind < 0.4:
                scope["partnerSlugs"] = sorted(rng.sample(partners, min(len(partners), rng.randint(1, 2))))
        if scope:
            flag["scope"] = scope
        flags[key] = flag
    return flags


def flag_yaml(flag: dict[str, Any]) -> str:
    lines = ["# yaml-language-server: $schema=../schema/flag.schema.json",
             f"key: {flag['key']}", f"description: {flag['description']}",
             f"owner: {flag['owner']}", f"state: {flag['state']}"]
    if "pct" in flag:
        lines.append(f"pct: {flag['pct']}")
    if flag.get("scope"):
        lines.append("scope:")
        for axis, values in flag["scope"].items():
            lines.append(f"  {axis}: [{', '.join(values)}]")
    return "\n".join(lines) + "\n"


def rollout_keys(flags: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(k for k, f in flags.items() if f["state"] == "rollout")


def write_repo(root: Path, tenants: int, flags: int, *, seed: int = 1, environment: str = "production",
               inventory_format: str = "json") -> dict[str, Any]:
    """Write ``root/flags/*.yaml`` and ``root/tenants/<environment>.json``; return the data."""
    tenant_list = make_tenants(tenants, seed)
    flag_map = make_flags(flags, tenant_list, seed)
    (root / "flags").mkdir(parents=True, exist_ok=True)
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    for key, flag in flag_map.items():
        (root / "flags" / f"{key}.yaml").write_text(flag_yaml(flag), encoding="utf-8")
    if inventory_format == "json":
        (root / "tenants" / f"{environment}.json").write_text(
            json.dumps(tenant_list, ensure_ascii=False, indent=0), encoding="utf-8")
    else:
        import yaml

        (root / "tenants" / f"{environment}.yaml").write_text(
            yaml.safe_dump(tenant_list, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return {"tenants": tenant_list, "flags": flag_map, "environment": environment}


def set_pct(root: Path, key: str, pct: int) -> None:
    """Change one rollout flag's pct in place (the one-flag change the benchmarks recompile)."""
    path = root / "flags" / f"{key}.yaml"
    lines = [f"pct: {pct}" if line.startswith("pct:") else line
             for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--flags", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", default="production", choices=ENVIRONMENTS)
    parser.add_argument("--inventory-format", default="json", choices=["json", "yaml"])
    args = parser.parse_args(argv)
    write_repo(args.out, args.tenants, args.flags, seed=args.seed, environment=args.env,
               inventory_format=args.inventory_format)
    print(f"wrote {args.tenants} tenants x {args.flags} flags to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
