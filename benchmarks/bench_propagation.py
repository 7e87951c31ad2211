"""Propagation at platform scale: polling cost, kill latency, rollout cost and the snapshot, old beside new.

    .venv/bin/python benchmarks/bench_propagation.py [--tenants 20000,100000] [--hold 1000] [--interval 1]

Against the local S3 server (`make s3-up`, or one started here) behind a request-counting
reverse proxy (aiohttp), so every request a reader makes is counted. "old" is the service
client of the seed release (its files taken from git, run in its own process), which
revalidates every held bundle each interval; "new" is the client of this tree (head polling,
snapshot mode). Both read the same store, published by this tree's `flagops publish`.

Per tenant count N (200 flags), one row per measure:
- requests of one refresh with nothing changed (tenant mode holding --hold tenants; the
  snapshot mode holds all N);
- seconds from the start of `flagops publish` to a polling reader seeing the kill of a flag
  that is on for every tenant (refresh interval --interval; tenant mode watches the tenant
  whose bundle is uploaded last);
- requests of the first refresh after a one-flag rollout change;
- snapshot bytes, load time (construction to the first answer) and lookup time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(HERE))

OLD_CLIENT_REV = "b42cde3"  # the seed's service client
ENV = "production"
BUCKET = "bench-propagation"
FLAGOPS = str(Path(sys.executable).parent / "flagops")


# --------------------------------------------------------------------------------------------
# The request-counting proxy

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "content-length"}


class CountingProxy:
    """A reverse proxy to ``upstream`` (aiohttp server and client) counting requests by object kind.

    The Host header is passed through unchanged, so SigV4 signatures made for the proxy's
    address still verify upstream.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self._mutex = threading.Lock()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> "CountingProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._mutex:
            self.counts.clear()

    def total(self) -> int:
        with self._mutex:
            return sum(self.counts.values())

    def _serve(self) -> None:
        from aiohttp import ClientSession, TCPConnector, web
        from yarl import URL

        async def main() -> None:
            session = ClientSession(connector=TCPConnector(limit=64), auto_decompress=False)

            async def handle(request: web.Request) -> web.StreamResponse:
                body = await request.read()
                headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
                url = URL(self.upstream + request.raw_path, encoded=True)
                async with session.request(request.method, url, headers=headers, data=body or None,
                                           allow_redirects=False) as resp:
                    data = await resp.read()
                    out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
                    status = resp.status
                name = request.path.rsplit("/", 1)[-1]
                kind = "bundle" if "/tenants/" in request.path else name
                with self._mutex:
                    self.counts[kind] += 1
                return web.Response(status=status, body=data, headers=out)

            app = web.Application(client_max_size=64 * 2**20)
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


# --------------------------------------------------------------------------------------------
# Readers: a FlagClient in its own process, driven over stdin/stdout


def reader_main(argv: list[str]) -> int:
    """``reader MODE BASE INTERVAL KEY SLUGS_FILE HOLD``: one FlagClient, commands on stdin."""
    mode, base, interval, key, slugs_file, hold = argv
    from flagops_client import FlagClient

    slugs = Path(slugs_file).read_text().split()[: int(hold)]
    kwargs: dict[str, Any] = {"refresh_interval": float(interval) or None, "timeout": 10.0}
    started = time.perf_counter()
    if mode == "snapshot":
        client = FlagClient(base, ENV, all_tenants=True, **kwargs)
        client.is_enabled(key, slugs[0])
    else:
        client = FlagClient(base, ENV, max_tenants=max(len(slugs), 1), **kwargs)
        for slug in slugs:
            client.is_enabled(key, slug)
    say({"ready": time.perf_counter() - started})
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "refresh":
            say({"refreshed": client.refresh()})
        elif command == "watch":  # poll one tenant until the flag reads false
            slug = rest[0]
            while client.is_enabled(key, slug, True):
                time.sleep(0.005)
            say({"seen": time.time()})
        elif command == "lookup":
            n = 200_000
            t0 = time.perf_counter()
            for i in range(n):
                client.is_enabled(key, slugs[i % len(slugs)])
            say({"lookup_ns": (time.perf_counter() - t0) / n * 1e9})
        elif command == "quit":
            break
    client.close()
    return 0


def say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


class Reader:
    def __init__(self, python_path: str, mode: str, base: str, interval: float, key: str, slugs: Path,
                 hold: int, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, __file__, "reader", mode, base, str(interval), key,
                                      str(slugs), str(hold)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env={**env, "PYTHONPATH": python_path})
        self.ready = self.read()["ready"]

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the reader exited ({self.proc.wait()})")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        self.send(command)
        return self.read()

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


class HeadPoller:
    """Polls the head (conditional GET every ``interval``) until its ``off`` names ``key``."""

    def __init__(self, url: str, key: str, interval: float):
        self.url, self.key, self.interval = url, key, interval
        self.seen: Optional[float] = None
        self._done = threading.Event()

    def start(self) -> "HeadPoller":
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        import urllib.error
        import urllib.request

        etag = None
        while True:
            request = urllib.request.Request(self.url, headers={"If-None-Match": etag} if etag else {})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    etag = resp.headers.get("ETag")
                    if self.key in json.loads(resp.read()).get("off", []):
                        self.seen = time.time()
                        self._done.set()
                        return
            except urllib.error.HTTPError:
                pass  # 304: unchanged
            time.sleep(self.interval)

    def wait(self) -> float:
        self._done.wait(600)
        return self.seen or float("nan")


# --------------------------------------------------------------------------------------------
# The benchmark


def set_state(root: Path, key: str, state: str) -> None:
    path = root / "flags" / f"{key}.yaml"
    lines = [f"state: {state}" if line.startswith("state:") else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@dezky.eu", *args],
                   check=True, capture_output=True)


class Bench:
    def __init__(self, work: Path, state: Any, proxy: CountingProxy, old_client: Path, args: argparse.Namespace):
        self.work, self.state, self.proxy, self.args = work, state, proxy, args
        self.old_path = str(old_client)
        self.new_path = str(ROOT / "client")
        self.env = {**os.environ, **state.env()}
        self.rows: list[tuple[str, str, str, str, str]] = []

    def flagops(self, root: Path, *argv: str) -> float:
        t0 = time.time()
        subprocess.run([FLAGOPS, "--root", str(root), *argv], check=True, capture_output=True, env=self.env)
        return t0

    def run(self, n: int) -> None:
        import generate
        from flagops.publish import PublishOptions, bucket_policy, publish_environment
        from flagops.storage import S3Store

        root, out = self.work / f"repo-{n}", self.work / f"out-{n}"
        data = generate.write_repo(root, n, 200, environment=ENV)
        flags = data["flags"]
        kill = next(k for k, f in sorted(flags.items()) if f["state"] == "on" and not f.get("scope"))
        rollout = generate.rollout_keys(flags)[0]
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "flags")
        self.flagops(root, "compile", "--out", str(out))
        prefix = f"p{n}"
        store = S3Store(BUCKET, endpoint_url=self.state.endpoint_url, max_connections=34)
        t0 = time.monotonic()
        publish_environment(out, ENV, store, prefix, root=root, options=PublishOptions(workers=32))
        log(f"[{n}] initial publish {time.monotonic() - t0:.0f}s")
        store.client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(bucket_policy(BUCKET)))
        slugs = sorted(json.loads((out / ENV / "manifest.json").read_bytes())["tenants"])
        slugs_file = self.work / f"slugs-{n}.txt"
        slugs_file.write_text("\n".join(slugs))
        last = self.work / f"last-{n}.txt"
        last.write_text(slugs[-1] + "\n" + "\n".join(slugs))  # the slug uploaded last, then the rest
        public = f"{self.proxy.url}/{BUCKET}/{prefix}"
        signed = f"s3://{BUCKET}/{prefix}"
        hold = min(self.args.hold, n)
        reader_env = {**self.env, "AWS_ENDPOINT_URL": self.proxy.url}
        label = f"{n:,} tenants"

        def reader(path: str, mode: str, interval: float, key: str, file: Path = slugs_file,
                   count: int = hold) -> Optional[Reader]:
            try:
                return Reader(path, mode, signed if mode == "snapshot" else public, interval, key, file, count,
                              reader_env)
            except RuntimeError as exc:  # this client has no such mode
                log(f"[{n}] {mode} reader from {path}: {exc}")
                return None

        # 1. nothing changed
        counts: dict[str, str] = {}
        for name, path, mode in (("old", self.old_path, "tenant"), ("new", self.new_path, "tenant"),
                                 ("new-snapshot", self.new_path, "snapshot")):
            r = reader(path, mode, 0, kill)
            if r is None:
                counts[name] = "n/a"
                continue
            r.ask("refresh")  # the first refresh after loading may fetch what loading skipped
            self.proxy.reset()
            r.ask("refresh")
            counts[name] = str(self.proxy.total())
            r.close()
        self.rows.append((label, f"requests per refresh, nothing changed ({hold:,} held; snapshot: all)",
                          str(counts["old"]), f"{counts['new']} (snapshot: {counts['new-snapshot']})", "<= 2"))

        # 2. a one-flag rollout change
        readers = {"old": reader(self.old_path, "tenant", 0, rollout), "new": reader(self.new_path, "tenant", 0, rollout),
                   "new-snapshot": reader(self.new_path, "snapshot", 0, rollout)}
        for r in readers.values():
            if r is not None:
                r.ask("refresh")
        pct = int(flags[rollout].get("pct", 0))
        generate.set_pct(root, rollout, min(100, pct + 10))
        git(root, "commit", "-qam", "rollout +10")
        self.flagops(root, "compile", "--out", str(out))
        self.flagops(root, "publish", "--env", ENV, "--target", f"s3://{BUCKET}/{prefix}", "--from", str(out),
                     "--workers", "32")
        after: dict[str, str] = {}
        for name, r in readers.items():
            if r is None:
                after[name] = "n/a"
                continue
            self.proxy.reset()
            r.ask("refresh")
            after[name] = str(self.proxy.total())
            r.close()
        self.rows.append((label, f"requests of the first refresh after a one-flag rollout change ({hold:,} held)",
                          str(after["old"]), f"{after['new']} (snapshot: {after['new-snapshot']})", "-"))

        # 3. a kill of a flag on for every tenant, from the start of `flagops publish`
        interval = self.args.interval
        watchers = {"old": reader(self.old_path, "tenant", interval, kill, last, 1),
                    "new": reader(self.new_path, "tenant", interval, kill, last, 1),
                    "new-snapshot": reader(self.new_path, "snapshot", interval, kill, last, 1)}
        set_state(root, kill, "off")
        git(root, "commit", "-qam", f"kill {kill}")
        self.flagops(root, "compile", "--out", str(out))
        watchers = {name: r for name, r in watchers.items() if r is not None}
        for r in watchers.values():
            r.send(f"watch {slugs[-1]}")
        polled = HeadPoller(f"{public}/{ENV}/head.json", kill, interval).start()
        started = self.flagops(root, "publish", "--env", ENV, "--target", f"s3://{BUCKET}/{prefix}", "--from",
                               str(out), "--workers", "32")
        done = time.time()
        seen = {name: f'{r.read()["seen"] - started:.1f}' for name, r in watchers.items()}
        raw = polled.wait() - started
        for r in watchers.values():
            r.close()
        seen = {name: seen.get(name, "n/a") for name in ("old", "new", "new-snapshot")}
        self.rows.append((label, f"seconds from publish start to a reader seeing a kill (interval {interval:g} s; "
                                 f"publish took {done - started:.1f} s)",
                          seen["old"], f"{seen['new']} (snapshot: {seen['new-snapshot']})",
                          f"<= {5 + interval:g}"))
        self.rows.append((label, f"seconds from publish start to the kill in head.json (a plain poll every "
                                 f"{interval:g} s)", "-", f"{raw:.1f}", f"<= {5 + interval:g}"))

        # 4. the snapshot
        size = (out / ENV / "snapshot.json").stat().st_size
        snap = reader(self.new_path, "snapshot", 0, rollout, slugs_file, n)
        snapshot = "n/a"
        if snap is not None:
            snapshot = f"{size / 1e6:.1f} MB / {snap.ready:.2f} / {snap.ask('lookup')['lookup_ns']:.0f}"
            snap.close()
        tenant = reader(self.old_path, "tenant", 0, rollout, slugs_file, min(hold, 1000))
        assert tenant is not None
        tenant_ns = tenant.ask("lookup")["lookup_ns"]
        tenant.close()
        self.rows.append((label, f"snapshot ({size / 1e6:.1f} MB): bytes / load s / lookup ns "
                                 "(old: a tenant-mode lookup)", f"- / - / {tenant_ns:.0f}", snapshot,
                          "<= 8 MB / 1.5 / 1000"))
        shutil.rmtree(out, ignore_errors=True)


def old_client(work: Path) -> Path:
    """The seed's client package, from git, in a directory of its own."""
    dest = work / "old-client"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_CLIENT_REV, "client/flagops_client"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest), "--strip-components=1"], input=archive, check=True)
    return dest


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    head = ("tenants", "measure", "old", "new", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(tenants: list[int], *, hold: int = 1000, interval: float = 1.0, workdir: Optional[Path] = None) -> str:
    """Run the benchmark; the table as Markdown."""
    import boto3  # noqa: F401  (fail early without the S3 client)
    import s3server

    work = Path(tempfile.mkdtemp(prefix="flagops-bench-propagation-", dir=workdir))
    own = s3server.running(s3server.DEFAULT_STATE_DIR) is None
    state = s3server.start(work / "s3")[0] if own else s3server.running(s3server.DEFAULT_STATE_DIR)
    try:
        from flagops.storage import S3Store

        os.environ.update(state.env())
        client = S3Store(BUCKET, endpoint_url=state.endpoint_url).client
        try:
            client.create_bucket(Bucket=BUCKET)
        except client.exceptions.ClientError:
            pass
        proxy = CountingProxy(state.endpoint_url).start()
        bench = Bench(work, state, proxy, old_client(work), argparse.Namespace(hold=hold, interval=interval))
        for n in tenants:
            bench.run(n)
        return table(bench.rows)
    finally:
        _empty_bucket(state)
        if own:
            s3server.stop(work / "s3")
        shutil.rmtree(work, ignore_errors=True)


def _empty_bucket(state: Any) -> None:
    from flagops.storage import S3Store

    client = S3Store(BUCKET, endpoint_url=state.endpoint_url).client
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=BUCKET)
    except Exception:  # noqa: BLE001 - best effort: the bucket is the benchmark's own
        pass


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reader"]:
        return reader_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", default="20000,100000")
    parser.add_argument("--hold", type=int, default=1000, help="tenants a tenant-mode reader holds")
    parser.add_argument("--interval", type=float, default=1.0, help="the readers' refresh interval (s)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    print(run([int(x) for x in args.tenants.split(",")], hold=args.hold, interval=args.interval,
              workdir=args.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
