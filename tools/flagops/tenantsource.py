"""``--tenants SOURCE``: read an inventory from a local file or an http(s) URL, bounded.

A file must be a regular file (a FIFO would block, a device never ends) and is read only up
to the inventory size limit. A URL is fetched within one wall-clock deadline,
``FLAGOPS_TENANTS_TIMEOUT`` seconds over connecting, the headers and the body: a server
that trickles a byte at a time is cut off when the deadline passes, not when it pauses.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import SourceError
from .bounds import too_large
from .parsing import MAX_INVENTORY_BYTES

if TYPE_CHECKING:  # sockets only for an inventory fetched from a URL
    import socket

__all__ = ["DEFAULT_URL_TIMEOUT", "TENANTS_TIMEOUT_ENV", "TENANTS_TOKEN_ENV", "RefusedFile",
           "read_regular", "read_tenants_source"]

TENANTS_TOKEN_ENV = "FLAGOPS_TENANTS_TOKEN"
#: Seconds to wait for an inventory URL; FLAGOPS_TENANTS_TIMEOUT overrides it.
TENANTS_TIMEOUT_ENV = "FLAGOPS_TENANTS_TIMEOUT"
DEFAULT_URL_TIMEOUT = 30.0
_CHUNK = 1 << 20


class RefusedFile(OSError):
    """A path that is not a regular file (inside the repository), or one over its size limit."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: Path, limit: int, *, inside: Optional[Path] = None) -> bytes:
    """The bytes of ``path``, a regular file (after symlinks) of fewer than ``limit`` bytes.

    With ``inside``, the file (after symlinks) must also lie under that directory. Raises
    :class:`RefusedFile` (an OSError) with a rule name, or the OSError of the read.
    """
    real = Path(os.path.realpath(path))
    if inside is not None and not real.is_relative_to(os.path.realpath(inside)):
        raise RefusedFile("outside-repository",
                          f"the file is a symlink to {real}, outside the repository; "
                          "copy the file into the repository instead")
    mode = os.stat(real).st_mode
    if not stat.S_ISREG(mode):  # checked before opening: opening a device can have effects
        raise RefusedFile("not-a-regular-file", f"the file is {_kind(mode)}; only regular files are read")
    # O_NONBLOCK: a FIFO swapped in after the check must not block the open.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(real, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedFile("not-a-regular-file", f"the file is {_kind(st.st_mode)}; only regular files are read")
        if st.st_size >= limit:
            raise RefusedFile("file-too-large", too_large("", st.st_size, limit).message)
        chunks, total = [], 0
        while True:  # the size may grow while reading: the limit holds for what is read
            chunk = os.read(fd, min(_CHUNK, limit - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total >= limit:
                raise RefusedFile("file-too-large", f"the file grew past {limit} bytes while it was read")
    finally:
        os.close(fd)


class _Deadline:
    """Shuts down every socket of one fetch when the wall-clock deadline passes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.fired = threading.Event()
        self._sockets: list["socket.socket"] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def register(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired.is_set()
        if fired:
            self._shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired.set()
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: Any) -> None:
        import socket

        try:
            # The plain socket's shutdown, also for TLS: it wakes a blocked read in the
            # fetching thread without touching the TLS object that thread is using.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(base: type, deadline: _Deadline) -> Any:
    class Connection(base):  # type: ignore[misc,valid-type]
        def connect(self) -> None:
            self.timeout = deadline.remaining()
            super().connect()
            deadline.register(self.sock)

    return Connection


def _opener(deadline: _Deadline) -> Any:
    """An opener whose connections keep to ``deadline`` (urllib is imported only for URLs)."""
    import http.client
    import urllib.request

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_watched(http.client.HTTPConnection, deadline), req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_watched(http.client.HTTPSConnection, deadline), req,
                                context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(HTTPHandler(), HTTPSHandler())


def _url_timeout() -> float:
    value = os.environ.get(TENANTS_TIMEOUT_ENV)
    try:
        seconds = float(value) if value else DEFAULT_URL_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise SourceError(f"{TENANTS_TIMEOUT_ENV}={value!r} is not a positive number of seconds")
    return seconds


def _fetch(url: str, timeout: float, limit: int) -> bytes:
    import urllib.request

    deadline = _Deadline(timeout)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    token = os.environ.get(TENANTS_TOKEN_ENV)
    if token:
        # Unredirected: a redirect to another host never receives the token.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    opener = _opener(deadline)
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) >= limit:
                raise _TooLarge(limit)
            chunks, total = [], 0
            while True:
                chunk = response.read(min(_CHUNK, limit - total))
                if deadline.fired.is_set():
                    raise TimeoutError
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                total += len(chunk)
                if total >= limit:
                    raise _TooLarge(limit)
    except Exception:
        if deadline.fired.is_set():  # whatever the cut-off socket raised, the cause is the deadline
            raise TimeoutError from None
        raise
    finally:
        deadline.cancel()


class _TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


def read_tenants_source(source: str, *, timeout: Optional[float] = None, cwd: Optional[Path] = None,
                        limit: int = MAX_INVENTORY_BYTES) -> tuple[str, bytes]:
    """Fetch an inventory given with ``--tenants``: a local file or an http(s) URL.

    Returns (display path, bytes). URLs send ``Authorization: Bearer $FLAGOPS_TENANTS_TOKEN``
    when that variable is set. Raises :class:`SourceError` (exit 1) when it cannot be read
    within the deadline and the size limit.
    """
    if source.startswith(("http://", "https://")):
        import http.client
        import urllib.error

        timeout = timeout if timeout is not None else _url_timeout()
        hint = (f"check the URL and that the platform API is up; "
                f"{TENANTS_TIMEOUT_ENV} sets the timeout (now {timeout:g}s)")
        try:
            return source, _fetch(source, timeout, limit)
        except urllib.error.HTTPError as exc:
            hint = (f"set {TENANTS_TOKEN_ENV} to a valid token" if exc.code in (401, 403)
                    else "check the URL and that the platform API is up")
            raise SourceError(f"fetching tenants from {source} failed: HTTP {exc.code} {exc.reason}",
                              hint=hint) from exc
        except _TooLarge as exc:
            raise SourceError(f"fetching tenants from {source} failed: the response is {exc.limit} bytes "
                              "or more, over the inventory limit",
                              hint="export the inventory in the documented shape") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason: Any = getattr(exc, "reason", exc)
            if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
                reason = f"no complete answer within {timeout:g}s"
            raise SourceError(f"fetching tenants from {source} failed: {reason}", hint=hint) from exc
    path = Path(source)
    if cwd is not None and not path.is_absolute():
        path = cwd / path
    try:
        return source, read_regular(path, limit)
    except RefusedFile as exc:
        raise SourceError(f"cannot read tenants from {source}: {exc.message}",
                          hint="pass a regular YAML or JSON file, or an http(s) URL") from None
    except OSError as exc:
        raise SourceError(f"cannot read tenants from {source}: {exc.strerror or exc}",
                          hint="pass a YAML or JSON file, or an http(s) URL") from exc
