"""A local HTTP server for tests of services that read flags: serves a directory of compiled
output (bundles, ``snapshot.json``, a head) on 127.0.0.1 the way an object store does (ETag,
304, Last-Modified, keep-alive), and injects faults on demand (5xx, slow answers, truncated or
replaced bodies, dropped connections).

    write_head(dist_dir, "production")          # compile writes no head; publish does
    with BundleServer(dist_dir) as server:
        client = FlagClient(server.url, environment="production")
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable, Optional, Union
from urllib.parse import unquote, urlsplit

__all__ = ["BundleServer", "write_head"]


def write_head(root: Union[str, os.PathLike], environment: str, sequence: int = 1,
               off: Iterable[str] = (), revision: Union[str, None, bool] = True,
               snapshot: Union[str, None, bool] = True) -> bytes:
    """Write ``root/<environment>/head.json`` as publish does; returns its bytes.

    By default the revision is the manifest's and the snapshot digest that of the compiled
    ``snapshot.json`` (None when there is none); pass a value to override either.
    """
    env_dir = Path(root) / environment
    if revision is True:
        try:
            revision = json.loads((env_dir / "manifest.json").read_bytes()).get("revision")
        except (OSError, ValueError):
            revision = None
    if snapshot is True:
        try:
            snapshot = "sha256:" + hashlib.sha256((env_dir / "snapshot.json").read_bytes()).hexdigest()
        except OSError:
            snapshot = None
    doc = {"environment": environment, "off": sorted(set(off)), "publishedAt": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "revision": revision, "schemaVersion": 1,
        "sequence": sequence, "snapshot": snapshot}
    data = (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    env_dir.mkdir(parents=True, exist_ok=True)
    tmp = env_dir / ".head.json.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, env_dir / "head.json")
    return data


class BundleServer:
    """Serve ``root`` over HTTP/1.1. Faults (set any time, from any thread):

    - ``status``: answer every request with this status (e.g. 500, 503);
    - ``delay``: seconds to wait before answering;
    - ``truncate``: send only the first half of each body (the Content-Length stays whole);
    - ``replace``: ``{path: bytes}`` served instead of the file (corrupt or mismatched documents);
    - ``etags``: False to send only Last-Modified (If-Modified-Since is honoured then).

    ``requests`` records ``(path, status)`` of every answer. With ``ssl_context`` (a server
    context holding a certificate for 127.0.0.1) it serves https.
    """

    def __init__(self, root: Union[str, os.PathLike], port: int = 0,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.root = Path(root)
        self.status: Optional[int] = None
        self.delay = 0.0
        self.truncate = False
        self.etags = True
        self.replace: dict[str, bytes] = {}
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if ssl_context is not None:  # https, with the caller's certificate
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bundle-server", daemon=True)
        self._thread.start()

    def count(self, status: Optional[int] = None, suffix: str = "") -> int:
        with self._lock:
            return sum(1 for path, code in self.requests
                       if (status is None or code == status) and path.endswith(suffix))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        """Stop as a killed server would: open connections are cut, later ones refused."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)

    def __enter__(self) -> "BundleServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((path, status))

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _send(self, status: int, body: bytes = b"", headers: Optional[dict[str, str]] = None,
                      length: Optional[int] = None) -> None:
                path = urlsplit(self.path).path
                server._record(path, status)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                if server.delay:
                    time.sleep(server.delay)
                path = urlsplit(self.path).path
                if server.status is not None:
                    self._send(server.status, b"injected failure\n")
                    return
                replaced = server.replace.get(path)
                if replaced is not None:
                    body, mtime = replaced, time.time()
                else:
                    file = server.root.joinpath(*[unquote(p) for p in path.split("/") if p])
                    if ".." in path.split("/") or not file.is_file():
                        self._send(404, b"not found\n")
                        return
                    body, mtime = file.read_bytes(), file.stat().st_mtime
                etag = '"' + hashlib.md5(body).hexdigest() + '"'
                last_modified = formatdate(int(mtime), usegmt=True)
                headers = {"Content-Type": "application/json", "Last-Modified": last_modified}
                if server.etags:
                    headers["ETag"] = etag
                    if self.headers.get("If-None-Match") == etag:
                        self._send(304, headers=headers)
                        return
                else:
                    since = self.headers.get("If-Modified-Since")
                    if since and int(mtime) <= parsedate_to_datetime(since).timestamp():
                        self._send(304, headers=headers)
                        return
                if server.truncate:
                    self._send(200, body[: len(body) // 2], headers, length=len(body))
                    self.close_connection = True
                    return
                self._send(200, body, headers)

            do_HEAD = do_GET

        return Handler
