"""The service client's costs: one ``is_enabled`` call (also with flags killed by the head),
one refresh of many tenants when nothing changed, against a store without a head (every bundle
answered 304) and with one (one 304 for the head), and snapshot mode (bytes, load, lookup),
over a real local HTTP server with ETags (in its own process) and over ``file://``.

    .venv/bin/python benchmarks/bench_client.py [--tenants 1000] [--flags 200] [--number 1000000]
                                                 [--repeat 7] [--snapshot-tenants 100000] [--json]

Bundles, the head and the snapshot are written in the protocol's exact format (canonical
JSON) into a temporary directory.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
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
from flagops_client.testing import write_head

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


def write_snapshot(root: Path, tenants: int, flags: int, seed: int = 2) -> str:
    """``root/production/snapshot.json`` of ``tenants`` random bitsets; returns its digest."""
    rng = random.Random(seed)
    size = (flags + 7) // 8
    doc = {"environment": ENV, "flags": sorted(f"flag_{i:03d}" for i in range(flags)), "revision": None,
           "schemaVersion": 1,
           "tenants": {f"tenant-{i:06d}": base64.b64encode(rng.randbytes(size)).decode() for i in range(tenants)}}
    data = (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
    (root / ENV).mkdir(parents=True, exist_ok=True)
    (root / ENV / "snapshot.json").write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


def run(tenants: int, flags: int, number: int, repeat: int, snapshot_tenants: int) -> dict[str, Any]:
    results: dict[str, Any] = {"tenants": tenants, "flags": flags, "number": number, "repeat": repeat,
                               "snapshot_tenants": snapshot_tenants}
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

        # With a head: ten flags killed (not the one read, and the one read).
        killed = sorted(f"flag_{i:03d}" for i in range(flags))[-10:]
        write_head(root, ENV, sequence=1, off=killed)
        with server_process(root) as url, \
                FlagClient(url, ENV, refresh_interval=None, max_tenants=max(tenants, 1)) as head_client:
            for slug in slugs:
                head_client.is_enabled(key, slug)
            env = {"f": head_client.is_enabled, "key": key, "killed": killed[-1], "slug": slugs[len(slugs) // 2]}
            results["is_enabled_off_ns"] = ns_per_call("f(key, slug)", env, number, repeat)
            results["is_enabled_killed_ns"] = ns_per_call("f(killed, slug)", env, number, repeat)
            before = head_client.status()
            results["refresh_head_s"], _ = refresh_cost(head_client, repeat)
            results["refresh_head_requests"] = (head_client.status().requests - before.requests) / repeat

    with tempfile.TemporaryDirectory(prefix="bench-snapshot-", dir="/dev/shm" if Path("/dev/shm").is_dir()
                                     else None) as tmp:
        root = Path(tmp)
        digest = write_snapshot(root, snapshot_tenants, flags)
        results["snapshot_bytes"] = (root / ENV / "snapshot.json").stat().st_size
        write_head(root, ENV, sequence=1, snapshot=digest)
        slug, key = f"tenant-{snapshot_tenants // 2:06d}", "flag_001"
        with server_process(root) as url:
            loads = []
            for _ in range(max(1, min(repeat, 3))):
                with FlagClient(url, ENV, all_tenants=True, refresh_interval=None, timeout=30.0) as snap:
                    started = time.perf_counter()
                    snap.is_enabled(key, slug)
                    loads.append(time.perf_counter() - started)
                    if snap.status().tenants != snapshot_tenants:
                        raise RuntimeError(f"snapshot not loaded: {snap.status().last_error}")
            results["snapshot_load_s"] = statistics.median(loads)
            with FlagClient(url, ENV, all_tenants=True, refresh_interval=None, timeout=30.0) as snap:
                snap.is_enabled(key, slug)
                env = {"f": snap.is_enabled, "key": key, "slug": slug}
                results["snapshot_lookup_ns"] = ns_per_call("f(key, slug)", env, number, repeat)
                before = snap.status()
                results["refresh_snapshot_s"], _ = refresh_cost(snap, repeat)
                results["refresh_snapshot_requests"] = (snap.status().requests - before.requests) / repeat
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
        ("is_enabled, head with 10 flags off", f"{r['is_enabled_off_ns']:.0f} ns/call", "target < 1000 ns"),
        ("is_enabled of a killed flag", f"{r['is_enabled_killed_ns']:.0f} ns/call", ""),
        (f"refresh {n} tenants, unchanged (head)", f"{r['refresh_head_s'] * 1e3:.1f} ms",
         f"{r['refresh_head_requests']:.0f} request(s), target <= 2"),
        (f"snapshot of {r['snapshot_tenants']} tenants", f"{r['snapshot_bytes'] / 1e6:.2f} MB",
         f"{r['snapshot_bytes'] / max(1, r['snapshot_tenants']):.0f} B/tenant, target <= 8 MB"),
        ("  load to first answer (http)", f"{r['snapshot_load_s'] * 1e3:.0f} ms", "target <= 1500 ms"),
        ("  is_enabled from the snapshot", f"{r['snapshot_lookup_ns']:.0f} ns/call", "target < 1000 ns"),
        ("  refresh, unchanged", f"{r['refresh_snapshot_s'] * 1e3:.1f} ms",
         f"{r['refresh_snapshot_requests']:.0f} request(s), target <= 2"),
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
    parser.add_argument("--snapshot-tenants", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    logging.getLogger("flagops_client").setLevel(logging.ERROR)  # the store without a head is on purpose
    results = run(args.tenants, args.flags, args.number, args.repeat, args.snapshot_tenants)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return results


if __name__ == "__main__":
    main()
