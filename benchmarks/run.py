"""Run the benchmarks and print one table (Markdown): ``make bench``.

    python benchmarks/run.py [--quick] [--runs 5] [--workdir DIR] [--keep] [--json FILE] [--compile-only]

Sizes (tenants x flags): 10,000 x 50, 30,000 x 200 and 100,000 x 200 (``--quick`` or
FLAGOPS_BENCH_QUICK=1 leaves out 100,000 x 200). Every case runs as its own process, as an
operator runs it, on a repository written by ``generate.py``; each timing is the median of
``--runs`` runs with the spread (min-max). The baseline is the plain loop of ``baseline.py``.

Cases: baseline; 1 full ``flagops compile`` from scratch; evaluation alone (in process, cold
bucket cache); 2 recompile after one rollout flag's pct changed (counts rewritten bundles by
inode and mtime); 3 ``flagops plan`` of that change; 4 ``flagops history`` over 5,000 commits;
5 ``flagops publish`` of that change to the local S3 server; 6 flagd and Unleash evaluating the
same flags for a sample of the same tenants (their rate extrapolated to the whole matrix).
Cases 3-5 run when their commands exist. The output directory is a temporary directory on the
same file system as the work directory (``--workdir``, default: the system temporary dir).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

ENV = "production"
FULL_SIZES = [(10_000, 50), (30_000, 200), (100_000, 200)]
QUICK_SIZES = [(10_000, 50), (30_000, 200)]


@dataclass
class Row:
    case: str
    size: str
    times: list[float] = field(default_factory=list)
    evals: Optional[int] = None  # tenant x flag evaluations per run
    files: Optional[float] = None  # files written per run
    rss: Optional[int] = None  # peak RSS in bytes (max over runs)
    ratio: Optional[float] = None  # baseline median / this median
    notes: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "size": self.size, "runs": len(self.times), "median": self.median,
                "min": min(self.times, default=None), "max": max(self.times, default=None),
                "evals_per_s": self.evals / self.median if self.evals and self.times else None,
                "files_per_s": self.files / self.median if self.files is not None and self.times else None,
                "peak_rss": self.rss, "ratio": self.ratio, "notes": self.notes}


def bin_path(name: str) -> str:
    """A console script of the interpreter running this file (its venv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_process(argv: Sequence[str], *, cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None,
                check: bool = True) -> tuple[float, int, str]:
    """(seconds, peak RSS bytes, stdout) of one process, measured with wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errs:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=errs)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        errs.seek(0)
        stdout, stderr = out.read(), errs.read()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024, stdout.decode("utf-8", errors="replace")


def fresh(directory: Path) -> None:
    """Remove ``directory`` and flush the file system, so the next timed run starts even."""
    shutil.rmtree(directory, ignore_errors=True)
    os.sync()


def bundle_stats(directory: Path) -> dict[str, tuple[int, int]]:
    """slug file -> (inode, mtime_ns), to count what a recompile rewrote."""
    out = {}
    with os.scandir(directory) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            out[entry.name] = (st.st_ino, st.st_mtime_ns)
    return out


def read_flags(root: Path) -> dict[str, dict[str, Any]]:
    from flagops.loading import FsSource, Project, load_flags

    project = Project(FsSource(root))
    load_flags(FsSource(root), project)
    return project.flag_data()


def bundle_size(flags: dict[str, dict[str, Any]]) -> int:
    """Typical bundle size: every flag false, a 20-character slug."""
    return len(f'{{"environment":"{ENV}","flags":{{}},"schemaVersion":1,"tenant":"{"x" * 20}"}}\n') + sum(
        len(f'"{k}":false,') for k in flags)


def rollout_key(flags: dict[str, dict[str, Any]]) -> str:
    """The rollout flag the one-flag change moves: unscoped if there is one (most tenants)."""
    keys = generate.rollout_keys(flags)
    unscoped = [k for k in keys if not flags[k].get("scope") and 5 <= flags[k]["pct"] <= 90]
    return (unscoped or keys)[0]


def git(root: Path, *args: str) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@dezky.eu",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@dezky.eu")
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, stdout=subprocess.DEVNULL)


class Bench:
    def __init__(self, work: Path, runs: int, peer_sample: int, log: Callable[[str], None],
                 compile_only: bool = False):
        self.compile_only = compile_only
        self.work = work
        self.runs = runs
        self.peer_sample = peer_sample
        self.log = log
        self.rows: list[Row] = []
        self.flagops = bin_path("flagops")
        self.env = dict(os.environ)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def size(self, tenants: int, flags: int, *, with_publish: bool, with_plan: bool) -> None:
        label = f"{tenants:,} x {flags}"
        root = self.work / f"repo-{tenants}x{flags}"
        self.log(f"[{label}] generating")
        # In a child process: the runner stays small, so the peak RSS that wait4 reports for
        # each measured process is that process's own (a child starts from its parent's pages).
        run_process([sys.executable, str(HERE / "generate.py"), str(root), "--tenants", str(tenants),
                     "--flags", str(flags), "--env", ENV])
        flag_data = read_flags(root)
        n_evals = tenants * flags
        key = rollout_key(flag_data)
        pct = flag_data[key]["pct"]

        # Baseline (the plain loop) and 1. full compile from scratch, both whole processes, run
        # alternately so that both see the same state of a shared machine; every run starts
        # from an empty output directory and a synced file system.
        base = self.add(Row("baseline: plain loop (evaluate + json.dumps + write)", label, evals=n_evals,
                            files=tenants))
        full = self.add(Row("1 compile, from scratch (whole process)", label, evals=n_evals, files=tenants))
        floor = self.add(Row("file-system floor: create + write the same number of files", label,
                             files=tenants))
        size = bundle_size(flag_data)
        out = self.work / f"out-{tenants}x{flags}"
        scratch = self.work / "base-out"
        for i in range(self.runs):
            fresh(scratch)
            t0, rss, _ = run_process([sys.executable, str(HERE / "floor.py"), str(scratch), str(tenants), str(size)])
            floor.times.append(t0)
            floor.rss = max(floor.rss or 0, rss)
            fresh(scratch)
            t, rss, _ = run_process([sys.executable, str(HERE / "baseline.py"), str(root), str(scratch), ENV])
            base.times.append(t)
            base.rss = max(base.rss or 0, rss)
            fresh(scratch)
            fresh(out)
            t2, rss, _ = run_process([self.flagops, "--root", str(root), "compile", "--out", str(out)], env=self.env)
            full.times.append(t2)
            full.rss = max(full.rss or 0, rss)
            self.log(f"[{label}] run {i + 1}: floor {t0:.2f}s, baseline {t:.2f}s, compile {t2:.2f}s")
        base.ratio = 1.0
        floor.ratio = base.median / floor.median
        floor.notes = (f"{size:,} bytes each; the compile takes {full.median / floor.median:.2f}x this, "
                       f"the baseline {base.median / floor.median:.2f}x")
        full.ratio = base.median / full.median
        goal = 8 if tenants >= 100_000 else 6 if tenants >= 30_000 else None
        full.notes = f"{base.median / full.median:.2f}x the baseline's speed" + (
            f" (target >= {goal}x)" if goal else "")

        # Evaluation alone (in process, nothing cached).
        if not self.compile_only:
            self.evaluation(root, label, n_evals)

        # 2. Recompile after one rollout pct change (previous output present).
        re = self.add(Row(f"2 recompile after one pct change ({key})", label, evals=n_evals))
        rewritten = []
        bundles = out / ENV / "tenants"
        for i in range(self.runs):
            generate.set_pct(root, key, pct + 5 if i % 2 == 0 else pct)
            before = bundle_stats(bundles)
            os.sync()
            t, rss, _ = run_process([self.flagops, "--root", str(root), "compile", "--out", str(out)], env=self.env)
            after = bundle_stats(bundles)
            rewritten.append(sum(1 for name, st in after.items() if before.get(name) != st))
            re.times.append(t)
            re.rss = max(re.rss or 0, rss)
            self.log(f"[{label}] recompile run {i + 1}: {t:.2f}s, {rewritten[-1]} rewritten")
        generate.set_pct(root, key, pct)
        re.files = statistics.median(rewritten)
        re.ratio = base.median / re.median
        re.notes = (f"{int(statistics.median(rewritten))} of {tenants:,} bundles rewritten; "
                    f"{re.median / full.median:.2f} of a full compile (target < 0.25)")

        # 3. plan for that one-flag change.
        if self.compile_only:
            return
        if with_plan and (ROOT / "tools" / "flagops" / "plan.py").exists():
            git(root, "init", "-q", "-b", "main")
            git(root, "add", "-A")
            git(root, "commit", "-q", "-m", "base")
            generate.set_pct(root, key, pct + 5)
            row = self.add(Row(f"3 plan --base HEAD ({key} pct {pct} -> {pct + 5})", label, evals=2 * tenants))
            flipped = None
            for i in range(self.runs):
                t, rss, stdout = run_process([self.flagops, "--root", str(root), "plan", "--base", "HEAD",
                                              "--format", "json"], env=self.env)
                row.times.append(t)
                row.rss = max(row.rss or 0, rss)
                flipped = _count_flipped(stdout)
                self.log(f"[{label}] plan run {i + 1}: {t:.2f}s")
            row.ratio = base.median / row.median
            row.notes = (f"{flipped} tenants flipped; " if flipped is not None else "") + "target < 5 s at 100,000"
            git(root, "checkout", "-q", "--", ".")
            if with_publish:
                self.publish(root, out, label, key, pct, base.median)

        # 6. Peers on a sample of the same tenants and the same flags.
        self.peers(root, label, n_evals, full, base)

    def evaluation(self, root: Path, label: str, n_evals: int) -> None:
        code = (
            "import sys,time,json\n"
            "from flagops.loading import FsSource, load_project\n"
            "from flagops.matrix import TenantIndex, evaluate_columns\n"
            f"p=load_project(FsSource(__import__('pathlib').Path({str(root)!r})),[{ENV!r}])\n"
            f"flags=p.flag_data(); tenants=p.inventories[{ENV!r}].tenants; keys=sorted(flags)\n"
            "out=[]\n"
            f"for _ in range({self.runs}):\n"
            "    s=time.perf_counter(); ix=TenantIndex.build(tenants)\n"
            f"    m=evaluate_columns(flags, keys, ix, {ENV!r}); out.append(time.perf_counter()-s)\n"
            "print(json.dumps({'times':out,'hashed':ix.buckets.hashed if ix.buckets else 0}))\n"
        )
        _, rss, stdout = run_process([sys.executable, "-c", code], env=self.env)
        result = json.loads(stdout)
        row = self.add(Row("evaluation alone (index + matrix, cold buckets)", label, evals=n_evals))
        row.times = result["times"]
        row.notes = f"{result['hashed']:,} rollout pairs hashed per run; target >= 4,000,000 evals/s"

    def publish(self, root: Path, out: Path, label: str, key: str, pct: int, baseline: float) -> None:
        script = ROOT / "scripts" / "s3server.py"
        if not script.exists() or "publish" not in subprocess.run(
                [self.flagops, "--help"], capture_output=True, text=True).stdout:
            return
        sys.path.insert(0, str(ROOT / "scripts"))
        import s3server  # type: ignore[import-not-found]

        state_dir = self.work / "s3"
        try:
            state, _ = s3server.start(state_dir)
        except Exception as exc:  # noqa: BLE001 - the case is reported as skipped
            self.add(Row("5 publish one-flag change to local S3", label, notes=f"skipped: {exc}"))
            return
        try:
            import boto3

            env = dict(self.env, **state.env())
            client = boto3.client("s3", endpoint_url=state.endpoint_url, aws_access_key_id=state.access_key,
                                  aws_secret_access_key=state.secret_key, region_name=state.region)
            client.create_bucket(Bucket="bench")
            target = "s3://bench/flags"
            args = ["publish", "--env", ENV, "--target", target, "--endpoint-url", state.endpoint_url,
                    "--from", str(out), "--format", "json", "--allow-rollback"]
            run_process([self.flagops, "--root", str(root), "compile", "--out", str(out)], env=env)
            t0, _, _ = run_process([self.flagops, "--root", str(root), *args], env=env)
            self.log(f"[{label}] initial publish: {t0:.1f}s")
            row = self.add(Row("5 publish one-flag change to local S3", label))
            uploads = []
            for i in range(self.runs):
                generate.set_pct(root, key, pct + 5 if i % 2 == 0 else pct)
                run_process([self.flagops, "--root", str(root), "compile", "--out", str(out)], env=env)
                t, rss, stdout = run_process([self.flagops, "--root", str(root), *args], env=env)
                row.times.append(t)
                row.rss = max(row.rss or 0, rss)
                try:
                    uploads.append(int(json.loads(stdout).get("uploaded", 0)))
                except (ValueError, AttributeError):
                    pass
                self.log(f"[{label}] publish run {i + 1}: {t:.2f}s")
            generate.set_pct(root, key, pct)
            row.files = statistics.median(uploads) if uploads else None
            row.ratio = baseline / row.median
            row.notes = (f"{int(statistics.median(uploads))} uploads (= flipped tenants); "
                         f"initial full upload {t0:.0f}s" if uploads else "")
        finally:
            s3server.stop(state_dir)

    def history(self, log_commits: int) -> None:
        path = HERE / "bench_history.py"
        if not path.exists():
            return
        import bench_history  # type: ignore[import-not-found]

        repo = bench_history.make_history_repo(self.work / "history", log_commits, 50)
        row = self.add(Row(f"4 history over {log_commits:,} commits", "50 flags"))
        for i in range(self.runs):
            t, rss, _ = run_process([self.flagops, "--root", str(repo), "history", "--format", "json"], env=self.env)
            row.times.append(t)
            row.rss = max(row.rss or 0, rss)
            self.log(f"[history] run {i + 1}: {t:.2f}s")

    def peers(self, root: Path, label: str, n_evals: int, full: Row, base: Row) -> None:
        _, _, stdout = run_process([sys.executable, str(HERE / "peers.py"), str(root), ENV,
                                    str(self.peer_sample), str(self.runs)], env=self.env)
        result = json.loads(stdout)
        names = {"flagd": "6 peer: flagd in-process (openfeature-flagd-core)",
                 "unleash": "6 peer: UnleashClient (bootstrapped, offline)"}
        for peer, name in names.items():
            got = result[peer]
            if "missing" in got:
                self.add(Row(name, label, notes=f"not installed ({got['missing']}); pip install -e '.[bench]'"))
                continue
            row = self.add(Row(name, label, evals=n_evals))
            row.times = [t * result["tenants"] / result["sample"] for t in got["times"]]  # projected
            row.ratio = base.median / row.median
            row.notes = (f"{row.median / full.median:,.2f}x our compile time; measured on "
                         f"{result['sample']:,} tenants, projected; agrees on {got['agree']:.1%} of "
                         "non-rollout values")


def _count_flipped(stdout: str) -> Optional[int]:
    try:
        doc = json.loads(stdout)
    except ValueError:
        return None
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("turnedOn", "turnedOff", "on", "off", "enabled", "disabled") and isinstance(v, list):
                    total += len(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return total


def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("numpy", "openfeature-flagd-core", "UnleashClient"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:  # noqa: BLE001
            versions.append(f"{dist} -")
    return [f"machine: {os.cpu_count()} CPU(s), {cpu}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}", "versions: " + ", ".join(versions)]


def table(rows: Sequence[Row]) -> str:
    head = ["case", "size (tenants x flags)", "runs", "median s", "spread s (min-max)", "evals/s", "files/s",
            "peak RSS MiB", "vs baseline", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        d = r.to_dict()
        cells = [
            r.case, r.size, str(d["runs"]),
            f"{d['median']:.2f}" if r.times else "-",
            f"{d['min']:.2f}-{d['max']:.2f}" if r.times else "-",
            f"{d['evals_per_s']:,.0f}" if d["evals_per_s"] else "-",
            f"{d['files_per_s']:,.0f}" if d["files_per_s"] is not None else "-",
            f"{r.rss / 2**20:,.0f}" if r.rss else "-",
            (f"{r.ratio:.1f}x" if r.ratio >= 1 else f"{r.ratio:.2f}x") if r.ratio else "-",
            r.notes,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def linearity(rows: Sequence[Row]) -> list[str]:
    """Time per evaluation at the largest size over that at the smallest (target: within 1.5x)."""
    lines = []
    for prefix in ("1 compile", "evaluation alone"):
        chosen = [r for r in rows if r.case.startswith(prefix) and r.times and r.evals]
        if len(chosen) >= 2:
            small, large = min(chosen, key=lambda r: r.evals or 0), max(chosen, key=lambda r: r.evals or 0)
            per_small, per_large = small.median / small.evals, large.median / large.evals  # type: ignore[operator]
            lines.append(f"linearity ({prefix}): {large.size} costs {per_large / per_small:.2f}x per evaluation "
                         f"what {small.size} costs (target <= 1.5x)")
    return lines


def compile_bytecode() -> None:
    """Write the bytecode of flagops, its client and the benchmarks (only what is out of date)."""
    import compileall

    for tree in (ROOT / "tools", ROOT / "client", HERE):
        compileall.compile_dir(str(tree), quiet=1)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="flagops benchmarks: one table")
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("FLAGOPS_BENCH_QUICK")),
                        help="leave out 100,000 x 200 (also FLAGOPS_BENCH_QUICK=1)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default=None, help="e.g. 2000x20,5000x50 (overrides --quick)")
    parser.add_argument("--peer-sample", type=int, default=None, help="tenants the peers evaluate")
    parser.add_argument("--history-commits", type=int, default=5000)
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--compile-only", action="store_true",
                        help="only the baseline, the compile, the file-system floor and the recompile")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated repositories and output")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    # Measured as installed (pip compiles a package's bytecode): an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module again in every process.
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="flagops-bench-", dir=args.workdir))
    # A terminated run still removes its work directory and stops the S3 server it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    bench = Bench(work, args.runs, args.peer_sample or (300 if args.quick else 1000), log,
                  compile_only=args.compile_only)
    try:
        for i, (tenants, flags) in enumerate(sizes):
            bench.size(tenants, flags, with_plan=True, with_publish=(i == 0 and not args.no_publish))
        if args.history_commits and not args.compile_only:
            bench.history(args.history_commits)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    print("\n".join(machine()))
    print(f"command: {' '.join(['python', 'benchmarks/run.py', *(argv if argv is not None else sys.argv[1:])])}")
    print()
    print(table(bench.rows))
    for line in linearity(bench.rows):
        print(line)
    if not (args.compile_only or args.sizes):  # the TypeScript client beside the Python one (bench_ts_client.py)
        import bench_ts_client  # noqa: E402
        print()
        print(bench_ts_client.report(quick=args.quick))
    if not (args.compile_only or args.sizes):  # a whole flagops process (bench_startup.py)
        import bench_startup  # noqa: E402

        print()
        print(bench_startup.report(runs=10 if args.quick else 20))
    if not (args.no_publish or args.compile_only):  # propagation: head, kill fast path, snapshot
        import bench_propagation

        print()
        print(bench_propagation.run([20_000] if args.quick else [20_000, 100_000], workdir=args.workdir))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in bench.rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
