"""Break-glass latency: from `flagops kill ... --publish` to a service reader seeing false.

    .venv/bin/python benchmarks/bench_breakglass.py [--runs 5] [--tenants 0]

Uses the local S3 server (`make s3-up`), a throw-away bucket with the recommended bucket
policy, and throw-away git repositories (a bare "forge", the operator's clone and CI's clone)
seeded with this repository's flags, tenants and schemas; `--tenants N` replaces the
production inventory with N generated tenants. Each run: CI publishes main with the flag on,
the operator runs the break-glass kill of `jmap_native_v2` (a whole `flagops` process), and a
`FlagClient` polls one tenant that had the flag on until it reads false. The flag is then
turned back on through the normal path (commit, push, CI publish) for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import boto3  # noqa: E402
import s3server  # noqa: E402
from botocore.config import Config  # noqa: E402

from flagops.publish import bucket_policy  # noqa: E402
from flagops_client import FlagClient  # noqa: E402

FLAG = "jmap_native_v2"
FLAGOPS = str(Path(sys.executable).parent / "flagops")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tenants", type=int, default=0, help="generated production tenants (0: the sample)")
    args = parser.parse_args()

    state = s3server.running(s3server.DEFAULT_STATE_DIR)
    if state is None:
        print("the local S3 server is not running; start it with `make s3-up`", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="flagops-bench-breakglass-"))
    env = {**os.environ, **state.env(), "HOME": str(work), "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, env=env)

    def flagops(root: Path, *argv: str) -> tuple[float, str]:
        started = time.monotonic()
        done = subprocess.run([FLAGOPS, "--root", str(root), *argv], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"flagops {' '.join(argv)} failed:\n{done.stderr}")
        return time.monotonic() - started, done.stdout

    seed = work / "seed"
    for folder in ("flags", "tenants", "schema"):
        shutil.copytree(ROOT / folder, seed / folder)
    if args.tenants:
        rng = random.Random(1)
        plans = ["free", "starter", "business", "enterprise"]
        tenants = [{"id": f"t_{i:08x}", "slug": f"tenant-{i}", "plan": rng.choice(plans)} for i in range(args.tenants)]
        (seed / "tenants" / "production.yaml").unlink()
        (seed / "tenants" / "production.json").write_text(json.dumps(tenants))
    git("init", "-b", "main", cwd=seed)
    git("config", "user.name", "Bench Operator", cwd=seed)
    git("config", "user.email", "bench@dezky.eu", cwd=seed)
    git("add", ".", cwd=seed)
    git("commit", "-m", "Seed", cwd=seed)
    git("clone", "--bare", str(seed), str(work / "forge.git"), cwd=work)
    ops, ci = work / "ops", work / "ci"
    for clone in (ops, ci):
        git("clone", str(work / "forge.git"), str(clone), cwd=work)
        git("config", "user.name", "Bench Operator", cwd=clone)
        git("config", "user.email", "bench@dezky.eu", cwd=clone)

    s3 = boto3.client("s3", endpoint_url=state.endpoint_url, aws_access_key_id=state.access_key,
                      aws_secret_access_key=state.secret_key, region_name=state.region,
                      config=Config(s3={"addressing_style": "path"}))
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket, "flags")))
    target = f"s3://{bucket}/flags"
    client = FlagClient(f"{state.endpoint_url}/{bucket}/flags", "production", refresh_interval=None, timeout=5)
    rows = []
    try:
        flagops(ci, "publish", "--env", "production", "--target", target)
        manifest = json.loads(s3.get_object(Bucket=bucket, Key="flags/production/manifest.json")["Body"].read())
        slug = next(s for s in manifest["tenants"] if client.is_enabled(FLAG, tenant=s))
        for run in range(args.runs):
            started = time.monotonic()
            command, out = flagops(ops, "kill", FLAG, "--reason", f"drill {run}", "--publish", "--env",
                                   "production", "--target", target)
            while True:
                client.refresh()
                if client.is_enabled(FLAG, tenant=slug, default=True) is False:
                    break
            total = time.monotonic() - started
            rows.append(total)
            published = next(line for line in out.splitlines() if line.startswith("published"))
            print(f"run {run}: reader saw false {total:.2f}s after the command ({command:.2f}s in the command)")
            print(f"  {published}")
            git("push", "origin", "main:main", cwd=ops)
            flagops(ops, "set", FLAG, "--state", "rollout", "--pct", "30")
            git("commit", "-am", "Back on", cwd=ops)
            git("push", "origin", "main:main", cwd=ops)
            git("pull", "--ff-only", cwd=ci)
            flagops(ci, "publish", "--env", "production", "--target", target)
            client.refresh()
    finally:
        client.close()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=bucket)
        shutil.rmtree(work, ignore_errors=True)
    print(f"tenants {len(manifest['tenants'])}, runs {len(rows)}: median {statistics.median(rows):.2f}s "
          f"(min {min(rows):.2f}s, max {max(rows):.2f}s) from the command to a reader seeing false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
