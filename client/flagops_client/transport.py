"""Conditional GETs of documents under a base: ``http(s)://``, ``file://`` or ``s3://``.

HTTP goes through the standard library's ``http.client`` (the layer under ``urllib.request``)
so that one session keeps one connection alive across a whole refresh.

Two bounds hold whatever the server does:

- a wall-clock deadline on the whole request (connect, headers, body): every socket read is
  given only the time left, so a server trickling one byte at a time cannot stretch it;
- memory: each document has a cap for its kind (a bundle is tiny, the snapshot is the large
  one), enforced while reading, and all requests of the process together buffer at most
  ``MAX_IN_FLIGHT`` bytes.

``s3://bucket/prefix`` presigns each GET with botocore (the ``s3`` extra) and the standard
credential chain, then sends it through the same bounded HTTP path.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

__all__ = ["FetchError", "Response", "Session", "open_session", "check_base_url", "limit_for",
           "MAX_BUNDLE", "MAX_HEAD", "MAX_RULES", "MAX_SNAPSHOT", "MAX_IN_FLIGHT", "BUFFERED"]

#: Per-document caps. A bundle of 200 flags is about 8 KiB; the snapshot of 100,000 tenants
#: at 200 flags is about 6 MB.
MAX_BUNDLE = 1024 * 1024
MAX_HEAD = 256 * 1024
MAX_RULES = 16 * 1024 * 1024
MAX_SNAPSHOT = 32 * 1024 * 1024
#: All bodies being read at once in this process, together.
MAX_IN_FLIGHT = 64 * 1024 * 1024
USER_AGENT = "flagops-client/0.1"
S3_EXTRA = 'reading s3:// needs botocore: pip install "flagops-client[s3]"'


def limit_for(name: str) -> int:
    """The cap for a document, from its name."""
    if name.endswith("/snapshot.json"):
        return MAX_SNAPSHOT
    if name.endswith("/head.json"):
        return MAX_HEAD
    if name.endswith("rules.json"):
        return MAX_RULES
    return MAX_BUNDLE


class FetchError(Exception):
    """The store could not be asked (refused, timed out, 5xx, too large, unexpected status)."""


class _Budget:
    """Bytes buffered by every body being read in this process (``peak`` for tests and ops)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            if self.current + n > self.limit:
                raise FetchError(f"more than {self.limit} bytes of responses in flight; try again")
            self.current += n
            self.peak = max(self.peak, self.current)

    def give(self, n: int) -> None:
        with self._lock:
            self.current -= n


BUFFERED = _Budget(MAX_IN_FLIGHT)


@dataclass
class Response:
    status: int                     # 200, 304 or 404
    body: Optional[bytes] = None    # only for 200
    etag: Optional[str] = None
    last_modified: Optional[str] = None
    revision: Optional[str] = None  # x-amz-meta-revision, when the publisher sets it


class Session:
    """One reader of documents; not thread-safe (each thread uses its own)."""

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _DeadlineReader(io.RawIOBase):
    """The socket's read side, each read given only the time left before the deadline."""

    def __init__(self, sock: "_DeadlineSocket") -> None:
        self._sock = sock
        # The socket's own file holds a reference: closing the connection (as http.client
        # does when it hands a "Connection: close" socket to the response) keeps it readable.
        self._file = sock.raw.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.arm()
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


class _DeadlineSocket:
    """Wraps a connected socket: sends and reads fail once ``deadline`` has passed."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.deadline = time.monotonic() + 60.0

    def arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self.raw.settimeout(remaining)

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.raw.sendall(data)

    def settimeout(self, value: Optional[float]) -> None:
        self.raw.settimeout(value)

    def close(self) -> None:
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _TlsConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # the handshake is bounded by self.timeout, set to the time left
        self.sock = _DeadlineSocket(self.sock)


class HttpSession(Session):
    def __init__(self, scheme: str, netloc: str, path: str, query: str,
                 context: Optional[ssl.SSLContext]):
        self._scheme = scheme
        self._netloc = netloc
        self._path = path.rstrip("/")
        self._query = f"?{query}" if query else ""
        self._context = context
        self._conn: Optional[http.client.HTTPConnection] = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                self._conn = _TlsConnection(self._netloc, timeout=timeout, context=self._context)
            else:
                self._conn = _Connection(self._netloc, timeout=timeout)
        return self._conn

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        return self.request(f"{self._path}/{quote(name)}{self._query}", etag, last_modified,
                            deadline, limit_for(name))

    def request(self, target: str, etag: Optional[str], last_modified: Optional[str],
                deadline: float, limit: int, missing: tuple[int, ...] = (403, 404)) -> Response:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                   "Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        elif last_modified:
            headers["If-Modified-Since"] = last_modified
        # A kept-alive connection the server has since closed fails on first use: retry once.
        for attempt in (0, 1):
            reused = self._conn is not None and self._conn.sock is not None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("timed out")
            conn = self._connection(remaining)
            try:
                conn.timeout = remaining  # bounds connect and the TLS handshake
                if isinstance(conn.sock, _DeadlineSocket):
                    conn.sock.deadline = deadline
                else:
                    conn.connect()
                    conn.sock.deadline = deadline  # type: ignore[union-attr]
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = _read(resp, limit) if resp.status == 200 else resp.read(65536)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 0:
                    continue
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise FetchError(str(exc) or type(exc).__name__) from None
            except FetchError:
                self.close()
                raise
            if resp.will_close or resp.status != 200 and not resp.isclosed():
                self.close()
            return _response(resp.status, resp.reason, body, resp.getheader("ETag"),
                             _strong_last_modified(resp.getheader("Last-Modified"), resp.getheader("Date")),
                             resp.getheader("x-amz-meta-revision"), missing)
        raise FetchError("connection closed")  # pragma: no cover (the loop returns or raises)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _read(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, refused beyond ``limit`` (announced or read), counted in ``BUFFERED``."""
    length = resp.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise FetchError(f"response of {length} bytes, larger than the {limit} allowed")
    chunks = []
    size = 0
    try:
        while True:
            chunk = resp.read(min(65536, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            BUFFERED.take(len(chunk))
            size += len(chunk)
            chunks.append(chunk)
            if size > limit:
                raise FetchError(f"response larger than the {limit} bytes allowed")
    finally:
        BUFFERED.give(size)


def _strong_last_modified(last_modified: Optional[str], date: Optional[str]) -> Optional[str]:
    """``Last-Modified`` when it can validate a later ``If-Modified-Since``, else None.

    It has one-second resolution: a document replaced within the second it was served would
    keep answering 304 forever (plain file servers compare whole seconds). As RFC 9110
    (8.8.2.2) says, it is only a strong validator when at least a second older than ``Date``.
    """
    if not last_modified:
        return None
    try:
        modified = email.utils.parsedate_to_datetime(last_modified).timestamp()
        served = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return last_modified if served - modified >= 1.0 else None


def _response(status: int, reason: str, body: bytes, etag: Optional[str],
              last_modified: Optional[str], revision: Optional[str],
              missing: tuple[int, ...]) -> Response:
    if status == 200:
        return Response(200, body, etag, last_modified, revision)
    if status == 304:
        return Response(304, None, etag, last_modified, revision)
    if status in missing:
        # S3 answers 403 for a missing key when listing is not allowed: both mean "no document".
        return Response(404)
    raise FetchError(f"HTTP {status} {reason}".strip())


class FileSession(Session):
    """``file://``: the ETag is derived from the file's identity, so an unchanged file costs a stat."""

    def __init__(self, root: str):
        self._root = root

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        path = os.path.join(self._root, *name.split("/"))
        limit = limit_for(name)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                current = f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'
                if etag == current:
                    return Response(304, None, current)
                body = fh.read(limit + 1)
                if len(body) > limit:
                    raise FetchError(f"{path} is larger than {limit} bytes")
                return Response(200, body, current)
        except (FileNotFoundError, NotADirectoryError):
            return Response(404)
        except OSError as exc:
            raise FetchError(f"{path}: {exc.strerror or exc}") from None


class S3Session(Session):
    """``s3://bucket/prefix``: each GET presigned by botocore (credentials, region and
    ``AWS_ENDPOINT_URL`` from the standard chain), sent over one kept-alive connection."""

    def __init__(self, signer: "S3Signer", context: Optional[ssl.SSLContext]) -> None:
        self._signer = signer
        self._context = context
        self._http: dict[str, HttpSession] = {}

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        parts = urlsplit(self._signer.presign(name))
        key = (parts.scheme, parts.netloc)
        http_session = self._http.get(f"{key}")
        if http_session is None:
            http_session = self._http[f"{key}"] = HttpSession(parts.scheme, parts.netloc, "", "", self._context)
        try:
            return http_session.request(f"{parts.path}?{parts.query}", etag, last_modified, deadline,
                                        limit_for(name), missing=(404,))
        except FetchError as exc:
            raise FetchError(f"s3://{self._signer.bucket}: {exc}") from None

    def close(self) -> None:
        for session in self._http.values():
            session.close()
        self._http.clear()


class S3Signer:
    """The botocore client of one ``s3://`` base, shared by the sessions of a FlagClient."""

    def __init__(self, base_url: str) -> None:
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError:
            raise ImportError(S3_EXTRA) from None
        parts = urlsplit(base_url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        session = botocore.session.get_session()
        region = session.get_config_variable("region") or "us-east-1"
        client = session.create_client("s3", region_name=region)
        if not client.meta.endpoint_url.endswith(".amazonaws.com"):  # a custom endpoint: path style
            client = session.create_client("s3", region_name=region,
                                           config=Config(s3={"addressing_style": "path"}))
        self._client = client
        self._lock = threading.Lock()

    def presign(self, name: str) -> str:
        key = f"{self.prefix}/{name}" if self.prefix else name
        with self._lock:  # botocore clients are thread-safe; the credential refresh is cheap to serialise
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=900)


def open_session(base_url: str, context: Optional[ssl.SSLContext] = None,
                 signer: Optional[S3Signer] = None) -> Session:
    """A new session reading documents under ``base_url`` (``context`` for https)."""
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https"):
        if parts.scheme == "https" and context is None:
            context = ssl.create_default_context()
        return HttpSession(parts.scheme, parts.netloc, parts.path, parts.query, context)
    if parts.scheme == "file":
        return FileSession(url2pathname(parts.path))
    if parts.scheme == "s3":
        return S3Session(signer or S3Signer(base_url), context)
    raise ValueError(f"unsupported base URL {base_url!r}: use http://, https://, s3:// or file://")


def check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https", "s3") and parts.netloc:
        return
    if parts.scheme == "file" and parts.path and parts.netloc in ("", "localhost"):
        return
    raise ValueError(f"unsupported base URL {base_url!r}: use http(s)://host/prefix, "
                     "s3://bucket/prefix or file:///dir")
