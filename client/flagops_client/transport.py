"""Conditional GETs of documents under a base URL: ``http(s)://`` or ``file://``.

HTTP goes through the standard library's ``http.client`` (the layer under ``urllib.request``)
so that one session keeps one connection alive across a whole refresh: refreshing a thousand
tenants then costs a thousand small requests on one socket, not a thousand TCP handshakes.
Every operation is bounded by the caller's deadline.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import ssl
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

__all__ = ["FetchError", "Response", "Session", "open_session", "MAX_DOCUMENT"]

#: A document larger than this is refused (a bundle of 200 flags is about 8 KiB).
MAX_DOCUMENT = 32 * 1024 * 1024
USER_AGENT = "flagops-client/0.1"


class FetchError(Exception):
    """The store could not be asked (refused, timed out, 5xx, unexpected status)."""


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
                self._conn = http.client.HTTPSConnection(self._netloc, timeout=timeout,
                                                         context=self._context)
            else:
                self._conn = http.client.HTTPConnection(self._netloc, timeout=timeout)
        return self._conn

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                   "Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        elif last_modified:
            headers["If-Modified-Since"] = last_modified
        target = f"{self._path}/{quote(name)}{self._query}"
        # A kept-alive connection the server has since closed fails on first use: retry once.
        for attempt in (0, 1):
            reused = self._conn is not None and self._conn.sock is not None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("timed out")
            conn = self._connection(remaining)
            try:
                conn.timeout = remaining
                if conn.sock is not None:
                    conn.sock.settimeout(remaining)
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = _read(conn, resp, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 0:
                    continue
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise FetchError(str(exc) or type(exc).__name__) from None
            if resp.will_close:
                self.close()
            return _response(resp.status, resp.reason, body, resp.getheader("ETag"),
                             _strong_last_modified(resp.getheader("Last-Modified"), resp.getheader("Date")),
                             resp.getheader("x-amz-meta-revision"))
        raise FetchError("connection closed")  # pragma: no cover (the loop returns or raises)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _read(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, deadline: float) -> bytes:
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading the response")
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        chunk = resp.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_DOCUMENT:
            raise http.client.HTTPException(f"response larger than {MAX_DOCUMENT} bytes")
        chunks.append(chunk)


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
              last_modified: Optional[str], revision: Optional[str]) -> Response:
    if status == 200:
        return Response(200, body, etag, last_modified, revision)
    if status == 304:
        return Response(304, None, etag, last_modified, revision)
    if status in (403, 404):
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
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                current = f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'
                if etag == current:
                    return Response(304, None, current)
                if st.st_size > MAX_DOCUMENT:
                    raise FetchError(f"{path} is larger than {MAX_DOCUMENT} bytes")
                return Response(200, fh.read(), current)
        except (FileNotFoundError, NotADirectoryError):
            return Response(404)
        except OSError as exc:
            raise FetchError(f"{path}: {exc.strerror or exc}") from None


def open_session(base_url: str, context: Optional[ssl.SSLContext] = None) -> Session:
    """A new session reading documents under ``base_url`` (``context`` for https)."""
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https"):
        if parts.scheme == "https" and context is None:
            context = ssl.create_default_context()
        return HttpSession(parts.scheme, parts.netloc, parts.path, parts.query, context)
    if parts.scheme == "file":
        return FileSession(url2pathname(parts.path))
    raise ValueError(f"unsupported base URL {base_url!r}: use http://, https:// or file://")


def check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return
    if parts.scheme == "file" and parts.path and parts.netloc in ("", "localhost"):
        return
    raise ValueError(f"unsupported base URL {base_url!r}: use http(s)://host/prefix or file:///dir")
