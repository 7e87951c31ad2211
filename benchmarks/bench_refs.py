"""Benchmark ``flagops refs`` on a generated monorepo: prints files/s, serial and parallel.

The tree mixes TypeScript, JavaScript, Vue and Python files of 1-6 KiB (ordinary code with
many snake_case strings, about one file in ten reading a flag, a few typos) plus a
node_modules folder that must be skipped. It is generated once under .bench/refs-tree.

    python benchmarks/bench_refs.py [--files 50000] [--flags 200] [--dir .bench/refs-tree] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from flagops.refs import scan  # noqa: E402

SUFFIXES = [".ts", ".ts", ".tsx", ".js", ".vue", ".py", ".py"]
WORDS = ["user", "tenant", "mail", "calendar", "space", "quota", "invoice", "partner", "domain",
         "share", "folder", "event", "chat", "meeting", "export", "token", "session", "audit"]


def flag_keys(n: int) -> list[str]:
    rng = random.Random(7)
    keys: set[str] = set()
    while len(keys) < n:
        keys.add("_".join(rng.sample(WORDS, 3)) + f"_v{rng.randint(1, 9)}")
    return sorted(keys)


def body(rng: random.Random, suffix: str, keys: list[str]) -> str:
    lines: list[str] = []
    target = rng.randint(1024, 6144)
    uses_flags = rng.random() < 0.1  # about one file in ten reads a flag
    size = 0
    while size < target:
        a, b = rng.sample(WORDS, 2)
        if suffix == ".py":
            line = f'    {a}_{b} = record.get("{a}_{b}", "{b}")  # {a} {b}'
        else:
            line = f"  const {a}{b.title()} = record['{a}_{b}'] ?? `{b}`; // {a} {b}"
        roll = rng.random() if uses_flags else 1.0
        if roll < 0.03:
            key = rng.choice(keys)
            line = (f'    if client.is_enabled("{key}"):' if suffix == ".py"
                    else f"  if (isEnabled('{key}')) {{ render() }}")
        elif roll < 0.032:
            key = rng.choice(keys)
            typo = key[:-1] + ("x" if key[-1] != "x" else "y")
            line = f'    flags["{typo}"]' if suffix == ".py" else f"  useFlag('{typo}')"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def generate(root: Path, files: int, keys: list[str]) -> None:
    marker = root / f".complete-{files}-{len(keys)}"
    if marker.exists():
        return
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(1)
    for i in range(files):
        suffix = rng.choice(SUFFIXES)
        d = root / f"pkg{i % 50:02d}" / f"mod{(i // 50) % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}{suffix}").write_text(body(rng, suffix, keys), encoding="utf-8")
    nm = root / "node_modules" / "dep"
    nm.mkdir(parents=True, exist_ok=True)
    for i in range(500):
        (nm / f"index{i}.js").write_text(body(rng, ".js", keys), encoding="utf-8")
    marker.touch()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--flags", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=Path(".bench/refs-tree"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    keys = flag_keys(args.flags)
    t0 = time.perf_counter()
    generate(args.dir, args.files, keys)
    print(f"tree: {args.files} files, {args.flags} flags under {args.dir} "
          f"(ready in {time.perf_counter() - t0:.1f}s)")
    cpus = os.cpu_count() or 1
    for jobs in sorted({1, cpus}):
        best = float("inf")
        for _ in range(args.runs):
            t = time.perf_counter()
            report = scan([str(args.dir)], keys, jobs=jobs)
            best = min(best, time.perf_counter() - t)
        assert report.files == args.files, report.files  # node_modules skipped
        print(f"jobs={jobs}: {report.files} files in {best:.2f}s = {report.files / best:,.0f} files/s "
              f"({len(report.references)} flags referenced, {len(report.unknown)} unknown keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
