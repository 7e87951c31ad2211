"""Benchmark: the console's live preview against asking the command line the same question.

    .venv/bin/python benchmarks/bench_console.py [--tenants 100000] [--flags 200] [--runs 30]

A generated repository (one commit, in /dev/shm when it exists) is served by the real console,
``flagops ui --no-open`` in its own process; a client posts previews of one rollout flag at
changing percentages, as the slider does, and times each round trip. The baseline, measured in
the same run, is ``flagops set KEY --pct N --dry-run``: the same validated edit and exact
blast radius from the command line. Also timed: the first page (the workspace is built) and a
page after that (cached).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import rollout_keys, write_repo  # noqa: E402


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.eu",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.eu"}
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="flagops-bench-console-", dir=base) as tmp:
        root = Path(tmp) / "repo"
        data = write_repo(root, args.tenants, args.flags)
        key = rollout_keys(data["flags"])[0]
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "generated")

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "flagops", "--root", str(root), "ui", "--no-open",
                                   "--port", str(port)], stderr=subprocess.PIPE, text=True)
        try:
            assert server.stderr is not None
            server.stderr.readline()  # "flagops console on ..." once it listens
            with httpx2.Client(base_url=url, timeout=120) as client:
                t0 = time.perf_counter()
                page = client.get(f"/flags/{key}")
                first_page = time.perf_counter() - t0
                assert page.status_code == 200
                token = re.search(r'name="flagops-token" content="([^"]+)"', page.text)
                assert token is not None
                headers = {"Origin": url, "X-Flagops-Token": token.group(1)}
                t0 = time.perf_counter()
                assert client.get("/").status_code == 200
                cached_page = time.perf_counter() - t0
                flag = data["flags"][key]
                times = []
                for i in range(args.runs):
                    pct = (flag.get("pct", 0) + 7 * (i + 1)) % 101
                    body = {"flag": {"state": "rollout", "pct": pct}}
                    t0 = time.perf_counter()
                    response = client.post(f"/api/flags/{key}/preview", json=body, headers=headers)
                    times.append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
                    assert response.json()["environments"], response.text
                base = re.search(r'data-base="([0-9a-f]+)"', page.text)
                assert base is not None
                body = {"base": base.group(1), "flag": {"state": "rollout", "pct": (flag.get("pct", 0) + 3) % 101},
                        "acknowledgeRisks": True}
                t0 = time.perf_counter()
                saved = client.post(f"/api/flags/{key}/save", json=body, headers=headers)
                save_time = time.perf_counter() - t0
                assert saved.status_code == 200 and saved.json()["written"], saved.text
                t0 = time.perf_counter()
                assert client.get(f"/flags/{key}").status_code == 200
                after_save = time.perf_counter() - t0
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

        baseline = []
        for i in range(args.baseline_runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flagops", "--root", str(root), "set", key, "--pct",
                            str((i * 13 + 5) % 101), "--dry-run", "--yes"], check=True, capture_output=True)
            baseline.append(time.perf_counter() - t0)

    median = statistics.median(times)
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    cli = statistics.median(baseline)
    print(f"console preview, {args.tenants} tenants x {args.flags} flags, {args.runs} previews of {key}:")
    print(f"  preview round trip  median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")
    print(f"  first page          {first_page:.2f} s (workspace built: load, validate, history, reach)")
    print(f"  page, cached        {cached_page * 1000:.0f} ms")
    print(f"  save                {save_time:.2f} s (flagops set's code: validates the whole repository)")
    print(f"  page after a save   {after_save:.2f} s (workspace rebuilt; the rollout buckets are kept)")
    print(f"  baseline: flagops set --dry-run  median {cli:.2f} s ({args.baseline_runs} runs)  "
          f"-> preview is {cli / median:.0f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
