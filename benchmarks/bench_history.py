"""Benchmark: ``flag_history`` over a long generated history (one log pass, not a git call per commit).

    .venv/bin/python benchmarks/bench_history.py [--commits 5000] [--flags 50]

``make_history_repo(path, commits, flags)`` builds the repository with ``git fast-import`` in
about a second, so other benchmarks can reuse it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AUTHORS = [("Alice Martin", "alice@dezky.eu"), ("Bob Keller", "bob@dezky.eu"),
           ("Carol Novak", "carol@dezky.eu"), ("Dan Weber", "dan@dezky.eu")]
PLANS = ["free", "starter", "business", "enterprise"]
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def _flag_yaml(key: str, version: int) -> str:
    """Version ``version`` of a flag: rollout steps, owner and scope changes, formatting-only edits."""
    pct = (version * 7) % 101
    lines = ["# yaml-language-server: $schema=../schema/flag.schema.json", f"key: {key}",
             f"description: {key.replace('_', ' ')} (revision {version // 5})",
             f"owner: team{version % 3}@dezky.eu"]
    if version % 11 == 10:
        lines.append("state: off")
    else:
        lines += ["state: rollout", f"pct: {pct}"]
    if version % 4 == 3:
        lines += ["scope:", f"  plans: [{PLANS[version % 3]}, enterprise]"]
    if version % 13 == 12:
        lines.insert(1, "# formatting-only comment")
    return "\n".join(lines) + "\n"


def _tenants(env: str, n: int) -> str:
    rows = [f"- id: t_{env[:3]}_{i:05d}\n  slug: {env[:3]}-tenant-{i:05d}\n  plan: {PLANS[i % 4]}"
            for i in range(n)]
    return "\n".join(rows) + "\n"


def make_history_repo(path: Path, commits: int = 5000, flags: int = 50, *, tenants: int = 200) -> Path:
    """A git repository at ``path`` whose ``commits`` commits each change one of ``flags`` flags.

    The first commit creates every flag and the tenant inventories; later commits cycle through
    the flags and authors, one hour apart. The work tree is checked out at the last commit.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    keys = [f"flag_{i:03d}" for i in range(flags)]
    versions = {k: 0 for k in keys}
    out: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    for n in range(max(1, commits)):
        name, email = AUTHORS[n % len(AUTHORS)]
        when = START + n * 3600
        out.append(b"commit refs/heads/main\n")
        out.append(f"author {name} <{email}> {when} +0100\ncommitter {name} <{email}> {when} +0100\n".encode())
        if n == 0:
            data("Create the flags and the inventories")
            for k in keys:
                out.append(f"M 100644 inline flags/{k}.yaml\n".encode())
                data(_flag_yaml(k, 0))
            for env in ("development", "staging", "production"):
                out.append(f"M 100644 inline tenants/{env}.yaml\n".encode())
                data(_tenants(env, tenants))
        else:
            key = keys[n % flags]
            versions[key] += 1
            data(f"{key}: step {versions[key]}")
            out.append(f"M 100644 inline flags/{key}.yaml\n".encode())
            data(_flag_yaml(key, versions[key]))
        out.append(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(out), check=True)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, check=True)
    return path


def make_plan_repo(path: Path, tenants: int = 100_000, *, fmt: str = "yaml") -> Path:
    """A committed repository with ``tenants`` production tenants and the repository's own flags,
    then one uncommitted change (jmap_native_v2 from 30% to 60%) in the work tree."""
    repo_root = Path(__file__).resolve().parent.parent
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "flags").mkdir()
    (path / "tenants").mkdir()
    for src in sorted((repo_root / "flags").glob("*.yaml")):
        text = src.read_text()
        if src.stem == "new_billing_engine":  # its tenants must exist in this inventory
            text = text.replace("[dezky-internal, acme]", "[tenant-000001, tenant-000002]")
        if src.stem == "jmap_native_v2":
            text = "key: jmap_native_v2\ndescription: JMAP\nstate: rollout\npct: 30\n"
        (path / "flags" / src.name).write_text(text)
    rows = [{"id": f"t_{i:08d}", "slug": f"tenant-{i:06d}", "plan": PLANS[i % 4],
             **({"partnerSlug": "nordcloud-it"} if i % 50 == 0 else {})} for i in range(tenants)]
    if fmt == "json":
        import json

        (path / "tenants" / "production.json").write_text(json.dumps(rows))
    else:
        lines = []
        for r in rows:
            lines.append(f"- id: {r['id']}\n  slug: {r['slug']}\n  plan: {r['plan']}\n")
            if "partnerSlug" in r:
                lines.append(f"  partnerSlug: {r['partnerSlug']}\n")
        (path / "tenants" / "production.yaml").write_text("".join(lines))
    env = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@dezky.eu",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@dezky.eu", "PATH": os.environ["PATH"]}
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "base"], cwd=path, check=True, env=env)
    flag = path / "flags" / "jmap_native_v2.yaml"
    flag.write_text(flag.read_text().replace("pct: 30", "pct: 60"))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--flags", type=int, default=50)
    parser.add_argument("--plan-tenants", type=int, default=100_000,
                        help="tenants for the plan measurement (0 skips it)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from flagops.history import flag_history

    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        t0 = time.perf_counter()
        root = make_history_repo(Path(tmp) / "repo", args.commits, args.flags)
        t1 = time.perf_counter()
        entries = flag_history(root)
        t2 = time.perf_counter()
        one = flag_history(root, "flag_007")
        t3 = time.perf_counter()
        limited = flag_history(root, limit=20)
        t4 = time.perf_counter()
    print(f"generate {args.commits} commits x {args.flags} flags: {t1 - t0:.2f} s")
    print(f"history (all flags): {len(entries)} entries in {t2 - t1:.2f} s")
    print(f"history flag_007: {len(one)} entries in {t3 - t2:.2f} s")
    print(f"history --limit 20: {len(limited)} entries in {t4 - t3:.2f} s")
    if args.plan_tenants:
        from flagops.plan import make_plan

        for fmt in ("yaml", "json"):
            with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
                root = make_plan_repo(Path(tmp) / "repo", args.plan_tenants, fmt=fmt)
                t0 = time.perf_counter()
                plan = make_plan(root, "HEAD")
                t1 = time.perf_counter()
                (entry,) = plan.environments["production"].flags
                print(f"plan, one flag changed, {args.plan_tenants} tenants ({fmt} inventory): "
                      f"{t1 - t0:.2f} s ({len(entry.turned_on)} turned on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
