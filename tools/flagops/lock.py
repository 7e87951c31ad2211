"""The publish lock of one environment, ``<prefix>/<env>/.publish-lock.json``.

- Taken with a conditional create (If-None-Match ``*``); this also proves that the store
  honours conditional writes (a second create must fail).
- Renewed while the run lives: a thread rewrites it every ``ttl / 6`` seconds with If-Match
  on its own ETag. A renewal that finds another owner marks the lock lost.
- A run stops at once when its lock is lost, and also when it has not renewed successfully
  for half the TTL (the store was unreachable): :meth:`PublishLock.check` raises
  :class:`LockLost` before every upload and every write of the manifest or the head.
- A takeover is only ever of a dead run: a lock that was released, whose process is gone
  (same machine), or that has not been renewed for a whole TTL by the store's own clock
  (``age``, so clock skew between machines does not matter). Such a run has stopped itself
  half a TTL earlier.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import ConditionalWritesUnsupported, LockLost, PreconditionFailed, PublishError, PublishInProgress
from .storage import ObjectStore, Retry, StorageError, retrying

__all__ = ["DEFAULT_LOCK_TTL", "LOCK", "PublishLock"]

LOCK = ".publish-lock.json"
#: Seconds without a renewal after which a lock is a dead run's. A live run renews every TTL/6.
DEFAULT_LOCK_TTL = 120.0

#: Lock owners of the runs active in this process: a lock naming this pid but no active owner
#: was left by a run that ended here (e.g. the store went away while it failed).
_ACTIVE_OWNERS: set[str] = set()


def _node_id() -> str:
    """Where PIDs are comparable: the host, its boot, and the PID namespace (containers share hostnames)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class PublishLock:
    """One run's hold on an environment's lock; ``acquire``, ``check`` often, then ``release`` or ``abandon``."""

    def __init__(self, store: ObjectStore, key: str, *, target: str, ttl: float = DEFAULT_LOCK_TTL,
                 conditional: bool = True, retry: Retry = Retry(), warn: Optional[Callable[[str], None]] = None):
        self.store, self.key, self.target = store, key, target
        self.ttl, self.conditional, self.retry, self.warn = ttl, conditional, retry, warn
        self.owner = uuid.uuid4().hex
        self.etag: Optional[str] = None
        self.taken_over: Optional[dict[str, Any]] = None  # the dead run's lock, when this run took it over
        self._renewals = 0
        self._last_ok = time.monotonic()
        self._lost = threading.Event()
        self._unrenewed = False  # lost for want of a renewal, not to another run
        self._mutex = threading.Lock()  # one cause: the first to mark the lock lost names it
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ the body and staleness

    def _body(self, **extra: Any) -> bytes:
        now = time.time()
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "node": _node_id(),
                           "pid": os.getpid(), "started": now, "ttl": self.ttl, "renewals": self._renewals,
                           **extra}, sort_keys=True).encode()

    def _dead(self, info: dict[str, Any]) -> bool:
        if info.get("released"):
            return True
        if info.get("node") == _node_id():  # the owner's PID means something here
            if info.get("pid") == os.getpid():
                return info.get("owner") not in _ACTIVE_OWNERS
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return True  # the run that took it died on this machine
            except (PermissionError, ValueError, TypeError):
                pass
        age = self._retry(lambda: self.store.age(self.key))
        try:
            ttl = float(info.get("ttl", DEFAULT_LOCK_TTL))
        except (TypeError, ValueError):
            ttl = DEFAULT_LOCK_TTL
        return age is None or age > ttl

    # ------------------------------------------------------------------ taking it

    def acquire(self) -> None:
        _ACTIVE_OWNERS.add(self.owner)
        try:
            self._acquire()
        except BaseException:
            _ACTIVE_OWNERS.discard(self.owner)
            raise
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._renew_loop, name="flagops-lock-renewal", daemon=True)
        self._thread.start()

    def _acquire(self) -> None:
        body = self._body()
        if not self.conditional:
            previous = self._retry(lambda: self.store.get(self.key))
            if previous and not self._dead(_json_or_empty(previous[0])):
                self._say("another publish may be running (its lock is live); without conditional writes "
                          "nothing stops both")
            self.etag = self._retry(lambda: self.store.put(self.key, body))
            return
        try:
            self.etag = self._retry(lambda: self.store.put(self.key, body, if_none_match=True))
        except ConditionalWritesUnsupported as exc:
            raise PublishError(f"{self.target} rejects conditional writes: {exc}",
                               hint="pass --no-conditional-writes (then only CI's concurrency group prevents "
                                    "two publishes from overwriting each other)") from exc
        except PreconditionFailed:
            self._take_over(body)
        # A second create must now fail: a store that ignores If-None-Match would accept it.
        try:
            self._retry(lambda: self.store.put(self.key, body, if_none_match=True))
        except PreconditionFailed:
            return
        except ConditionalWritesUnsupported:
            pass
        self._retry(lambda: self.store.delete(self.key))
        raise PublishError(f"{self.target} ignores conditional writes (If-None-Match was not honoured), so "
                           "two publishes could roll each other back; nothing was changed",
                           hint="use a store that supports conditional writes, or pass --no-conditional-writes "
                                "and rely on CI's concurrency group")

    def _take_over(self, body: bytes) -> None:
        current = self._retry(lambda: self.store.get(self.key))
        if current is None:  # released meanwhile: try once more
            self.etag = self._retry(lambda: self.store.put(self.key, body, if_none_match=True))
            return
        info = _json_or_empty(current[0])
        if not self._dead(info):
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info.get("started", 0) or 0)))
            raise PublishInProgress(
                f"another publish to {self.target} is in progress (host {info.get('host')}, pid {info.get('pid')}, "
                f"lock taken {since}); this run changed nothing",
                hint="wait for it and run again; a live publish renews its lock, and the lock of a run killed "
                     f"on another machine is free {int(float(info.get('ttl', self.ttl) or self.ttl))}s after "
                     "its last renewal")
        try:
            self.etag = self._retry(lambda: self.store.put(self.key, body, if_match=current[1]))
        except PreconditionFailed as exc:
            raise PublishInProgress(f"another publish to {self.target} took over the stale lock first; "
                                    "this run changed nothing", hint="wait for it and run again") from exc
        self.taken_over = info
        self._say(f"took over the lock of an interrupted publish (host {info.get('host')}, pid {info.get('pid')}); "
                  "every bundle whose bytes in the store differ from this compile is uploaded again")

    # ------------------------------------------------------------------ keeping it

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 6):
            try:
                self._renew()
            except StorageError:
                pass  # retried next tick; check() stops the run if it lasts half the TTL
            if self._lost.is_set():
                return

    def _renew(self) -> None:
        sent = time.monotonic()
        self._renewals += 1
        body = self._body()
        if not self.conditional:
            current = self._retry(lambda: self.store.get(self.key))
            if current and _json_or_empty(current[0]).get("owner") != self.owner:
                self._mark_taken_over()
                return
            self.etag = self._retry(lambda: self.store.put(self.key, body))
            self._last_ok = sent
            return
        try:
            self.etag = self._retry(lambda: self.store.put(self.key, body, if_match=self.etag))
        except PreconditionFailed:
            current = self._retry(lambda: self.store.get(self.key))
            info = _json_or_empty(current[0]) if current else {}
            if info.get("owner") == self.owner and info.get("renewals") == self._renewals:
                self.etag = current[1] if current else None  # our write landed; its response was lost
            else:
                self._mark_taken_over()
                return
        self._last_ok = sent

    def _mark_taken_over(self) -> None:
        with self._mutex:
            self._lost.set()

    def check(self) -> None:
        """Raise :class:`LockLost` unless this run still holds the lock (and renewed it recently)."""
        if not self._lost.is_set() and time.monotonic() - self._last_ok > self.ttl / 2:
            with self._mutex:
                if not self._lost.is_set():
                    self._unrenewed = True
                    self._lost.set()
        if not self._lost.is_set():
            return
        if self._unrenewed:  # every later check gives the same cause
            raise LockLost(f"the publish lock on {self.target} could not be renewed for {self.ttl / 2:g}s "
                           "(the store is unreachable or slow); this run stopped uploading so that another run "
                           "can take over safely", hint="run the same publish again when the store answers")
        raise LockLost(f"another run took over the publish lock on {self.target}; this run stopped uploading",
                       hint="see which publish runs now; run again after it if this revision is still wanted")

    # ------------------------------------------------------------------ giving it up

    def _stop_renewing(self) -> None:
        _ACTIVE_OWNERS.discard(self.owner)
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def release(self) -> None:
        """Delete the lock (a complete run) if it is still ours."""
        self._stop_renewing()
        current = self._retry(lambda: self.store.get(self.key))
        if current and _json_or_empty(current[0]).get("owner") == self.owner:
            self._retry(lambda: self.store.delete(self.key))

    def abandon(self) -> None:
        """After a failure: give the lock up. Nothing needs remembering: the next run compares the store's
        bytes with its own, so whatever this run uploaded is checked again."""
        if self._lost.is_set():
            self._stop_renewing()
            return
        self.release()

    def _retry(self, fn: Callable[[], Any]) -> Any:
        return retrying(fn, self.retry)

    def _say(self, message: str) -> None:
        if self.warn:
            self.warn(message)
