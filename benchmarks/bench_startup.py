"""Startup: the wall time of a whole ``flagops`` process, against the bare interpreter beside it.

    .venv/bin/python benchmarks/bench_startup.py [--runs 20]

Cases: ``python -c pass`` (the floor every command pays), ``flagops --help`` (lists every
command from the lazy table, importing none of them) and ``flagops validate`` on this
repository's own flags/, tenants/ and schema/. Each is run ``--runs`` times in turn; the table
shows the median, the minimum (the least disturbed run on a shared machine) and the median
over the floor's. The target is a median of at most 0.25 s for each command.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
FLAGOPS = str(Path(sys.executable).parent / "flagops")
TARGET = 0.25

CASES: list[tuple[str, list[str]]] = [
    ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ("flagops --help", [FLAGOPS, "--help"]),
    ("flagops validate (this repository)", [FLAGOPS, "--root", str(ROOT), "validate"]),
]


def measure(runs: int) -> dict[str, list[float]]:
    """Wall times per case; the cases interleave so that a noisy minute hits them alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(runs):
        for name, argv in CASES:
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
            times[name].append(elapsed)
    return times


def report(runs: int = 20) -> str:
    """The startup table (Markdown)."""
    times = measure(runs)
    floor = statistics.median(times[CASES[0][0]])
    lines = [f"Startup ({runs} runs each, interleaved)", "",
             "| case | median s | min s | median / floor | target |",
             "|---|---:|---:|---:|---|"]
    for name, _ in CASES:
        median = statistics.median(times[name])
        target = "-" if name == CASES[0][0] else ("ok" if median <= TARGET else f"over {TARGET}")
        lines.append(f"| {name} | {median:.3f} | {min(times[name]):.3f} | {median / floor:.1f}x | {target} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    print(report(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
