"""Regenerate the sample inventories under tenants/ (deterministic: seeded)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

WORDS = ["alpen", "baltic", "rhein", "danube", "nord", "sud", "atlas", "linden", "eiche", "birke",
         "falke", "adler", "kiefer", "mosel", "elbe", "oder", "loire", "tajo", "arno", "vltava",
         "hansa", "kontor", "werk", "atelier", "studio", "praxis", "kanzlei", "verlag", "bau", "logistik"]
SUFFIXES = ["gmbh", "ag", "sarl", "bv", "srl", "oy", "ab", "kg", "sas", "spa"]
LEGAL = {"gmbh": "GmbH", "ag": "AG", "sarl": "SARL", "bv": "B.V.", "srl": "S.r.l.", "oy": "Oy", "ab": "AB",
         "kg": "KG", "sas": "SAS", "spa": "S.p.A."}
NAMES = {"acme": "ACME Europe", "dezky-internal": "Dezky (internal)", "helsinki-design": "Helsinki Design Oy",
         "muenchen-kanzlei": "Kanzlei München"}
PARTNERS = ["nordcloud-it", "alpine-msp", "iberia-sistemas", "benelux-hosting", "polska-partner"]
PLANS = ["free"] * 40 + ["starter"] * 32 + ["business"] * 20 + ["enterprise"] * 8
COUNTS = {"development": 5, "staging": 20, "production": 200}
FIXED = {  # tenants the sample flags refer to by slug
    "production": [("acme", "enterprise", None), ("dezky-internal", "enterprise", None),
                   ("helsinki-design", "business", "nordcloud-it"), ("muenchen-kanzlei", "business", "alpine-msp")],
    "staging": [("acme", "enterprise", None), ("dezky-internal", "enterprise", None),
                ("helsinki-design", "business", "nordcloud-it")],
    "development": [("acme", "enterprise", None), ("dezky-internal", "enterprise", None)],
}


def inventory(env: str) -> str:
    rng = random.Random(f"flagops-sample-{env}")
    tenants = list(FIXED[env])
    used = {slug for slug, _, _ in tenants}
    while len(tenants) < COUNTS[env]:
        slug = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{rng.choice(SUFFIXES)}"
        if slug in used:
            continue
        used.add(slug)
        partner = rng.choice(PARTNERS) if rng.random() < 0.3 else None
        tenants.append((slug, rng.choice(PLANS), partner))
    lines = [f"# Sample {env} inventory; in production the platform API exports it (see --tenants).",
             "# Regenerate with: python scripts/sample_tenants.py"]
    for n, (slug, plan, partner) in enumerate(tenants):
        tid = f"t_{rng.getrandbits(64):016x}"
        *words, last = slug.split("-")
        name = NAMES.get(slug) or " ".join(w.capitalize() for w in words) + " " + LEGAL.get(last, last.capitalize())
        lines.append(f"- id: {tid}")
        lines.append(f"  slug: {slug}")
        lines.append(f"  name: \"{name.strip()}\"")
        lines.append(f"  plan: {plan}")
        if partner:
            lines.append(f"  partnerSlug: {partner}")
    return "\n".join(lines) + "\n"


def main(root: Path) -> None:
    for env in COUNTS:
        (root / "tenants" / f"{env}.yaml").write_text(inventory(env), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
