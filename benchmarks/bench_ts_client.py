"""The TypeScript client (clients/typescript) beside the Python client, on the same stores.

    .venv/bin/python benchmarks/bench_ts_client.py [--tenants 1000] [--flags 200]
                                                    [--snapshot-tenants 100000] [--quick] [--json]

One store of ``--tenants`` bundles with a head, served over HTTP by the Python client's test
server in its own process (ETags, 304), and one snapshot of ``--snapshot-tenants`` x ``--flags``
in the protocol's format. The Node half is ``bench_ts_client.mjs``; the Python half uses
bench_client's helpers. Work files go to /dev/shm when it exists (disk noise is not the client's).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_client import ENV, ns_per_call, server_process, write_bundles  # noqa: E402

from flagops_client import FlagClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NODE_SCRIPT = ROOT / "benchmarks" / "bench_ts_client.mjs"
DIST = ROOT / "clients" / "typescript" / "dist" / "index.js"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def canonical(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def write_head(root: Path, sequence: int = 1) -> None:
    (root / ENV / "head.json").write_bytes(canonical({
        "schemaVersion": 1, "environment": ENV, "sequence": sequence, "revision": REVISION, "off": [],
        "snapshot": None, "publishedAt": "2026-12-01T21:30:00Z"}))


def write_snapshot(path: Path, tenants: int, flags: int, seed: int = 2) -> int:
    """A snapshot.json of ``tenants`` x ``flags`` (random bits, 40 % on); its size in bytes."""
    rng = random.Random(seed)
    keys = sorted(f"flag_{i:03d}" for i in range(flags))
    width = (flags + 7) // 8
    rows = {f"tenant-{i:05d}": base64.b64encode(rng.randbytes(width)).decode() for i in range(tenants)}
    body = canonical({"schemaVersion": 1, "environment": ENV, "revision": REVISION, "flags": keys, "tenants": rows})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return len(body)


def python_figures(url: str, tenants: int, snapshot_base: str, snapshot_tenants: int, number: int,
                   repeat: int) -> dict[str, Any]:
    """The Python client on the same store: is_enabled, refresh requests, snapshot load when it has one."""
    out: dict[str, Any] = {}
    slugs = [f"tenant-{i:05d}" for i in range(tenants)]
    with FlagClient(url, ENV, refresh_interval=None, max_tenants=tenants) as client:
        for slug in slugs:
            client.is_enabled("flag_001", slug)
        env = {"f": client.is_enabled, "slug": slugs[len(slugs) // 2], "key": "flag_001"}
        out["is_enabled_ns"] = ns_per_call("f(key, slug)", env, number, repeat)
        client.refresh()
        status = client.status()
        before = status.fetched + status.not_modified
        client.refresh()
        after = client.status()
        # Requests the client counts (304s and 200s of documents); the head is one when it polls one.
        out["refresh_requests"] = after.fetched + after.not_modified - before
        out["refresh_polls_head"] = bool(getattr(after, "sequence", None) is not None or getattr(after, "head", None))
    try:  # snapshot mode, once the Python client has it
        loads = []
        for _ in range(3):
            started = time.perf_counter()
            snap = FlagClient(snapshot_base, ENV, refresh_interval=None, all_tenants=True)  # type: ignore[call-arg]
            snap.is_enabled("flag_001", "tenant-00000")
            loads.append(time.perf_counter() - started)
            if snap.status().tenants != snapshot_tenants:
                raise TypeError("the snapshot was not loaded")
            lookup = {"f": snap.is_enabled, "slug": "tenant-00042", "key": "flag_001"}
            snap.close()
        out["snapshot_load_ms"] = statistics.median(loads) * 1e3
        out["snapshot_is_enabled_ns"] = ns_per_call("f(key, slug)", lookup, number, repeat)
    except TypeError:
        out["snapshot_load_ms"] = None
    return out


def run(tenants: int, flags: int, snapshot_tenants: int, number: int, repeat: int) -> dict[str, Any]:
    if not DIST.exists():
        raise RuntimeError(f"{DIST} is missing: run `make install` (npm ci, npm run build)")
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="bench-ts-client-", dir=shm if shm.is_dir() else None))
    try:
        store = work / "store"
        write_bundles(store, tenants, flags)
        write_head(store)
        snapshot = work / "snapshots" / ENV / "snapshot.json"  # a store of its own, read through file://
        size = write_snapshot(snapshot, snapshot_tenants, flags)
        results: dict[str, Any] = {"tenants": tenants, "flags": flags, "snapshot_tenants": snapshot_tenants,
                                   "snapshot_bytes": size}
        with server_process(store) as url:
            proc = subprocess.run(
                ["node", "--expose-gc", str(NODE_SCRIPT), "--base", url, "--store", str(store), "--tenants", str(tenants),
                 "--snapshot", snapshot.as_uri(), "--number", str(number * 2), "--repeat", str(repeat)],
                capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"bench_ts_client.mjs failed: {proc.stderr.strip()[-2000:]}")
            results["ts"] = json.loads(proc.stdout.strip().splitlines()[-1])
            write_head(store)  # the Node half removed it for its no-head case
            results["py"] = python_figures(url, tenants, (work / "snapshots").as_uri(), snapshot_tenants,
                                           number, repeat)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(r: dict[str, Any]) -> str:
    ts, py = r["ts"], r["py"]
    n, f, s = r["tenants"], r["flags"], r["snapshot_tenants"]

    def ns(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.0f} ns"

    def ms(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.0f} ms"

    py_refresh = f"{py['refresh_requests']} request(s)"
    rows = [
        ("", "TypeScript", "Python", "target"),
        ("read, tenant in memory (isEnabledCached / is_enabled)", ns(ts["cached_ns"]), ns(py["is_enabled_ns"]), "< 1000 ns"),
        ("  unknown flag, the default", ns(ts["cached_unknown_flag_ns"]), "", ""),
        ("  a plain object lookup, for scale", ns(ts["plain_lookup_ns"]), "", ""),
        (f"read in snapshot mode ({s:,} tenants)", ns(ts["snapshot_cached_ns"]), ns(py.get("snapshot_is_enabled_ns")), "< 1000 ns"),
        (f"refresh of {n:,} held tenants, nothing changed, with a head",
         f"{ts['refresh_head_requests']} request(s)", py_refresh if py["refresh_polls_head"] else "", "<= 2"),
        (f"  the same without a head (an older store)", f"{ts['refresh_nohead_requests']} request(s)",
         "" if py["refresh_polls_head"] else py_refresh, ""),
        ("  wall time with a head / without", f"{ts['refresh_head_ms']:.1f} / {ts['refresh_nohead_ms']:.0f} ms", "", ""),
        (f"snapshot load, {s:,} x {f} ({r['snapshot_bytes'] / 1e6:.1f} MB), to the first answer",
         ms(ts["snapshot_load_ms"]), ms(py.get("snapshot_load_ms")), "<= 1500 ms"),
        ("  the first of those loads (a cold JIT)", ms(ts["snapshot_first_load_ms"]), "", ""),
        ("  Node heap with the snapshot held", f"{ts['heap_mb']:.0f} MB", "", ""),
    ]
    width = max(len(a) for a, *_ in rows)
    lines = [f"TypeScript client beside the Python client ({ts['node']}, Python {sys.version.split()[0]}; "
             f"median of {ts['repeat']})"]
    lines += [f"  {a:<{width}}  {b:>16}  {c:>16}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def report(quick: bool = False) -> str:
    """The table, for benchmarks/run.py (quick: 10,000 snapshot tenants instead of 100,000)."""
    if shutil.which("node") is None:
        return "TypeScript client: node is not installed; skipped"
    results = run(1000, 200, 10_000 if quick else 100_000, 200_000 if quick else 1_000_000, 3 if quick else 5)
    return table(results)


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--snapshot-tenants", type=int, default=100_000)
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a try")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.snapshot_tenants, args.number, args.repeat = 200, 10_000, 100_000, 3
    results = run(args.tenants, args.flags, args.snapshot_tenants, args.number, args.repeat)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
