"""Publish compiled bundles to an object store: delta, ordered, race-safe, reversible.

One run for one environment (``publish_environment``):

1. verify the compiled directory (every bundle's bytes match the manifest digest);
2. take the environment's publish lock ``<prefix>/<env>/.publish-lock.json`` with a
   conditional create (this also proves the store honours conditional writes); a lock left by
   a dead run is taken over, and the bundles that run was uploading are uploaded again;
3. read the remote manifest and its ETag; refuse a revision that is an ancestor of (or unknown
   to, or diverged from) the published one unless rollback is allowed;
4. upload, in a bounded pool with retries, the bundles whose digest differs from the remote
   manifest or that are missing remotely, then rules.json and catalog.json;
5. write the manifest with If-Match (the ETag of step 3) or If-None-Match ``*``: the one
   moment readers switch revision; a lost race aborts;
6. delete the bundles of tenants that left, then release the lock.

A reader following any manifest therefore never meets a missing bundle, and every object is
always a whole bundle of the old or the new revision.
"""

from __future__ import annotations

import json
import mimetypes
import os
import socket
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .layout import BUNDLES_DIR, MANIFEST, RULES, digest
from .errors import FlagopsError, InvalidInputError, UsageError
from .storage import (JSON, ConditionalWritesUnsupported, ObjectStore, PreconditionFailed, Retry, StorageError,
                      join_key, retrying)

CATALOG = "catalog.json"
LOCK = ".publish-lock.json"
DASHBOARD_DIR = "dashboard"
DEFAULT_CACHE_CONTROL = "max-age=60"
DEFAULT_WORKERS = 8
DEFAULT_LOCK_TTL = 15 * 60

#: Crash-consistency tests set this to make the process exit abruptly after N uploads.
FAULT_ENV = "FLAGOPS_FAULT_EXIT_AFTER_UPLOADS"

Progress = Callable[[int, int, str], None]


class PublishError(FlagopsError):
    """A publish was refused or could not complete; the published state is still consistent."""


class RaceLostError(PublishError):
    """Another publish moved the manifest first."""


class PublishInProgress(PublishError):
    """Another publish of the same environment holds the lock."""


class RollbackRefused(PublishError):
    """Publishing this revision would roll the published one back (or cannot be checked)."""


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

    def summary(self) -> dict[str, Any]:
        """The JSON summary of the contract: the three counts are of tenant bundles."""
        return {"environment": self.environment, "revision": self.revision,
                "previousRevision": self.previous_revision, "uploaded": len(self.uploaded),
                "unchanged": self.unchanged, "deleted": len(self.deleted), "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}


# --------------------------------------------------------------------------------------------
# The compiled side


@dataclass
class LocalRelease:
    """One environment's compiled output, verified."""

    environment: str
    directory: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    rules_bytes: bytes
    catalog_bytes: Optional[bytes]

    @property
    def revision(self) -> Optional[str]:
        return self.manifest.get("revision")

    @property
    def digests(self) -> dict[str, str]:
        return self.manifest["tenants"]

    def bundle_bytes(self, slug: str) -> bytes:
        return (self.directory / BUNDLES_DIR / f"{slug}.json").read_bytes()


def load_release(out: Path, environment: str) -> LocalRelease:
    """Read and verify ``out/<environment>/``: a corrupted or hand-edited output is refused."""
    directory = out / environment
    try:
        manifest_bytes = (directory / MANIFEST).read_bytes()
        rules_bytes = (directory / RULES).read_bytes()
    except OSError as exc:  # missing, or --from is not a directory at all
        name = Path(exc.filename).name if exc.filename else MANIFEST
        why = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc.strerror or exc}"
        raise UsageError(f'no compiled output for "{environment}" in {out} ({name} {why})',
                         hint=f"run flagops compile --env {environment} --out {out}") from exc
    try:
        manifest = json.loads(manifest_bytes)
        digests = manifest["tenants"]
        if manifest.get("environment") != environment or not isinstance(digests, dict):
            raise ValueError("not this environment's manifest")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{directory / MANIFEST} is not a flagops manifest ({exc})",
                                hint="compile again") from exc
    bad: list[str] = []
    for slug, want in digests.items():
        try:
            got = digest((directory / BUNDLES_DIR / f"{slug}.json").read_bytes())
        except OSError:
            got = "missing"
        if got != want:
            bad.append(slug)
    on_disk = {p.stem for p in (directory / BUNDLES_DIR).glob("*.json")} if (directory / BUNDLES_DIR).is_dir() else set()
    extra = sorted(on_disk - set(digests))
    if bad or extra:
        parts = []
        if bad:
            parts.append(f"{len(bad)} bundle(s) do not match the manifest digest ({', '.join(sorted(bad)[:5])})")
        if extra:
            parts.append(f"{len(extra)} bundle(s) are not in the manifest ({', '.join(extra[:5])})")
        raise InvalidInputError(f"refusing to publish {directory}: " + "; ".join(parts),
                                hint=f"the compiled output was modified after compile; compile again into an empty "
                                     f"directory (rm -rf {out} && flagops compile --env {environment} --out {out}): "
                                     "an incremental compile rewrites only what the flags changed")
    catalog_path = out / CATALOG
    catalog = catalog_path.read_bytes() if catalog_path.is_file() else None
    return LocalRelease(environment, directory, manifest, manifest_bytes, rules_bytes, catalog)


# --------------------------------------------------------------------------------------------
# Revisions


def _base(revision: str) -> str:
    return revision[:-len("-dirty")] if revision.endswith("-dirty") else revision


def check_revision(root: Path, local: Optional[str], remote: Optional[str], *, environment: str,
                   target: str) -> None:
    """Refuse a publish that would replace ``remote`` with an older, unrelated or unknown revision."""
    if not remote:
        return
    rollback_hint = (f"to go back on purpose: flagops rollback --env {environment} --target {target} --to REV, "
                     "or pass --allow-rollback")
    if not local:
        raise RollbackRefused(f"cannot tell whether this publish rolls back the published revision {remote}: "
                              "the compiled output has no git revision", hint=rollback_hint)
    lb, rb = _base(local), _base(remote)
    if lb == rb:
        return
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise RollbackRefused(f"cannot check the published revision {remote}: {root} is not a git repository",
                              hint=rollback_hint) from exc
    try:
        repo.commit(rb)
    except (ValueError, git.BadName, git.BadObject) as exc:
        raise RollbackRefused(
            f"the published revision {remote} is not in the local history; publishing might roll it back",
            hint="fetch it (git fetch origin; a shallow CI clone needs the full history), "
                 "or pass --allow-rollback to replace it anyway") from exc
    try:
        repo.commit(lb)
    except (ValueError, git.BadName, git.BadObject) as exc:
        raise RollbackRefused(
            f"the compiled revision {local} is not in the local history of {root}, so it cannot be checked "
            f"against the published revision {remote}",
            hint="publish from the checkout that compiled it (--root), fetch that commit here, "
                 "or pass --allow-rollback") from exc
    try:
        older = repo.is_ancestor(lb, rb)
        newer = repo.is_ancestor(rb, lb)
    except git.GitCommandError as exc:
        raise RollbackRefused(f"cannot compare {local} with the published revision {remote}: "
                              f"{(exc.stderr or str(exc)).strip()}", hint=rollback_hint) from exc
    if older:
        raise RollbackRefused(f"{local} is an ancestor of the published revision {remote}: "
                              "publishing it would roll the environment back", hint=rollback_hint)
    if not newer:
        raise RollbackRefused(f"{local} does not contain the published revision {remote} (the histories "
                              "diverged): publishing it would drop the changes published since",
                              hint="merge or rebase onto the published revision, or pass --allow-rollback")


# --------------------------------------------------------------------------------------------
# The publish lock (also the journal of what a run is uploading)


def _node_id() -> str:
    """Where PIDs are comparable: the host, its boot, and the PID namespace (containers share hostnames)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)


#: Lock owners of the runs active in this process: a lock naming this pid but no active owner
#: was left by a run that ended here (e.g. the store went away while it failed).
_ACTIVE_OWNERS: set[str] = set()


class _Lock:
    def __init__(self, store: ObjectStore, key: str, options: PublishOptions, target: str):
        self.store, self.key, self.options, self.target = store, key, options, target
        self.owner = uuid.uuid4().hex
        self.etag: Optional[str] = None
        self.inherited_dirty: set[str] = set()  # bundles an interrupted run was uploading
        self.journaled: set[str] = set()

    def _body(self, **extra: Any) -> bytes:
        now = time.time()
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "node": _node_id(), "pid": os.getpid(),
                           "started": now, "expires": now + self.options.lock_ttl, **extra},
                          sort_keys=True).encode()

    @staticmethod
    def _stale(info: dict[str, Any]) -> bool:
        if info.get("released") or time.time() > float(info.get("expires", 0)):
            return True
        if info.get("node") == _node_id():  # the owner's PID means something here
            if info.get("pid") == os.getpid():
                return info.get("owner") not in _ACTIVE_OWNERS
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return True  # the run that took it died on this machine
            except (PermissionError, ValueError):
                return False
        return False

    def acquire(self) -> None:
        _ACTIVE_OWNERS.add(self.owner)
        try:
            self._acquire()
        except BaseException:
            _ACTIVE_OWNERS.discard(self.owner)
            raise

    def _acquire(self) -> None:
        conditional = self.options.conditional_writes
        body = self._body(uploading=[])
        if not conditional:
            previous = self._retry(lambda: self.store.get(self.key))
            if previous:
                info = _json_or_empty(previous[0])
                self.inherited_dirty = set(info.get("uploading", []))
                if not self._stale(info):
                    self._warn("another publish may be running (its lock is live); without conditional writes "
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
        if not self._stale(info):
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info.get("started", 0))))
            raise PublishInProgress(
                f"another publish to {self.target} is in progress (host {info.get('host')}, pid {info.get('pid')}, "
                f"since {since}); this run changed nothing",
                hint="wait for it and run again; a lock left by a killed run on another machine expires "
                     f"{int(self.options.lock_ttl)}s after it was taken")
        self.inherited_dirty = set(info.get("uploading", []))
        try:
            self.etag = self._retry(lambda: self.store.put(self.key, body, if_match=current[1]))
        except PreconditionFailed as exc:
            raise PublishInProgress(f"another publish to {self.target} took over the stale lock first; "
                                    "this run changed nothing", hint="wait for it and run again") from exc
        self._warn(f"took over the lock of an interrupted publish (host {info.get('host')}, pid {info.get('pid')}); "
                   f"{len(self.inherited_dirty)} bundle(s) it was uploading are uploaded again")

    def journal(self, uploading: Iterable[str]) -> None:
        """Record what this run is about to overwrite, so a run taking over after a crash redoes it."""
        self.journaled = set(uploading) | self.inherited_dirty
        body = self._body(uploading=sorted(self.journaled))
        if self.options.conditional_writes:
            try:
                self.etag = self._retry(lambda: self.store.put(self.key, body, if_match=self.etag))
            except PreconditionFailed as exc:
                raise PublishInProgress(f"the publish lock on {self.target} was taken by another run; "
                                        "this run changed nothing", hint="wait for it and run again") from exc
        else:
            self.etag = self._retry(lambda: self.store.put(self.key, body))

    def release(self) -> None:
        """Delete the lock (a complete run) if it is still ours."""
        _ACTIVE_OWNERS.discard(self.owner)
        current = self._retry(lambda: self.store.get(self.key))
        if current and _json_or_empty(current[0]).get("owner") == self.owner:
            self._retry(lambda: self.store.delete(self.key))

    def abandon(self) -> None:
        """Give the lock up after a failure, keeping the journal: the next run redoes those bundles."""
        _ACTIVE_OWNERS.discard(self.owner)
        dirty = self.journaled | self.inherited_dirty
        if not dirty:
            self.release()
            return
        body = self._body(uploading=sorted(dirty), released=True)
        try:
            if self.options.conditional_writes:
                self._retry(lambda: self.store.put(self.key, body, if_match=self.etag))
            else:
                self._retry(lambda: self.store.put(self.key, body))
        except PreconditionFailed:
            pass  # another run holds it now and has its own journal

    def _retry(self, fn: Callable[[], Any]) -> Any:
        return retrying(fn, self.options.retry)

    def _warn(self, message: str) -> None:
        if self.options.warn:
            self.options.warn(message)


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------------
# Parallel transfers


class _Transfers:
    """A bounded pool running uploads/deletions with retries; the first failure stops the rest."""

    def __init__(self, options: PublishOptions, label: str, total: int):
        self.options, self.label, self.total = options, label, total
        self.done = 0
        self.bytes = 0
        self._mutex = threading.Lock()
        fault = os.environ.get(FAULT_ENV)
        self.fault_after = int(fault) if fault and fault.isdigit() else None

    def run(self, jobs: list[tuple[str, Callable[[], int]]]) -> None:
        if not jobs:
            return
        if self.options.progress:
            self.options.progress(0, self.total, self.label)
        stop = threading.Event()

        def one(name: str, fn: Callable[[], int]) -> None:
            if stop.is_set():
                return
            sent = retrying(fn, self.options.retry)
            with self._mutex:
                self.done += 1
                self.bytes += sent
                done = self.done
                if self.fault_after is not None and done >= self.fault_after:
                    os._exit(70)  # simulate a crash between two uploads
            if self.options.progress:
                self.options.progress(done, self.total, self.label)

        with ThreadPoolExecutor(max_workers=max(1, self.options.workers)) as pool:
            futures: list[Future[None]] = [pool.submit(one, name, fn) for name, fn in jobs]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in finished if f.exception() is not None), None)
            if failed is not None:
                stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                exc = failed.exception()
                assert exc is not None
                raise exc


# --------------------------------------------------------------------------------------------
# Publishing


def publish_environment(out: Path, environment: str, store: ObjectStore, prefix: str, *, root: Path,
                        options: Optional[PublishOptions] = None, target: Optional[str] = None) -> PublishResult:
    """Publish ``out/<environment>/`` (and ``out/catalog.json``) to ``store`` under ``prefix``."""
    options = options or PublishOptions()
    target = target or (f"{store.url}/{prefix}" if prefix else store.url)
    started = time.monotonic()
    release = load_release(out, environment)
    env_prefix = join_key(prefix, environment)
    manifest_key = join_key(env_prefix, MANIFEST)
    bundles_prefix = join_key(env_prefix, BUNDLES_DIR) + "/"
    result = PublishResult(environment, release.revision, None, target=target, dry_run=options.dry_run,
                           conditional=options.conditional_writes)

    def warn(message: str) -> None:
        result.warnings.append(message)
        if options.warn:
            options.warn(message)

    lock = None if options.dry_run else _Lock(store, join_key(env_prefix, LOCK),
                                              PublishOptions(**{**options.__dict__, "warn": warn}), target)
    if lock:
        lock.acquire()
    try:
        _publish_locked(release, store, env_prefix, manifest_key, bundles_prefix, prefix, root, options,
                        lock, result, warn)
    except BaseException:
        # Give the lock up; it keeps the journal of what may have been overwritten, if anything.
        if lock:
            try:
                lock.abandon()
            except StorageError:
                pass  # the store is unreachable: the lock expires, or a later run finds its owner dead
        raise
    if lock:
        lock.release()
    result.seconds = time.monotonic() - started
    return result


def _publish_locked(release: LocalRelease, store: ObjectStore, env_prefix: str, manifest_key: str,
                    bundles_prefix: str, prefix: str, root: Path, options: PublishOptions,
                    lock: Optional[_Lock], result: PublishResult, warn: Callable[[str], None]) -> None:
    environment = release.environment
    current = retrying(lambda: store.get(manifest_key), options.retry)  # after the lock: nobody moves it now
    remote_etag = current[1] if current else None
    remote = _json_or_empty(current[0]) if current else {}
    remote_digests: dict[str, str] = remote.get("tenants") if isinstance(remote.get("tenants"), dict) else {}
    if current and not remote:
        warn(f"the published manifest {manifest_key} is not valid JSON; every bundle is uploaded again")
    result.previous_revision = remote.get("revision") if current else None
    if not options.allow_rollback:
        check_revision(root, release.revision, result.previous_revision, environment=environment,
                       target=result.target)

    listed = retrying(lambda: list(store.list(bundles_prefix)), options.retry)
    present = {info.key[len(bundles_prefix):-len(".json")] for info in listed
               if info.key.endswith(".json") and "/" not in info.key[len(bundles_prefix):]}
    dirty = lock.inherited_dirty if lock else set()
    local = release.digests
    uploads = sorted(slug for slug, d in local.items()
                     if remote_digests.get(slug) != d or slug not in present or slug in dirty)
    gone = sorted(present - set(local))  # departed tenants, and orphans of an interrupted run
    result.unchanged = len(local) - len(uploads)
    result.uploaded = uploads
    if options.dry_run:
        result.deleted = gone
        result.bytes = (sum(len(release.bundle_bytes(s)) for s in uploads) + len(release.rules_bytes)
                        + len(release.manifest_bytes) + len(release.catalog_bytes or b""))
        return
    if not options.conditional_writes:
        warn("conditional writes are off: CI's concurrency group is the only guard against two publishes "
             "overwriting each other")
    assert lock is not None
    lock.journal(uploads)

    headers = {"content_type": JSON, "cache_control": options.cache_control}

    def put(key: str, data: bytes) -> Callable[[], int]:
        def do() -> int:
            store.put(key, data, **headers)
            return len(data)
        return do

    def put_bundle(slug: str) -> Callable[[], int]:
        return lambda: put(join_key(bundles_prefix, f"{slug}.json"), release.bundle_bytes(slug))()

    # 1. bundles, rules, catalog: nothing names the new bundles yet.
    jobs = [(slug, put_bundle(slug)) for slug in uploads]
    jobs.append((RULES, put(join_key(env_prefix, RULES), release.rules_bytes)))
    if release.catalog_bytes is not None:
        jobs.append((CATALOG, put(join_key(prefix, CATALOG), release.catalog_bytes)))
    transfers = _Transfers(options, f"{environment} upload", len(jobs))
    try:
        transfers.run(jobs)
    except StorageError as exc:
        raise PublishError(f"upload to {result.target} failed: {exc}; the manifest was not changed, readers "
                           f"still get revision {result.previous_revision}",
                           hint="run the same publish again: it completes what this run began") from exc
    result.bytes = transfers.bytes

    # 2. the manifest: the switch.
    _write_manifest(store, manifest_key, release.manifest_bytes, remote_etag, options, result)
    result.bytes += len(release.manifest_bytes)

    # 3. bundles nobody names any more.
    def remove(slug: str) -> Callable[[], int]:
        def do() -> int:
            store.delete(join_key(bundles_prefix, f"{slug}.json"))
            return 0
        return do

    deleter = _Transfers(options, f"{environment} delete", len(gone))
    deleter.fault_after = None  # the crash hook simulates a crash between *uploads*
    try:
        deleter.run([(slug, remove(slug)) for slug in gone])
    except StorageError as exc:
        raise PublishError(f"revision {release.revision} is published, but deleting bundles of departed "
                           f"tenants failed: {exc}", hint="run the same publish again to delete them") from exc
    result.deleted = gone


def _write_manifest(store: ObjectStore, key: str, data: bytes, remote_etag: Optional[str],
                    options: PublishOptions, result: PublishResult) -> None:
    conditional = options.conditional_writes
    attempts = {"n": 0}

    def do() -> str:
        attempts["n"] += 1
        if not conditional:
            return store.put(key, data, content_type=JSON, cache_control=options.cache_control)
        if remote_etag is None:
            return store.put(key, data, content_type=JSON, cache_control=options.cache_control, if_none_match=True)
        return store.put(key, data, content_type=JSON, cache_control=options.cache_control, if_match=remote_etag)

    try:
        retrying(do, options.retry)
    except PreconditionFailed as exc:
        now = store.get(key)
        if attempts["n"] > 1 and now is not None and now[0] == data:
            return  # an earlier attempt did land before its response was lost
        other = _json_or_empty(now[0]).get("revision") if now else None
        raise RaceLostError(
            f"another publish changed {key} while this run was publishing (it now names revision {other}); "
            f"this run's manifest was not written",
            hint="the other publish won; run again to publish on top of it if this revision is still wanted") from exc
    except ConditionalWritesUnsupported as exc:
        raise PublishError(f"{result.target} rejects the conditional manifest write: {exc}",
                           hint="pass --no-conditional-writes and rely on CI's concurrency group") from exc
    except StorageError as exc:
        raise PublishError(f"writing the manifest failed: {exc}; readers still get revision "
                           f"{result.previous_revision} (or, if the write landed, the new one whole)",
                           hint="run the same publish again") from exc


# --------------------------------------------------------------------------------------------
# Compile-and-publish, rollback, other directories, bucket policy


def compile_to(root: Path, environment: str, out: Path, *, cwd: Optional[Path] = None) -> None:
    from .compile import compile_project

    compile_project(root, environments=[environment], out=out, cwd=cwd)


def rollback(root: Path, environment: str, rev: str, store: ObjectStore, prefix: str, *,
             options: Optional[PublishOptions] = None, target: Optional[str] = None) -> PublishResult:
    """Compile revision ``rev`` of the repository at ``root`` and publish it, rollback allowed."""
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise UsageError(f"{root} is not a git repository; rollback compiles a revision from git") from exc
    try:
        commit = repo.commit(rev)
    except (ValueError, git.BadName, git.BadObject) as exc:
        raise UsageError(f'"{rev}" is not a commit of this repository',
                         hint="fetch it first (git fetch origin), or check the name with git log") from exc
    work_tree = Path(repo.working_tree_dir or root).resolve()
    try:
        inner = Path(root).resolve().relative_to(work_tree)
    except ValueError:
        inner = Path(".")
    options = PublishOptions(**{**(options or PublishOptions()).__dict__, "allow_rollback": True})
    with tempfile.TemporaryDirectory(prefix="flagops-rollback-") as tmp:
        checkout = Path(tmp) / "tree"
        # A detached worktree: REV's files exactly, with git metadata so the revision is REV's sha.
        repo.git.worktree("add", "--detach", str(checkout), commit.hexsha)
        try:
            out = Path(tmp) / "out"
            compile_to(checkout / inner, environment, out)
            return publish_environment(out, environment, store, prefix, root=root, options=options, target=target)
        finally:
            repo.git.worktree("remove", "--force", str(checkout))


def publish_directory(store: ObjectStore, prefix: str, directory: Path, *, subdir: str = DASHBOARD_DIR,
                      options: Optional[PublishOptions] = None) -> int:
    """Upload every file of ``directory`` under ``<prefix>/<subdir>/`` (the dashboard); returns the count.

    Files are uploaded whole with their guessed Content-Type. A path with a ``tenants`` segment
    is refused: the bucket policy makes ``<prefix>/*/tenants/*`` public.
    """
    options = options or PublishOptions()
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file())
    jobs = []
    for path in files:
        rel = path.relative_to(directory).as_posix()
        if "tenants" in rel.split("/"):
            raise UsageError(f"{rel}: a path segment named tenants/ would be public under the bucket policy")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        key = join_key(prefix, subdir, rel)

        def do(key: str = key, path: Path = path, ctype: str = ctype) -> int:
            data = path.read_bytes()
            store.put(key, data, content_type=ctype, cache_control=options.cache_control)
            return len(data)
        jobs.append((rel, do))
    transfers = _Transfers(options, subdir, len(jobs))
    transfers.fault_after = None
    transfers.run(jobs)
    # Then drop what the new copy no longer has (a removed flag's page), so the site mirrors it.
    base = join_key(prefix, subdir) + "/"
    keep = {join_key(prefix, subdir, path.relative_to(directory).as_posix()) for path in files}
    stale = [info.key for info in retrying(lambda: list(store.list(base)), options.retry) if info.key not in keep]
    for key in stale:
        retrying(lambda key=key: store.delete(key), options.retry)
    return len(jobs)


def bucket_policy(bucket: str, prefix: str = "") -> dict[str, Any]:
    """The bucket policy that opens only tenant bundles (``<prefix>/*/tenants/*``) to anonymous reads.

    Manifests, rules, the catalog and the dashboard list every tenant and allowlist, so they
    stay private; services know their own slug and fetch only their bundle.
    """
    resource = f"arn:aws:s3:::{bucket}/{join_key(prefix, '*', BUNDLES_DIR, '*')}"
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "PublicReadTenantBundles", "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject", "Resource": resource}]}
