"""Publish one compiled environment to an object store: checked, ordered, delta, race-safe, reversible.

``publish_environment`` follows docs/protocol.md ("Publish order"):

1. check the small documents of the compiled output against their schemas (:mod:`.release`);
2. take the environment's lock and keep renewing it (:mod:`.lock`); read the remote head and
   manifest; refuse an older, unrelated or unknown revision unless rollback is allowed;
3. a kill (a flag now off for every tenant that the remote head does not name in ``off``):
   write an interim head naming it, before any bundle is uploaded (:mod:`.head`);
4. check every bundle (digest and schema), list what the store holds and upload every bundle
   whose bytes differ, then rules, catalog and snapshot (:mod:`.delta`);
5. write the manifest conditionally (If-Match its ETag, or If-None-Match ``*``);
6. write the final head (new revision and snapshot) last; delete departed tenants' bundles;
   release the lock.

A publish that changed nothing writes nothing, unless the head does not match the manifest
(a run cut off after its manifest), which it repairs. Every failure says what the store holds.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .bucket import bucket_policy, publish_directory
from .delta import Delta, plan_delta
from .errors import (ConditionalWritesUnsupported, FlagopsError, LockLost, PreconditionFailed, PublishError, PublishIncomplete,
                     PublishInProgress, RaceLostError, RollbackRefused, StorageError)
from .head import HEAD, Head, parse_head, utc_now
from .layout import BUNDLES_DIR, MANIFEST
from .lock import DEFAULT_LOCK_TTL, LOCK, PublishLock
from .release import LocalRelease, load_release
from .revision_guard import check_revision
from .storage import JSON, ObjectStore, Retry, join_key, retrying
from .transfers import Progress, Transfers

__all__ = ["DEFAULT_CACHE_CONTROL", "DEFAULT_WORKERS", "HEAD_CACHE_CONTROL", "LOCK", "LocalRelease",
           "PublishError", "PublishInProgress", "PublishIncomplete", "LockLost", "PublishOptions", "PublishResult",
           "RaceLostError", "RollbackRefused", "bucket_policy", "check_revision", "compile_to", "load_release",
           "publish_directory", "publish_environment", "rollback"]

DEFAULT_CACHE_CONTROL = "max-age=60"
#: The head is polled for changes: caches must revalidate it every time, or a kill waits for them.
HEAD_CACHE_CONTROL = "no-cache"
DEFAULT_WORKERS = 8


@dataclass
class PublishOptions:
    allow_rollback: bool = False
    dry_run: bool = False
    conditional_writes: bool = True
    cache_control: Optional[str] = DEFAULT_CACHE_CONTROL
    workers: int = DEFAULT_WORKERS
    retry: Retry = field(default_factory=Retry)
    lock_ttl: float = DEFAULT_LOCK_TTL
    progress: Optional[Progress] = None
    warn: Optional[Callable[[str], None]] = None


@dataclass
class PublishResult:
    environment: str
    revision: Optional[str]
    previous_revision: Optional[str]
    uploaded: list[str] = field(default_factory=list)   # tenant slugs
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)    # tenant slugs
    bytes: int = 0
    seconds: float = 0.0
    target: str = ""
    dry_run: bool = False
    conditional: bool = True
    warnings: list[str] = field(default_factory=list)
    head: Optional[Head] = None       # the head in the store when the run ended
    killed: tuple[str, ...] = ()      # flags named by an interim head before the bundles

    def summary(self) -> dict[str, Any]:
        """The JSON summary of the contract: the three counts are of tenant bundles."""
        return {"environment": self.environment, "revision": self.revision,
                "previousRevision": self.previous_revision, "uploaded": len(self.uploaded),
                "unchanged": self.unchanged, "deleted": len(self.deleted), "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}


@contextlib.contextmanager
def _terminate_interrupts() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) interrupts like Ctrl-C, so the run can say what the store holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------------
# Publishing


def publish_environment(out: Path, environment: str, store: ObjectStore, prefix: str, *, root: Path,
                        options: Optional[PublishOptions] = None, target: Optional[str] = None) -> PublishResult:
    """Publish ``out/<environment>/`` (and ``out/catalog.json``) to ``store`` under ``prefix``."""
    options = options or PublishOptions()
    target = target or (f"{store.url}/{prefix}" if prefix else store.url)
    started = time.monotonic()
    schema_dir = Path(root) / "schema"
    release = load_release(out, environment, schema_dir=schema_dir if schema_dir.is_dir() else None)
    result = PublishResult(environment, release.revision, None, target=target, dry_run=options.dry_run,
                           conditional=options.conditional_writes)

    def warn(message: str) -> None:
        result.warnings.append(message)
        if options.warn:
            options.warn(message)

    run = _Run(release, store, prefix, root, options, result, warn)
    if options.dry_run:
        run.dry_run()
    else:
        run.lock = PublishLock(store, join_key(run.env_prefix, LOCK), target=target, ttl=options.lock_ttl,
                               conditional=options.conditional_writes, retry=options.retry, warn=warn)
        with _terminate_interrupts():
            run.lock.acquire()
            try:
                run.publish()
            except BaseException as exc:
                with contextlib.suppress(StorageError):
                    run.lock.abandon()  # unreachable store: the lock goes stale, a later run takes it over
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise PublishIncomplete(f"interrupted: {run.state()}", hint=run.RERUN) from exc
                raise
            run.lock.release()
    result.seconds = time.monotonic() - started
    return result


class _Run:
    """One publish of one environment, and what it has done so far (for a true error message)."""

    RERUN = "run the same publish again: it uploads every bundle whose bytes differ and completes the work"

    def __init__(self, release: LocalRelease, store: ObjectStore, prefix: str, root: Path,
                 options: PublishOptions, result: PublishResult, warn: Callable[[str], None]):
        self.release, self.store, self.prefix, self.root = release, store, prefix, root
        self.options, self.result, self.warn = options, result, warn
        self.env_prefix = join_key(prefix, release.environment)
        self.lock: Optional[PublishLock] = None
        self.head: Optional[Head] = None
        self.head_etag: Optional[str] = None
        self.interim: tuple[str, ...] = ()
        self.transfers: Optional[Transfers] = None
        self.delta = Delta()
        self.manifest_written = False

    def _key(self, name: str) -> str:
        return join_key(self.env_prefix, name)

    def _retry(self, fn: Callable[[], Any]) -> Any:
        return retrying(fn, self.options.retry)

    def _check(self) -> None:
        if self.lock is not None:
            self.lock.check()

    # ------------------------------------------------------------------ reading the store

    def _read_remote(self) -> tuple[Optional[bytes], Optional[str]]:
        current = self._retry(lambda: self.store.get(self._key(MANIFEST)))
        remote_bytes, remote_etag = current if current else (None, None)
        remote = _json_or_empty(remote_bytes) if remote_bytes else {}
        if remote_bytes is not None and not remote:
            self.warn(f"the published manifest {self._key(MANIFEST)} is not valid JSON; it is replaced")
        self.result.previous_revision = remote.get("revision") if remote_bytes is not None else None
        self._published = remote.get("tenants") if isinstance(remote.get("tenants"), dict) else None
        got = self._retry(lambda: self.store.get(self._key(HEAD)))
        if got is not None:
            self.head, self.head_etag = parse_head(got[0], self.release.environment), got[1]
            if self.head is None:
                self.warn(f"the published head {self._key(HEAD)} is not a valid head; it is replaced")
                self._bad_sequence = _loose_sequence(got[0])
        return remote_bytes, remote_etag

    def _base_head(self) -> Head:
        """The head this run's heads follow (the remote one, or a start for a store without one)."""
        if self.head is not None:
            return self.head
        return Head(self.release.environment, self.result.previous_revision, getattr(self, "_bad_sequence", 0),
                    (), None, utc_now())

    def _final(self) -> Head:
        assert self.release.off is not None
        return self._base_head().next(revision=self.release.revision, off=self.release.off,
                                      snapshot=self.release.snapshot_digest)

    def dry_run(self) -> None:
        self._read_remote()
        self.release.verify_bundles()
        self._plan()
        rel = self.release
        self.result.deleted = self.delta.gone
        self.result.bytes = (sum(len(rel.bundle_bytes(s)) for s in self.delta.uploads) + len(rel.manifest_bytes)
                             + sum(len(data) for _, data in self.delta.files))

    def _plan(self) -> None:
        listing = self._retry(lambda: list(self.store.list(self.env_prefix + "/")))
        self.delta = plan_delta(self.release, listing, self.env_prefix, self._published)
        self.result.uploaded, self.result.unchanged = self.delta.uploads, self.delta.unchanged
        if self.delta.drifted:
            self.warn(f"{self.delta.drifted} bundle(s) in the store differ from the published manifest "
                      "(an interrupted or overlapping publish); they are uploaded again")

    # ------------------------------------------------------------------ the run

    def publish(self) -> None:
        rel, result, options = self.release, self.result, self.options
        remote_bytes, remote_etag = self._read_remote()
        if not options.allow_rollback:
            check_revision(self.root, rel.revision, result.previous_revision, environment=rel.environment,
                           target=result.target)
        if not options.conditional_writes:
            self.warn("conditional writes are off: CI's concurrency group is the only guard against two publishes "
                      "overwriting each other")
        if rel.off is not None:
            self._interim_head(remote_bytes)  # from the checked snapshot: before reading every bundle
        try:
            rel.verify_bundles()
        except FlagopsError as exc:
            if self.interim:
                self._withdraw_interim()
                exc.message += (" (the kill head written first was withdrawn: the head names the published "
                                "flags again, with a higher sequence)" if not self.interim else
                                f" ({self.state()}: withdrawing it failed)")
            raise
        if not self.interim:
            self._interim_head(remote_bytes)
        self._plan()
        final = self._final()
        if self.delta.empty and remote_bytes == rel.manifest_bytes:
            if not final.same_content(self.head):
                self._write_head(final, "repair")  # a run cut off after its manifest left the head behind
            result.head = self.head
            return
        self._upload()
        self._check()
        if remote_bytes != rel.manifest_bytes:
            self._write_manifest(remote_etag)
            result.bytes += len(rel.manifest_bytes)
        self.manifest_written = True
        self._check()
        try:
            self._write_head(final, "final")
        except StorageError as exc:
            raise PublishIncomplete(f"revision {rel.revision} is published (manifest and bundles), but writing "
                                    f"the head failed: {exc}; head readers still see sequence "
                                    f"{self._base_head().sequence}", hint=self.RERUN) from exc
        result.head = self.head
        self._delete_gone()

    def _interim_head(self, remote_bytes: Optional[bytes]) -> None:
        if remote_bytes is None or self.release.off is None:
            return  # nothing published yet: no reader to tell
        base = self._base_head()
        kills = tuple(sorted(set(self.release.off) - set(base.off)))
        if not kills:
            return
        self._check()
        self._write_head(base.next(off=tuple(sorted({*base.off, *kills}))), "interim")
        self.interim = self.result.killed = kills

    def _withdraw_interim(self) -> None:
        if not self.interim:
            return
        base = self._base_head()
        with contextlib.suppress(StorageError):
            self._write_head(base.next(off=tuple(k for k in base.off if k not in self.interim)), "withdraw")
            self.interim = ()

    def _write_head(self, head: Head, why: str) -> None:
        data = head.to_bytes()
        key = self._key(HEAD)
        kw: dict[str, Any] = {"content_type": JSON, "cache_control": HEAD_CACHE_CONTROL}
        if self.options.conditional_writes:
            kw.update(if_match=self.head_etag) if self.head_etag else kw.update(if_none_match=True)
        try:
            self.head_etag = self._retry(lambda: self.store.put(key, data, **kw))
        except PreconditionFailed as exc:
            raise RaceLostError(f"another writer changed {key} while this run held the lock; the {why} head "
                                "was not written", hint=self.RERUN) from exc
        self.head = head
        self.result.bytes += len(data)

    def state(self) -> str:
        """What the store holds now, truthfully, for an error message."""
        rel, prev = self.release, self.result.previous_revision
        parts = []
        if self.interim:
            parts.append(f"the head names {', '.join(self.interim)} off for every tenant (the kill is in effect)")
        if self.manifest_written:
            parts.append(f"revision {rel.revision} is published, the head may still name the previous one")
        elif self.transfers is not None and self.transfers.started:
            t = self.transfers
            parts.append(f"{t.done} of {t.total} changed object(s) were uploaded and up to {t.started - t.done} more "
                         f"may have landed: up to {t.started} bundle(s) may already hold revision {rel.revision}, "
                         f"while the manifest and the head still name revision {prev}")
        elif not self.interim:
            parts.append(f"nothing in the store was changed; readers still get revision {prev}")
        return "; ".join(parts)

    def _upload(self) -> None:
        rel, headers = self.release, {"content_type": JSON, "cache_control": self.options.cache_control}

        def put(key: str, data: Optional[bytes], slug: Optional[str] = None) -> Callable[[], int]:
            def do() -> int:
                body = data if data is not None else rel.bundle_bytes(slug or "")
                self.store.put(key, body, **headers)
                return len(body)
            return do

        bundles = join_key(self.env_prefix, BUNDLES_DIR)
        jobs = [(slug, put(join_key(bundles, f"{slug}.json"), None, slug)) for slug in self.delta.uploads]
        jobs += [(key, put(key, data)) for key, data in self.delta.files]
        self.transfers = Transfers(self.options, f"{rel.environment} upload", len(jobs), before=self._check)
        try:
            self.transfers.run(jobs)
        except LockLost as exc:
            exc.message = f"{exc.message}: {self.state()}"
            raise
        except StorageError as exc:
            raise PublishIncomplete(f"upload to {self.result.target} failed: {exc}; {self.state()}",
                                    hint=self.RERUN) from exc
        self.result.bytes += self.transfers.bytes

    def _write_manifest(self, remote_etag: Optional[str]) -> None:
        key, data, options = self._key(MANIFEST), self.release.manifest_bytes, self.options
        attempts = {"n": 0}
        kw: dict[str, Any] = {"content_type": JSON, "cache_control": options.cache_control}
        if options.conditional_writes:
            kw.update(if_match=remote_etag) if remote_etag else kw.update(if_none_match=True)

        def do() -> str:
            attempts["n"] += 1
            return self.store.put(key, data, **kw)

        try:
            retrying(do, options.retry)
        except PreconditionFailed as exc:
            now = self.store.get(key)
            if attempts["n"] > 1 and now is not None and now[0] == data:
                return  # an earlier attempt did land before its response was lost
            other = _json_or_empty(now[0]).get("revision") if now else None
            raise RaceLostError(
                f"another publish changed {key} while this run was publishing (it now names revision {other}); "
                f"this run's manifest was not written; {self.state()}",
                hint="the other publish won; run again to publish on top of it if this revision is still wanted") from exc
        except ConditionalWritesUnsupported as exc:
            raise PublishError(f"{self.result.target} rejects the conditional manifest write: {exc}",
                               hint="pass --no-conditional-writes and rely on CI's concurrency group") from exc
        except StorageError as exc:
            raise PublishIncomplete(f"writing the manifest failed: {exc}; {self.state()} (or, if the write landed, "
                                    f"the manifest names revision {self.release.revision})", hint=self.RERUN) from exc

    def _delete_gone(self) -> None:
        bundles = join_key(self.env_prefix, BUNDLES_DIR)

        def remove(slug: str) -> Callable[[], int]:
            def do() -> int:
                self.store.delete(join_key(bundles, f"{slug}.json"))
                return 0
            return do

        deleter = Transfers(self.options, f"{self.release.environment} delete", len(self.delta.gone),
                             before=self._check)
        try:
            deleter.run([(slug, remove(slug)) for slug in self.delta.gone])
        except StorageError as exc:
            raise PublishError(f"revision {self.release.revision} is published, but deleting bundles of departed "
                               f"tenants failed: {exc}", hint="run the same publish again to delete them") from exc
        self.result.deleted = self.delta.gone


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _loose_sequence(data: bytes) -> int:
    """The sequence of a head that fails its schema, if it has one: a new head must still be higher."""
    seq = _json_or_empty(data).get("sequence")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else 0


# --------------------------------------------------------------------------------------------
# Compile-and-publish, rollback


def compile_to(root: Path, environment: str, out: Path, *, cwd: Optional[Path] = None) -> None:
    from .compile import compile_project

    compile_project(root, environments=[environment], out=out, cwd=cwd)


def rollback(root: Path, environment: str, rev: str, store: ObjectStore, prefix: str, *,
             options: Optional[PublishOptions] = None, target: Optional[str] = None) -> PublishResult:
    """Compile revision ``rev`` of the repository at ``root`` and publish it, rollback allowed."""
    from .git import require_repository, worktree

    options = PublishOptions(**{**(options or PublishOptions()).__dict__, "allow_rollback": True})
    with require_repository(root, "rollback compiles a revision from git") as repo, \
            worktree(repo, rev, label="rollback") as (checkout, tmp):
        out = tmp / "out"
        compile_to(checkout, environment, out)
        return publish_environment(out, environment, store, prefix, root=root, options=options, target=target)
