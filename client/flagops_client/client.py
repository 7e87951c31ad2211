"""FlagClient: answer "is this flag on for this tenant?" from memory, refresh in the background.

How it stays fast and safe:

- Each tenant in memory is a ``_Tenant`` whose ``flags`` is a dict that is never mutated once
  published; a refresh swaps in a new dict (one atomic attribute store). A read is a dict
  lookup and an attribute read: no lock, no I/O, no allocation.
- The tenants table itself is only changed under ``_lock`` (insert, evict); readers use single
  dict operations, which are atomic.
- One daemon thread polls the environment's head (one conditional GET). Flags the head names
  in ``off`` read false at once; when its revision changes, the bundles in memory are
  revalidated with conditional GETs at ``revalidate_rate`` requests/s. A store without a head
  is revalidated bundle by bundle every interval, as before. A fetched document replaces the
  flags in use only after every check in :mod:`flagops_client.documents` passed.
- ``all_tenants=True`` (snapshot mode) loads ``snapshot.json`` once and answers for every
  tenant from memory; it is fetched again only when the head names another digest.
- Failures keep the last known good flags, log one warning per failure streak and back off
  with jitter. With ``cache_dir``, good documents are written atomically and read back at
  construction, so a process restarted during an outage starts with its last flags.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import ssl
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union
from urllib.parse import urlsplit, urlunsplit

from .documents import (
    ENVIRONMENT,
    DocumentError,
    Head,
    Snapshot,
    check_bundle,
    check_head,
    check_rules,
    digest,
    parse_bundle,
    parse_head,
    parse_rules,
    parse_snapshot,
    rules_document,
    valid_slug,
)
from .evaluation import evaluate, evaluate_all
from .pacing import Pacer
from .transport import FetchError, Response, S3Signer, Session, check_base_url, open_session

__all__ = ["FlagClient", "Resolution", "Status", "DEFAULT_MAX_TENANTS"]

DEFAULT_MAX_TENANTS = 10_000
#: Conditional GETs per second when a new revision makes the bundles in memory revalidate.
DEFAULT_REVALIDATE_RATE = 50.0

# Reasons, spelled as the OpenFeature specification names them.
STATIC = "STATIC"
STALE = "STALE"
DEFAULT = "DEFAULT"
ERROR = "ERROR"
TARGETING_MATCH = "TARGETING_MATCH"


@dataclass(frozen=True)
class Resolution:
    """A value with why it was chosen (``reason``; ``error_code`` when the default had to do)."""

    value: Any
    reason: str
    error_code: Optional[str] = None
    message: Optional[str] = None


@dataclass(frozen=True)
class Status:
    environment: str
    tenants: int                   # tenants in memory with flags
    missing: int                   # tenants in memory with no bundle (yet)
    last_success: Optional[float]  # epoch seconds: last refresh that reached the store
    last_error: Optional[str]
    last_error_at: Optional[float]
    failures: int                  # consecutive failed refreshes
    age: Optional[float]           # seconds since the oldest flags in memory were confirmed
    stale: bool                    # a failure streak, or data older than two refresh intervals
    revision: Optional[str]        # flags revision, when the store exposes it
    refreshing: bool               # the background refresh is running
    fetched: int = 0               # documents downloaded and accepted (200)
    not_modified: int = 0          # conditional requests answered 304 (no download, no parsing)
    mode: str = "tenant"           # "tenant" (bundles) or "snapshot" (all_tenants=True)
    sequence: Optional[int] = None  # sequence of the head applied; None without a head
    off: tuple[str, ...] = ()      # flags the head turns off for every tenant
    pending: int = 0               # bundles still to revalidate after a new revision
    requests: int = 0              # requests sent to the store

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Tenant:
    __slots__ = ("flags", "used", "etag", "last_modified", "confirmed", "missing")

    def __init__(self, used: int) -> None:
        self.flags: Optional[dict[str, bool]] = None  # never mutated once assigned
        self.used = used                              # LRU tick of the last read
        self.etag: Optional[str] = None
        self.last_modified: Optional[str] = None
        self.confirmed: Optional[float] = None        # epoch seconds the store last vouched for it
        self.missing = False                          # the store has no bundle for it


class _Rules:
    __slots__ = ("flags", "etag", "last_modified", "confirmed", "missing")

    def __init__(self) -> None:
        self.flags: Optional[dict[str, dict[str, Any]]] = None
        self.etag: Optional[str] = None
        self.last_modified: Optional[str] = None
        self.confirmed: Optional[float] = None
        self.missing = False


class _Sessions:
    """The sessions one thread uses during a refresh (bundles and, maybe elsewhere, rules)."""

    def __init__(self, client: "FlagClient") -> None:
        self._client = client
        self._open: dict[str, Session] = {}

    def get(self, base: str) -> Session:
        session = self._open.get(base)
        if session is None:
            client = self._client
            session = self._open[base] = _Counted(
                open_session(base, client._ssl_context(base), client._signers.get(base)), client)
        return session

    def close(self) -> None:
        for session in self._open.values():
            session.close()
        self._open.clear()


class _Counted(Session):
    """Counts the requests of a session (``status().requests``)."""

    def __init__(self, inner: Session, client: "FlagClient") -> None:
        self._inner, self._client = inner, client

    def get(self, name: str, etag: Optional[str], last_modified: Optional[str],
            deadline: float) -> Response:
        self._client._requests += 1
        return self._inner.get(name, etag, last_modified, deadline)

    def close(self) -> None:
        self._inner.close()


def _split_document_url(url: str) -> tuple[str, str]:
    """``https://h/p/x.json?q`` -> (``https://h/p?q``, ``x.json``)."""
    parts = urlsplit(url)
    head, _, name = parts.path.rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, head, parts.query, "")), name


class FlagClient:
    """Per-tenant feature flags for one environment, read from ``<base_url>/<environment>/``.

    - ``base_url``: ``http(s)://host/prefix``, ``file:///dir`` or ``s3://bucket/prefix`` (signed
      reads through botocore: ``pip install "flagops-client[s3]"``).
    - ``all_tenants``: snapshot mode, every tenant from ``snapshot.json`` (backend services).
    - ``cache_dir``: where good documents are kept across restarts (read at construction).
    - ``refresh_interval``: seconds between background refreshes; None for none (``refresh()``).
    - ``timeout``: wall-clock bound on one request, and on the first, synchronous load.
    - ``max_tenants``: tenants kept in memory, least recently read evicted first (tenant mode).
    - ``revalidate_rate``: at most this many bundle revalidations per second after a new
      revision (tenant mode), so a publish never brings a burst of requests.
    - ``logger``: default ``logging.getLogger("flagops_client")``.
    - ``rules_url``: where ``rules.json`` is readable when it is not under ``base_url``.
    - ``ssl_context``: for https (default: the system's trusted CAs).

    ``is_enabled``, ``flags``, ``resolve`` and ``refresh`` never raise into the caller: anything
    unexpected answers the caller's default. Construction raises ValueError for invalid
    arguments, and ImportError for ``s3://`` without the ``s3`` extra.
    """

    def __init__(self, base_url: str, environment: str, *, cache_dir: Union[str, os.PathLike, None] = None,
                 refresh_interval: Optional[float] = 30.0, timeout: float = 2.0,
                 max_tenants: int = DEFAULT_MAX_TENANTS, logger: Optional[logging.Logger] = None,
                 rules_url: Optional[str] = None, ssl_context: Optional[ssl.SSLContext] = None,
                 all_tenants: bool = False, revalidate_rate: float = DEFAULT_REVALIDATE_RATE) -> None:
        check_base_url(base_url)
        if not isinstance(environment, str) or ENVIRONMENT.fullmatch(environment) is None:
            raise ValueError(f"invalid environment {environment!r}")
        if refresh_interval is not None and refresh_interval <= 0:
            raise ValueError("refresh_interval must be positive (or None for no background refresh)")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_tenants < 1:
            raise ValueError("max_tenants must be at least 1")
        if not revalidate_rate > 0:
            raise ValueError("revalidate_rate must be positive (requests per second)")
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)  # for logs: no credentials, no signature
        self._where = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
        self.environment = environment
        self.all_tenants = bool(all_tenants)
        self.refresh_interval = refresh_interval
        self.timeout = float(timeout)
        self.max_tenants = int(max_tenants)
        self.revalidate_rate = float(revalidate_rate)
        self._log = logger or logging.getLogger("flagops_client")
        # rules.json lists allowlists and is usually private: a presigned URL or mirror may serve it.
        self._rules_base, self._rules_name = (
            _split_document_url(rules_url) if rules_url else (self.base_url, f"{environment}/rules.json"))
        if rules_url:
            check_base_url(rules_url)
        self._signers: dict[str, S3Signer] = {
            base: S3Signer(base) for base in {self.base_url, self._rules_base} if base.startswith("s3:")}
        self._cache = Path(cache_dir) / environment if cache_dir is not None else None
        self._stale_after = 2 * refresh_interval if refresh_interval else None

        self._tenants: dict[str, _Tenant] = {}
        self._tick = itertools.count(1).__next__  # C-level, atomic under the GIL
        self._lock = threading.Lock()              # guards changes to _tenants and _loading
        self._stop = threading.Event()
        self._cycle_lock = threading.Lock()        # one refresh at a time
        self._rules_lock = threading.Lock()
        self._head_lock = threading.Lock()         # one head applied at a time
        self._snapshot_lock = threading.Lock()     # one snapshot load at a time
        self._loading: dict[str, threading.Event] = {}
        self._rules = _Rules()
        self._rules_wanted = False
        self._rules_tried = False
        self._rules_due = False                    # a new revision: revalidate the rules too
        self._manifest_etag: Optional[str] = None
        self._manifest_readable = True
        self._revision: Optional[str] = None
        self._context = ssl_context  # https: default, the system's trusted CAs

        # The head: what it says is applied here; reads only look at _off (one immutable set).
        self._head: Optional[Head] = None
        self._head_etag: Optional[str] = None
        self._head_modified: Optional[str] = None  # stores without ETags validate by date
        self._headless = False                     # the store has no head (an older store)
        self._off: frozenset[str] = frozenset()
        self._pending: set[str] = set()            # bundles to revalidate for a new revision
        self._vouched: Optional[float] = None      # when the head last confirmed what is held
        self._pacer = Pacer(self.revalidate_rate, self._stop)
        self._unfinished = False                   # a paced revalidation continues next round
        # Snapshot mode.
        self._snapshot: Optional[Snapshot] = None
        self._snapshot_digest: Optional[str] = None
        self._snapshot_etag: Optional[str] = None
        self._snapshot_confirmed: Optional[float] = None
        self._snapshot_tried = False

        self._last_success: Optional[float] = None
        self._last_error: Optional[str] = None
        self._last_error_at: Optional[float] = None
        self._streak = 0              # consecutive failed refreshes (drives the backoff)
        self._failing = False         # inside a transport failure streak (one warning each)
        self._crashing = False        # inside a streak of unexpected errors (one warning each)
        self._rejected: set[str] = set()   # documents inside a rejection streak
        self._warned: set[str] = set()     # one-time warnings already given
        self._cache_failing = False
        self._fetched = 0
        self._not_modified = 0
        self._requests = 0

        self._closed = False
        if self._cache is not None:
            self._load_cache()
        self._thread: Optional[threading.Thread] = None
        if refresh_interval is not None:
            self._thread = threading.Thread(target=self._run, name=f"flagops-refresh-{environment}",
                                            daemon=True)
            self._thread.start()

    # ----------------------------------------------------------------- reads (hot path)

    def is_enabled(self, key: str, tenant: str, default: bool = False,
                   attributes: Optional[Mapping[str, Any]] = None) -> bool:
        """The flag's value for the tenant; ``default`` when it cannot be known.

        For a tenant in memory this is a few dict and set lookups: no lock, no I/O. A flag the
        head names in ``off`` is false. A tenant seen for the first time is loaded
        synchronously, bounded by ``timeout``. ``attributes`` (``{"id", "plan",
        "partnerSlug"}``) let a tenant with no bundle yet be evaluated from ``rules.json``.
        """
        try:
            snapshot = self._snapshot
            if snapshot is not None:
                bits = snapshot.tenants[tenant]
                if key in self._off:
                    return False
                byte, mask = snapshot.index[key]
                return bits[byte] & mask != 0
            entry = self._tenants[tenant]
            entry.used = self._tick()
            flags = entry.flags  # one immutable snapshot
            if flags is not None:
                if key in self._off:
                    return False
                return flags.get(key, default)
        except Exception:  # not in memory, or not even hashable: the slow path decides
            pass
        return self._resolve(key, tenant, default, attributes).value

    def resolve(self, key: str, tenant: str, default: bool = False,
                attributes: Optional[Mapping[str, Any]] = None) -> Resolution:
        """Like :meth:`is_enabled`, with the reason (STATIC, STALE, TARGETING_MATCH, DEFAULT, ERROR)."""
        return self._resolve(key, tenant, default, attributes)

    def flags(self, tenant: str, attributes: Optional[Mapping[str, Any]] = None) -> dict[str, bool]:
        """Every flag of the tenant, a copy (empty when unknown)."""
        try:
            if not valid_slug(tenant):
                return {}
            deadline = time.monotonic() + self.timeout
            flags: Optional[dict[str, bool]] = None
            if self.all_tenants:
                snapshot = self._snapshot_for(deadline)
                flags = snapshot.values(tenant) if snapshot is not None else None
            else:
                entry = self._entry(tenant, deadline)
                flags = dict(entry.flags) if entry is not None and entry.flags is not None else None
            if flags is None and attributes is not None:
                rules = self._rules_for(deadline)
                subject = self._subject(tenant, attributes)
                if rules is not None and subject is not None:
                    flags = evaluate_all(rules, subject, self.environment)
            if flags is None:
                return {}
            off = self._off
            return {key: value and key not in off for key, value in flags.items()}
        except Exception:  # never into the caller
            self._log.debug("flagops: flags(%r) failed", tenant, exc_info=True)
        return {}

    def _resolve(self, key: str, tenant: str, default: Any,
                 attributes: Optional[Mapping[str, Any]]) -> Resolution:
        try:
            if not valid_slug(tenant):
                return Resolution(default, ERROR, "INVALID_CONTEXT", f"invalid tenant slug {tenant!r}")
            deadline = time.monotonic() + self.timeout
            missing = False
            flags: Optional[Mapping[str, bool]] = None
            confirmed: Optional[float] = None
            if self.all_tenants:
                snapshot = self._snapshot_for(deadline)
                if snapshot is not None:
                    bits = snapshot.tenants.get(tenant)
                    missing = bits is None
                    if bits is not None and key in snapshot.index:
                        byte, mask = snapshot.index[key]
                        flags = {key: bits[byte] & mask != 0}
                    elif bits is not None:
                        flags = {}
                    confirmed = self._snapshot_confirmed
            else:
                entry = self._tenants.get(tenant)
                if entry is not None:
                    entry.used = self._tick()
                else:
                    entry = self._entry(tenant, deadline)
                if entry is not None:
                    flags, missing, confirmed = entry.flags, entry.missing, entry.confirmed
                    if flags is not None and tenant not in self._pending and self._vouched is not None:
                        confirmed = max(confirmed or 0.0, self._vouched)
            if flags is not None:
                if key in flags or key in self._off:
                    stale = self._stale_after is not None and (
                        confirmed is None or time.time() - confirmed > self._stale_after)
                    return Resolution(flags.get(key, False) and key not in self._off, STALE if stale else STATIC)
                return Resolution(default, ERROR, "FLAG_NOT_FOUND", f"no flag {key!r} for {tenant}")
            if attributes is not None:
                subject = self._subject(tenant, attributes)
                if subject is None:
                    return Resolution(default, ERROR, "INVALID_CONTEXT", "attributes need an id")
                rules = self._rules_for(deadline)
                if rules is not None:
                    flag = rules.get(key)
                    if flag is None:
                        return Resolution(default, ERROR, "FLAG_NOT_FOUND", f"no flag {key!r}")
                    value = evaluate(flag, subject, self.environment) and key not in self._off
                    return Resolution(value, TARGETING_MATCH)
            if missing:
                return Resolution(default, DEFAULT, None, f"no flags for {tenant} yet")
            return Resolution(default, ERROR, "GENERAL",
                              f"flags for {tenant} unavailable: {self._last_error or 'not loaded'}")
        except Exception as exc:  # never into the caller
            self._log.debug("flagops: resolving %r for %r failed", key, tenant, exc_info=True)
            return Resolution(default, ERROR, "GENERAL", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _subject(tenant: str, attributes: Mapping[str, Any]) -> Optional[dict[str, Any]]:
        if attributes.get("id") in (None, ""):
            return None
        return {"id": str(attributes["id"]), "slug": tenant, "plan": attributes.get("plan"),
                "partnerSlug": attributes.get("partnerSlug")}

    # ----------------------------------------------------------------- first load of a tenant

    def _entry(self, tenant: str, deadline: float) -> Optional[_Tenant]:
        entry = self._tenants.get(tenant)
        if entry is not None:
            entry.used = self._tick()
            return entry
        if self._closed:
            return None
        with self._lock:
            entry = self._tenants.get(tenant)
            if entry is not None:
                return entry
            event = self._loading.get(tenant)
            owner = event is None
            if owner:
                event = self._loading[tenant] = threading.Event()
        if not owner:  # someone else is loading it: wait for them, within our own deadline
            event.wait(max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
            return self._tenants.get(tenant)
        entry = _Tenant(self._tick())
        try:
            sessions = _Sessions(self)
            try:
                session = sessions.get(self.base_url)
                if self._head is None and not self._headless:
                    # Learn the head first: bundles fetched after it are at least that new.
                    self._poll_head(session, deadline)
                if not self._fetch_tenant(session, tenant, entry, deadline):
                    self._from_cache(tenant, entry)  # rejected: the last good copy on disk, if any
                self._last_success = time.time()  # the store answered
            finally:
                sessions.close()
        except FetchError as exc:
            self._failure(f"loading {tenant}: {exc}")
            self._from_cache(tenant, entry)
        except Exception as exc:  # contained: this tenant answers the default
            self._unexpected(f"loading {tenant}", exc)
        finally:
            with self._lock:
                self._insert(tenant, entry)
                del self._loading[tenant]
            event.set()  # type: ignore[union-attr]
        return entry

    def _insert(self, tenant: str, entry: _Tenant) -> None:
        """Add under ``_lock``, evicting the least recently read tenants beyond ``max_tenants``."""
        tenants = self._tenants
        tenants[tenant] = entry
        while len(tenants) > self.max_tenants:
            victim = min(tenants, key=lambda slug: tenants[slug].used)
            del tenants[victim]
            self._pending.discard(victim)

    def _rules_for(self, deadline: float) -> Optional[dict[str, dict[str, Any]]]:
        """The rules, loading them once synchronously; afterwards the background keeps them fresh."""
        rules = self._rules.flags
        if rules is not None or self._rules_tried or self._closed:
            return rules
        self._rules_wanted = True
        self._once(self._rules_lock, "_rules_tried", deadline, "loading rules",
                   lambda sessions: self._fetch_rules(sessions.get(self._rules_base), deadline))
        return self._rules.flags

    def _snapshot_for(self, deadline: float) -> Optional[Snapshot]:
        """The snapshot, loading it once synchronously; afterwards the background keeps it fresh."""
        snapshot = self._snapshot
        if snapshot is not None or self._snapshot_tried or self._closed:
            return snapshot

        def load(sessions: _Sessions) -> None:
            session = sessions.get(self.base_url)
            self._poll_head(session, deadline)
            self._sync_snapshot(session, deadline)
            self._last_success = time.time()
        self._once(self._snapshot_lock, "_snapshot_tried", deadline, "loading the snapshot", load)
        return self._snapshot

    def _once(self, lock: threading.Lock, tried: str, deadline: float, doing: str,
              load: Callable[[_Sessions], object]) -> None:
        """Run ``load`` for the first caller only; the others wait for it within their deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not lock.acquire(timeout=remaining):
            return
        try:
            if not getattr(self, tried):
                sessions = _Sessions(self)
                try:
                    load(sessions)
                except FetchError as exc:
                    self._failure(f"{doing}: {exc}")
                except Exception as exc:  # contained: the caller gets its default
                    self._unexpected(doing, exc)
                finally:
                    sessions.close()
                    setattr(self, tried, True)
        finally:
            lock.release()

    # ----------------------------------------------------------------- fetching

    def _get(self, session: Session, name: str, source: Union[_Tenant, _Rules],
             deadline: float) -> Optional[Response]:
        """GET ``name`` on ``source``'s validators; None for a 304 (``source`` is then confirmed)."""
        resp = session.get(name, source.etag, source.last_modified, deadline)
        if resp.status == 304:
            self._not_modified += 1
            source.confirmed = time.time()
            return None
        return resp

    def _fetch_tenant(self, session: Session, tenant: str, entry: _Tenant, deadline: float) -> bool:
        """Bring one tenant up to date; False when its document was rejected. Raises FetchError."""
        name = f"{self.environment}/tenants/{tenant}.json"
        resp = self._get(session, name, entry, deadline)
        if resp is None:
            return True
        now = time.time()
        if resp.status == 404:
            if entry.flags is None:
                entry.missing = True
                entry.confirmed = now
                return True
            return self._reject(name, "no longer found; keeping the previous flags")
        try:
            flags = parse_bundle(resp.body or b"", self.environment, tenant)
        except DocumentError as exc:
            return self._reject(name, f"{exc}; keeping the previous flags")
        self._accepted(name)
        self._fetched += 1
        entry.etag, entry.last_modified = resp.etag, resp.last_modified
        entry.flags = flags  # the swap readers see: one attribute store
        entry.missing = False
        entry.confirmed = now
        if resp.revision and self._head is None:
            self._revision = resp.revision
        self._persist(f"tenants/{tenant}.json", flags_doc(self.environment, tenant, flags), entry)
        return True

    def _fetch_rules(self, session: Session, deadline: float) -> bool:
        rules = self._rules
        resp = self._get(session, self._rules_name, rules, deadline)
        if resp is None:
            return True
        now = time.time()
        if resp.status == 404:
            rules.missing = rules.flags is None
            return True
        try:
            flags = parse_rules(resp.body or b"", self.environment)
        except DocumentError as exc:
            return self._reject("rules.json", f"{exc}; keeping the previous rules")
        self._accepted("rules.json")
        self._fetched += 1
        rules.etag, rules.last_modified = resp.etag, resp.last_modified
        rules.flags, rules.missing, rules.confirmed = flags, False, now
        self._persist("rules.json", rules_document(self.environment, flags), rules)
        return True

    def _fetch_manifest(self, session: Session, deadline: float) -> None:
        """The revision, from the manifest when the store lets us read it (often private)."""
        if not self._manifest_readable:
            return
        resp = session.get(f"{self.environment}/manifest.json", self._manifest_etag, None, deadline)
        if resp.status == 404:
            self._manifest_readable = False
        elif resp.status == 200:
            try:
                doc = json.loads(resp.body or b"")
                if isinstance(doc, dict) and doc.get("environment") == self.environment:
                    revision = doc.get("revision")
                    self._revision = revision if isinstance(revision, str) else None
                    self._manifest_etag = resp.etag
            except (ValueError, RecursionError):
                pass

    def _poll_head(self, session: Session, deadline: float) -> bool:
        """One conditional GET of the head; True when it (or its absence) is usable. Raises FetchError."""
        name = f"{self.environment}/head.json"
        resp = session.get(name, self._head_etag, self._head_modified, deadline)
        if resp.status == 304:
            self._not_modified += 1
            self._confirm_head()
            return True
        if resp.status == 404:
            if not self._headless:
                self._headless = True
                self._warn_once("headless", "flagops: %s has no %s (an older store): revalidating every "
                                "document each interval", self._where, name)
            return True
        try:
            head = parse_head(resp.body or b"", self.environment)
        except DocumentError as exc:
            return self._reject(name, f"{exc}; keeping the head in use")
        self._accepted(name)
        self._fetched += 1
        self._head_etag, self._head_modified = resp.etag, resp.last_modified
        self._apply_head(head)
        return True

    def _apply_head(self, head: Head) -> None:
        with self._head_lock:
            current = self._head
            if current is not None and head.sequence < current.sequence:
                self._warn_once(f"older-head-{head.sequence}", "flagops: ignoring %s/head.json sequence %d, "
                                "older than the applied %d (a stale cache?)", self.environment,
                                head.sequence, current.sequence)
                return
            self._off = head.off  # the kill switch: every read sees it from here on
            # New content: another revision or snapshot (an interim kill head keeps both). With
            # neither (no git, no snapshot) every new sequence may be new content.
            new_revision = (current is None or self._headless
                            or (head.revision, head.snapshot) != (current.revision, current.snapshot)
                            or (head.revision is None and head.snapshot is None
                                and head.sequence != current.sequence))
            self._headless = False
            self._head, self._revision = head, head.revision
            if new_revision and not self.all_tenants:
                with self._lock:
                    self._pending.update(self._tenants)
                self._rules_due = self._rules_wanted
            self._confirm_head()
            self._persist_head(head)

    def _confirm_head(self) -> None:
        now = time.time()
        self._vouched = now  # for every tenant not pending (see _resolve)
        if self.all_tenants and self._snapshot is not None and (
                self._head is None or self._head.snapshot == self._snapshot_digest):
            self._snapshot_confirmed = now

    def _sync_snapshot(self, session: Session, deadline: float) -> bool:
        """Fetch the snapshot when the head names another one (or, with no head, conditionally)."""
        head = self._head
        if head is not None and not self._headless:
            if head.snapshot is None:
                self._warn_once("no-snapshot", "flagops: %s/head.json names no snapshot: publish one "
                                "for all_tenants=True", self.environment)
                return self._snapshot is not None
            if head.snapshot == self._snapshot_digest:
                return True
        name = f"{self.environment}/snapshot.json"
        resp = session.get(name, self._snapshot_etag if self._snapshot is not None else None, None, deadline)
        now = time.time()
        if resp.status == 304:
            self._not_modified += 1
            if head is None or self._headless:
                self._snapshot_confirmed = now
                return True
            return self._reject(name, f"the store's snapshot is not the one {self.environment}/head.json names "
                                "(a publish in progress?); keeping the snapshot in use")
        if resp.status == 404:
            return self._reject(name, "not found; keeping the snapshot in use")
        data = resp.body or b""
        got = digest(data)
        if head is not None and not self._headless and got != head.snapshot:
            return self._reject(name, f"digest {got} is not the {head.snapshot} the head names "
                                "(a publish in progress?); keeping the snapshot in use")
        try:
            snapshot = parse_snapshot(data, self.environment)
        except DocumentError as exc:
            return self._reject(name, f"{exc}; keeping the snapshot in use")
        self._accepted(name)
        self._fetched += 1
        self._snapshot_digest, self._snapshot_etag, self._snapshot_confirmed = got, resp.etag, now
        self._snapshot = snapshot  # the swap readers see
        if head is None or self._headless:
            self._revision = snapshot.revision
        self._persist_snapshot(data)
        return True

    # ----------------------------------------------------------------- background refresh

    def refresh(self) -> bool:
        """Bring everything in memory up to date now (blocking); True when the store answered
        for all of it. Paced revalidations after a new revision all complete before it returns."""
        if self._closed:
            return False
        sessions = _Sessions(self)
        try:
            return self._cycle(sessions, budget=None)
        except Exception as exc:  # never into the caller
            self._unexpected("refreshing", exc)
            return False
        finally:
            sessions.close()

    def _cycle(self, sessions: _Sessions, budget: Optional[float] = None) -> bool:
        """One refresh. ``budget``: seconds of paced bundle revalidations at most (None: all)."""
        with self._cycle_lock:
            all_good = True
            until = time.monotonic() + budget if budget is not None else None
            try:
                session = sessions.get(self.base_url)
                deadline = time.monotonic() + self.timeout
                head_ok = self._poll_head(session, deadline)
                all_good &= head_ok
                # Without a usable head (none, or a rejected one) bundles are revalidated as before.
                legacy = self._headless or not head_ok
                self._unfinished = False
                if self.all_tenants:
                    all_good &= self._sync_snapshot(session, time.monotonic() + max(self.timeout, 1.0))
                elif legacy:
                    with self._lock:
                        slugs = list(self._tenants)
                    all_good &= self._revalidate(session, slugs)
                    if slugs and self._headless:
                        self._fetch_manifest(session, time.monotonic() + self.timeout)
                else:
                    with self._lock:
                        pending = sorted(self._pending)
                    all_good &= self._revalidate(session, pending, self._pacer, until)
                if self._rules_wanted and (legacy or self._rules_due or self._rules.flags is None):
                    self._rules_due = False
                    all_good &= self._fetch_rules(sessions.get(self._rules_base),
                                                  time.monotonic() + self.timeout)
                self._confirm_head()
            except FetchError as exc:
                # The store is unreachable: stop this round instead of timing out per tenant.
                self._streak += 1
                self._failure(str(exc))
                return False
            self._streak = 0
            self._last_success = time.time()
            if self._failing or self._crashing:
                self._failing = self._crashing = False
                self._log.info("flagops: reading flags from %s works again", self._where)
            return all_good

    def _revalidate(self, session: Session, slugs: list[str], pacer: Optional[Pacer] = None,
                    until: Optional[float] = None) -> bool:
        """Conditional GETs of these bundles (paced until ``until``), each failure contained to
        its tenant. Raises FetchError."""
        all_good = True
        for slug in slugs:
            if self._stop.is_set():
                return False
            if pacer is not None and not pacer.wait(until):
                self._unfinished = True  # the rest in the next round, after the head was polled again
                break
            entry = self._tenants.get(slug)
            good = True
            if entry is not None:  # else evicted meanwhile
                try:
                    good = self._fetch_tenant(session, slug, entry, time.monotonic() + self.timeout)
                except FetchError:
                    raise
                except Exception as exc:  # one tenant's document never stops the others
                    good = self._reject(f"{self.environment}/tenants/{slug}.json",
                                        f"{type(exc).__name__}: {exc}; keeping the previous flags")
            if good:
                self._pending.discard(slug)  # a rejected bundle is asked again next round
            all_good &= good
        return all_good

    def _next_delay(self) -> float:
        interval = self.refresh_interval or 30.0
        if self._streak == 0:
            # Jitter spreads many instances; only ever earlier, so a change shows within one interval.
            return interval * random.uniform(0.8, 1.0)
        base = min(1.0, interval)
        return min(4 * interval, base * 2 ** (self._streak - 1)) * random.uniform(0.5, 1.0)

    def _run(self) -> None:
        sessions = _Sessions(self)
        # Flags restored from cache_dir may be old: check them at once, then every interval.
        delay = 0.0 if self._tenants or self._snapshot is not None else self._next_delay()
        # Paced revalidations take at most about one interval per round, so the head (and a
        # kill it names) is polled again every interval, even during a long revalidation.
        budget = self.refresh_interval or 30.0
        try:
            while not self._stop.wait(delay):
                try:
                    self._cycle(sessions, budget)
                except Exception as exc:  # the refresh thread must never die
                    self._streak += 1
                    self._unexpected("refreshing", exc)
                delay = 0.0 if self._unfinished and self._streak == 0 else self._next_delay()
        finally:
            sessions.close()

    # ----------------------------------------------------------------- failures and logging

    def _failure(self, message: str) -> None:
        self._last_error, self._last_error_at = message, time.time()
        if not self._failing:
            self._failing = True
            self._log.warning("flagops: cannot read flags from %s (%s); serving the last known flags "
                              "and retrying with backoff", self._where, message)

    def _unexpected(self, doing: str, exc: BaseException) -> None:
        """A bug or a hostile input: recorded, one warning per streak, never a traceback per cycle."""
        message = f"{doing}: {type(exc).__name__}: {exc}"
        self._last_error, self._last_error_at = message, time.time()
        if not self._crashing:
            self._crashing = True
            self._log.warning("flagops: unexpected error %s; serving the last known flags", message)
        self._log.debug("flagops: %s", doing, exc_info=exc)

    def _warn_once(self, tag: str, message: str, *args: Any) -> None:
        if tag not in self._warned:
            self._warned.add(tag)
            self._log.warning(message, *args)

    def _reject(self, name: str, message: str) -> bool:
        self._last_error, self._last_error_at = f"{name}: {message}", time.time()
        if name not in self._rejected:
            self._rejected.add(name)
            self._log.warning("flagops: rejected %s from %s: %s", name, self._where, message)
        return False

    def _accepted(self, name: str) -> None:
        if name in self._rejected:
            self._rejected.discard(name)
            self._log.info("flagops: %s is valid again", name)

    # ----------------------------------------------------------------- cache_dir

    def _persist(self, name: str, document: dict[str, Any], source: Union[_Tenant, _Rules, None],
                 etag: Optional[str] = None) -> None:
        if self._cache is None:
            return
        record = {"cachedAt": source.confirmed if source else time.time(),
                  "etag": source.etag if source else etag,
                  "lastModified": source.last_modified if source else None, "document": document}
        self._write(name, json.dumps(record, separators=(",", ":")).encode("utf-8"))

    def _persist_head(self, head: Head) -> None:
        self._persist("head.json", {"sequence": head.sequence, "revision": head.revision,
                                    "off": sorted(head.off), "snapshot": head.snapshot,
                                    "publishedAt": head.published_at, "schemaVersion": 1,
                                    "environment": self.environment}, None, self._head_etag)

    def _persist_snapshot(self, data: bytes) -> None:
        if self._cache is not None:
            self._write("snapshot.json", data)  # verbatim: its digest is what the head names
            self._persist("snapshot.meta.json", {"digest": self._snapshot_digest}, None, self._snapshot_etag)

    def _write(self, name: str, data: bytes) -> None:
        assert self._cache is not None
        path = self._cache / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)  # readers (and a restart) see the old or the new file
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self._cache_failing = False
        except OSError as exc:
            if not self._cache_failing:
                self._cache_failing = True
                self._log.warning("flagops: cannot write the flags cache %s (%s)", path, exc)

    def _read_record(self, path: Path) -> Optional[dict[str, Any]]:
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        return record if isinstance(record, dict) else None

    def _restore(self, record: dict[str, Any], target: Union[_Tenant, _Rules]) -> None:
        cached_at = record.get("cachedAt")
        target.confirmed = float(cached_at) if isinstance(cached_at, (int, float)) else None
        etag, last_modified = record.get("etag"), record.get("lastModified")
        target.etag = etag if isinstance(etag, str) else None
        target.last_modified = last_modified if isinstance(last_modified, str) else None

    def _from_cache(self, tenant: str, entry: _Tenant) -> bool:
        if self._cache is None:
            return False
        record = self._read_record(self._cache / "tenants" / f"{tenant}.json")
        if record is None:
            return False
        try:
            flags = check_bundle(record.get("document"), self.environment, tenant)
        except DocumentError:
            return False
        self._restore(record, entry)
        entry.flags = flags
        return True

    def _load_cache(self) -> None:
        """Read ``cache_dir`` at construction: the head, the snapshot or the most recently
        cached tenants (up to the bound), and the rules."""
        assert self._cache is not None
        record = self._read_record(self._cache / "head.json")
        if record is not None:
            try:
                self._head = check_head(record.get("document"), self.environment)
                self._off, self._revision = self._head.off, self._head.revision
                etag = record.get("etag")
                self._head_etag = etag if isinstance(etag, str) else None
            except DocumentError:
                pass
        if self.all_tenants:
            self._load_cached_snapshot()
        else:
            self._load_cached_tenants()
        record = self._read_record(self._cache / "rules.json")
        if record is not None:
            try:
                self._rules.flags = check_rules(record.get("document"), self.environment)
            except DocumentError:
                return
            self._restore(record, self._rules)
            self._rules_wanted = True

    def _load_cached_snapshot(self) -> None:
        assert self._cache is not None
        meta = self._read_record(self._cache / "snapshot.meta.json")
        try:
            data = (self._cache / "snapshot.json").read_bytes()
            snapshot = parse_snapshot(data, self.environment)
        except (OSError, DocumentError):
            return
        cached_at = meta.get("cachedAt") if meta else None
        etag = meta.get("etag") if meta else None
        self._snapshot_digest, self._snapshot = digest(data), snapshot
        self._snapshot_etag = etag if isinstance(etag, str) else None
        self._snapshot_confirmed = float(cached_at) if isinstance(cached_at, (int, float)) else None
        self._log.info("flagops: the snapshot of %d tenant(s) loaded from %s", len(snapshot.tenants), self._cache)

    def _load_cached_tenants(self) -> None:
        assert self._cache is not None
        found: list[tuple[float, str, _Tenant]] = []
        try:
            names = os.listdir(self._cache / "tenants")
        except OSError:
            names = []
        for name in names:
            slug = name[:-5] if name.endswith(".json") else ""
            if not valid_slug(slug):
                continue
            entry = _Tenant(0)
            if self._from_cache(slug, entry):
                found.append((entry.confirmed or 0.0, slug, entry))
        found.sort(key=lambda item: item[0])
        for _, slug, entry in found[-self.max_tenants:]:
            entry.used = self._tick()
            self._tenants[slug] = entry
            self._pending.add(slug)  # cached copies may be older than the cached head
        if found:
            self._log.info("flagops: %d tenant(s) loaded from %s", min(len(found), self.max_tenants),
                           self._cache)

    # ----------------------------------------------------------------- status and lifecycle

    def status(self) -> Status:
        """Last success, last error, the age of the data, the revision and the head applied."""
        now = time.time()
        if self.all_tenants:
            snapshot = self._snapshot
            count = len(snapshot.tenants) if snapshot is not None else 0
            confirmed = [self._snapshot_confirmed] if snapshot is not None else []
            missing = 0
        else:
            with self._lock:
                entries = list(self._tenants.items())
                pending = set(self._pending)
            vouched = self._vouched
            confirmed = [max(e.confirmed or 0.0, vouched) if vouched and slug not in pending else e.confirmed
                         for slug, e in entries if e.flags is not None]
            count, missing = len(confirmed), sum(1 for _, e in entries if e.flags is None)
        age = None
        if confirmed:
            age = max(0.0, now - min(c if c is not None else 0.0 for c in confirmed))
        stale = self._streak > 0 or (self._stale_after is not None and age is not None
                                     and age > self._stale_after)
        thread = self._thread
        head = self._head
        return Status(
            environment=self.environment, tenants=count, missing=missing,
            last_success=self._last_success, last_error=self._last_error,
            last_error_at=self._last_error_at, failures=self._streak, age=age, stale=stale,
            revision=self._revision, refreshing=bool(thread and thread.is_alive() and not self._closed),
            fetched=self._fetched, not_modified=self._not_modified,
            mode="snapshot" if self.all_tenants else "tenant",
            sequence=head.sequence if head is not None and not self._headless else None,
            off=tuple(sorted(self._off)), pending=len(self._pending), requests=self._requests)

    def close(self) -> None:
        """Stop the background refresh; reads keep answering from memory, with no I/O."""
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + 1.0)

    def __enter__(self) -> "FlagClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", all_tenants=True" if self.all_tenants else ""
        return f"FlagClient({self._where!r}, environment={self.environment!r}{mode})"

    def _ssl_context(self, base: str) -> Optional[ssl.SSLContext]:
        if self._context is None and (base.startswith("https:") or base.startswith("s3:")):
            self._context = ssl.create_default_context()
        return self._context


def flags_doc(environment: str, tenant: str, flags: Mapping[str, bool]) -> dict[str, Any]:
    return {"schemaVersion": 1, "environment": environment, "tenant": tenant, "flags": dict(flags)}
