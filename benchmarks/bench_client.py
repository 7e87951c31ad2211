"""The service client's costs: one ``is_enabled`` call, and one refresh of many tenants when
nothing changed (every bundle answered 304) over a real local HTTP server with ETags (in its
own process) and over ``file://``.

    .venv/bin/python benchmarks/bench_client.py [--tenants 1000] [--flags 200] [--number 1000000]
                                                 [--repeat 7] [--json]

Bundles are written in the compiler's exact format (canonical JSON) into a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any, Iterator, Optional

from flagops_client import FlagClient

ENV = "production"


def write_bundles(root: Path, tenants: int, flags: int, seed: int = 1) -> list[str]:
    """``tenants`` bundles of ``flags`` flags each under ``root/production/tenants/``."""
    rng = random.Random(seed)
    keys = sorted(f"flag_{i:03d}" for i in range(flags))
    slugs = [f"tenant-{i:05d}" for i in range(tenants)]
    out = root / ENV / "tenants"
    out.mkdir(parents=True)
    for slug in slugs:
        doc = {"environment": ENV, "flags": {k: rng.random() < 0.4 for k in keys},
               "schemaVersion": 1, "tenant": slug}
        (out / f"{slug}.json").write_bytes(
            (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode())
    return slugs


def ns_per_call(stmt: str, env: dict[str, Any], number: int, repeat: int) -> float:
    """Median over ``repeat`` runs of ``number`` calls, in nanoseconds per call."""
    runs = timeit.repeat(stmt, globals=env, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e9


def refresh_cost(client: FlagClient, repeat: int) -> tuple[float, float]:
    """Median seconds of one full refresh when nothing changed: wall clock, and this process's CPU."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        ok = client.refresh()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        if not ok:
            raise RuntimeError(f"refresh failed: {client.status().last_error}")
    return statistics.median(wall), statistics.median(cpu)


SERVE = """
import sys
from flagops_client.testing import BundleServer
server = BundleServer(sys.argv[1])
print(server.url, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""


@contextlib.contextmanager
def server_process(root: Path) -> Iterator[str]:
    """The HTTP server in its own process, so it does not compete for this one's GIL."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http://"):
            raise RuntimeError("the benchmark's HTTP server did not start")
        yield url
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(10)


def run(tenants: int, flags: int, number: int, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {"tenants": tenants, "flags": flags, "number": number, "repeat": repeat}
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        root = Path(tmp)
        slugs = write_bundles(root, tenants, flags)
        key = "flag_001"
        with server_process(root) as url, \
                FlagClient(url, ENV, refresh_interval=None, max_tenants=max(tenants, 1)) as http_client:
            started = time.perf_counter()
            for slug in slugs:
                http_client.is_enabled(key, slug)
            results["first_load_s"] = time.perf_counter() - started
            assert http_client.status().tenants == tenants

            f = http_client.is_enabled
            slug = slugs[len(slugs) // 2]
            plain = {slug: dict(http_client.flags(slug))}
            env = {"f": f, "key": key, "slug": slug, "plain": plain, "r": http_client.resolve}
            results["is_enabled_ns"] = ns_per_call("f(key, slug)", env, number, repeat)
            results["is_enabled_default_ns"] = ns_per_call("f(key, slug, True)", env, number, repeat)
            results["dict_lookup_ns"] = ns_per_call("plain[slug][key]", env, number, repeat)
            results["resolve_ns"] = ns_per_call("r(key, slug)", env, max(1, number // 10), repeat)
            results["unknown_flag_ns"] = ns_per_call("f('no_such_flag', slug)", env, max(1, number // 10), repeat)

            before = http_client.status()
            results["refresh_http_s"], results["refresh_http_cpu_s"] = refresh_cost(http_client, repeat)
            after = http_client.status()
            results["refresh_http_304"] = (after.not_modified - before.not_modified) / repeat
            results["refresh_http_200"] = (after.fetched - before.fetched) / repeat

        with FlagClient(root.as_uri(), ENV, refresh_interval=None, max_tenants=max(tenants, 1)) as file_client:
            for slug in slugs:
                file_client.is_enabled(key, slug)
            results["refresh_file_s"], _ = refresh_cost(file_client, repeat)
    return results


def table(r: dict[str, Any]) -> str:
    n = r["tenants"]
    rows = [
        ("is_enabled (tenant in memory)", f"{r['is_enabled_ns']:.0f} ns/call", "target < 1000 ns"),
        ("is_enabled with a default", f"{r['is_enabled_default_ns']:.0f} ns/call", ""),
        ("plain dict[slug][key], for scale", f"{r['dict_lookup_ns']:.0f} ns/call", ""),
        ("resolve (value + reason)", f"{r['resolve_ns']:.0f} ns/call", ""),
        ("unknown flag (default)", f"{r['unknown_flag_ns']:.0f} ns/call", ""),
        (f"first load of {n} tenants (http)", f"{r['first_load_s'] * 1e3:.1f} ms", f"{r['first_load_s'] / n * 1e6:.0f} us/tenant"),
        (f"refresh {n} tenants, unchanged (http)", f"{r['refresh_http_s'] * 1e3:.1f} ms",
         f"{r['refresh_http_s'] / n * 1e6:.0f} us/tenant, {r['refresh_http_304']:.0f} x 304"),
        ("  of which the client's own CPU", f"{r['refresh_http_cpu_s'] * 1e3:.1f} ms",
         f"{r['refresh_http_cpu_s'] / n * 1e6:.0f} us/tenant (the rest is the server)"),
        (f"refresh {n} tenants, unchanged (file://)", f"{r['refresh_file_s'] * 1e3:.1f} ms",
         f"{r['refresh_file_s'] / n * 1e6:.0f} us/tenant"),
    ]
    width = max(len(a) for a, _, _ in rows)
    lines = [f"flagops client: {n} tenants x {r['flags']} flags, median of {r['repeat']} runs "
             f"(Python {sys.version.split()[0]})"]
    lines += [f"  {a:<{width}}  {b:>14}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.tenants, args.flags, args.number, args.repeat)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return results


if __name__ == "__main__":
    main()
