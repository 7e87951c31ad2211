"""Benchmark: the live impact preview (``flagops.impact.preview``) of one flag over a large inventory.

    .venv/bin/python benchmarks/bench_preview.py [--tenants 100000] [--flags 200] [--runs 7]

A console slider calls ``preview`` on every change. It evaluates one flag for the whole
inventory twice (before, after) with the vectorised evaluator, over tenant indexes the
:class:`~flagops.impact.Repository` built once; the rollout buckets are hashed on the first
preview and cached. The baseline, measured in the same run, is the reference semantics
(``flagops_client.evaluation.evaluate``) called once per tenant for the proposed flag alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import rollout_keys, write_repo  # noqa: E402

from flagops.impact import Repository, preview  # noqa: E402
from flagops_client.evaluation import evaluate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workdir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flagops-preview-", dir=args.workdir) as tmp:
        root = Path(tmp)
        data = write_repo(root, args.tenants, args.flags)
        # A broad flag (no tenant or partner list): the slider then moves tens of thousands of tenants.
        keys = rollout_keys(data["flags"])
        key = next((k for k in keys if not {"tenantSlugs", "partnerSlugs"} & set(data["flags"][k].get("scope") or {})),
                   keys[0])
        started = time.perf_counter()
        repository = Repository.load(root)
        load = time.perf_counter() - started
        current = repository.flags[key]
        scope = {a: v for a, v in (current.get("scope") or {}).items() if a in ("plans", "environments")}
        proposals = [{**current, "state": "rollout", "pct": pct, "scope": scope}
                     for pct in (5, 25, 50, 75, 95, 100, 35)]

        started = time.perf_counter()
        first = preview(repository, key, proposals[0])
        cold = time.perf_counter() - started
        warm = []
        for i in range(args.runs):
            started = time.perf_counter()
            result = preview(repository, key, proposals[(i + 1) % len(proposals)])
            warm.append(time.perf_counter() - started)
        deleted = time.perf_counter()
        preview(repository, key, None)
        delete = time.perf_counter() - deleted

        tenants = data["tenants"]
        env = data["environment"]
        probe = {**proposals[3], "key": key}
        started = time.perf_counter()
        reference = sum(evaluate(probe, t, env) for t in tenants)
        baseline = time.perf_counter() - started
        check = preview(repository, key, proposals[3]).environments[0].enabled_after
        assert check == reference, (check, reference)

    median = statistics.median(warm)
    print(f"preview of one flag over {args.tenants:,} tenants ({args.flags} flags in the repository)")
    print(f"  Repository.load (inventory, indexes):   {load * 1000:8.1f} ms (once per console start)")
    print(f"  first preview (hashes the buckets):     {cold * 1000:8.1f} ms")
    print(f"  later previews, median of {args.runs}:          {median * 1000:8.1f} ms "
          f"(min {min(warm) * 1000:.1f}, max {max(warm) * 1000:.1f})")
    print(f"  preview of a deletion:                  {delete * 1000:8.1f} ms")
    print(f"  baseline, evaluate() per tenant, 1 side:{baseline * 1000:8.1f} ms "
          f"(preview is {baseline / median:.1f}x faster for both sides)")
    print(f"  counts agree with evaluate(): {reference:,} of {args.tenants:,} at 75%; "
          f"risks seen: {sorted({m for p in (first, result) for _, m in p.risks}) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
