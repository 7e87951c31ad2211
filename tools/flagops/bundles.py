"""Render and stage the output of one environment: a full build aside, or an in-place update.

The whole tenants x flags matrix is evaluated with numpy (:mod:`flagops.matrix`), packed to
bits, and each bundle is assembled from precomputed pieces (:class:`flagops.layout.BundleRenderer`).
Staging never touches the live output; the caller commits every environment's staging at
once (:mod:`flagops.compile`), so that a failure anywhere leaves all the previous output.

A recompile updates in place when the previous output is intact, as recorded in the state file
(:mod:`flagops.compile_state`): the same flag keys, the manifest written then, exactly the
expected files. It then rewrites the bundles whose row changed, and also every bundle whose
bytes may differ from what the last compile wrote: the size of every bundle is compared, and
a bundle whose inode changed since that compile (its ctime, which ``touch`` cannot set back, is
not older than that of the manifest it put in place) is read and compared with the recorded
digest. This trusts the system clock not to be set back between two compiles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .compile_state import State, cache_paths, load_buckets, load_state, save_buckets_if_needed, save_state
from .fastpath import TenantColumns
from .fsutil import staging_directory
from .layout import (BUNDLES_DIR, ENVIRONMENT_FILES, MANIFEST, RULES, SNAPSHOT, BundleRenderer, dumps,
                     SlugTable, manifest_bytes, pack, rules_document, snapshot_bytes)
from . import matrix as _matrix
from .matrix import ChunkedMatrix, TenantIndex, evaluate_columns
from .parallel import share, shared_array

Progress = Callable[[int, int, str], None]

__all__ = ["Staged", "stage_environment"]


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


#: Tenants per chunk of the shared evaluate-and-write: small, so that the processes finish together.
CHUNK = 1024
#: From this many tenants on, the bundles are written by every core (creating files is most of the cost).
PARALLEL_WRITE_MIN = 4096


class _Writer:
    """Renders and writes bundles into one directory (opened once: no path lookup per file).

    The sha256 and size of each bundle go to ``digests`` (rows of 32 bytes) and ``sizes``;
    pass arrays from :func:`flagops.parallel.shared_array` when other processes write too.
    """

    def __init__(self, renderer: BundleRenderer, slugs: Sequence[str], directory: Path, total: int,
                 digests: Optional[np.ndarray] = None, sizes: Optional[np.ndarray] = None):
        self.renderer, self.slugs = renderer, slugs
        self.digests = np.zeros((total, 32), dtype=np.uint8) if digests is None else digests
        self.sizes = np.zeros(total, dtype=np.uint32) if sizes is None else sizes
        self.dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    def write(self, packed_rows: np.ndarray, positions: Sequence[int], at: int) -> int:
        """Write the bundles of tenants ``positions`` (rows ``packed_rows``); results from row ``at`` on."""
        chosen = [self.slugs[p] for p in positions]
        bundles = self.renderer.render(packed_rows, chosen)
        dir_fd, op, wr, cl = self.dir_fd, os.open, os.write, os.close
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for slug, data in zip(chosen, bundles):
            fd = op(f"{slug}.json", flags, 0o644, dir_fd=dir_fd)
            try:
                if wr(fd, data) != len(data):  # a short write: only on odd file systems
                    view = memoryview(data)[os.fstat(fd).st_size:]
                    while view:
                        view = view[wr(fd, view):]
            finally:
                cl(fd)
        sha = hashlib.sha256
        end = at + len(chosen)
        self.digests[at:end] = np.frombuffer(b"".join([sha(data).digest() for data in bundles]),
                                             dtype=np.uint8).reshape(-1, 32)
        self.sizes[at:end] = [len(data) for data in bundles]
        return len(chosen)

    def digest_list(self) -> list[bytes]:
        raw = self.digests.tobytes()
        return [raw[i:i + 32] for i in range(0, len(raw), 32)]

    def close(self) -> None:
        os.close(self.dir_fd)


def _reporter(progress: Optional[Progress], total: int, environment: str) -> Callable[[int], None]:
    """``progress`` at most about 50 times over ``total``, and always at the end."""
    step, last = max(1, total // 50), [-1]

    def report(done: int) -> None:
        if progress and (done // step != last[0] or done == total):
            last[0] = done // step
            progress(done, total, environment)

    return report


def write_bundles(renderer: BundleRenderer, packed: np.ndarray, slugs: Sequence[str], positions: np.ndarray,
                  directory: Path, environment: str, progress: Optional[Progress] = None
                  ) -> tuple[list[bytes], np.ndarray]:
    """Write the bundles of the tenants at ``positions`` into ``directory``: (sha256 digests, sizes)."""
    writer = _Writer(renderer, slugs, directory, len(positions))
    report = _reporter(progress, len(positions), environment)
    try:
        chosen = positions.tolist()
        for lo in range(0, len(chosen), CHUNK):
            part = chosen[lo:lo + CHUNK]
            writer.write(packed[part], part, lo)
            report(lo + len(part))
    finally:
        writer.close()
    return writer.digest_list(), writer.sizes


def build_environment(rules: Mapping[str, Mapping[str, Any]], keys: Sequence[str], index: TenantIndex,
                      environment: str, revision: Optional[str], renderer: BundleRenderer,
                      slugs: Sequence[str], build: Path, progress: Optional[Progress] = None,
                      remember: Optional[Callable[[], None]] = None, gate: Optional[Callable[[], Any]] = None
                      ) -> tuple[State, dict[str, int]]:
    """Evaluate every tenant and write every bundle, the snapshot and the manifest into ``build``.

    The tenants are cut into chunks, and every core takes chunks from one queue
    (:func:`flagops.parallel.share`): the process that takes a chunk hashes its rollout buckets,
    renders and writes its bundles and records their rows and digests, in memory shared by all
    of them. So hashing in one process overlaps writing in another, and no core waits for
    another. The snapshot, the manifest and ``remember`` (the buckets file) follow side by side;
    the buckets file is only a cache, right whatever is committed later, so it may go first.
    ``gate`` (the validation) runs beside the first chunks, which are only hashed until it passes.
    Returns what was written, and the number of tenants each key is on for.
    """
    n, width = len(slugs), (len(keys) + 7) // 8
    matrix = ChunkedMatrix(rules, keys, index, environment)
    spread = matrix.pairs >= _matrix.PARALLEL_HASH_MIN or n >= PARALLEL_WRITE_MIN
    array: Callable[..., np.ndarray] = shared_array if spread else np.zeros
    bounds = list(range(0, n, CHUNK)) + [n]
    packed, sums = array((n, width), np.uint8), array((len(bounds) - 1, len(keys)), np.int64)
    manifest_sha = array(32, np.uint8)
    if spread:
        matrix.share_columns(lambda length: shared_array(length, np.uint8))
    writer = _Writer(renderer, slugs, build / BUNDLES_DIR, n, array((n, 32), np.uint8), array(n, np.uint32))

    hashed: set[int] = set()  # chunks this process hashed before the gate passed

    def prepare(c: int) -> None:
        matrix.store(bounds[c], bounds[c + 1], matrix.hash_range(bounds[c], bounds[c + 1]))
        hashed.add(c)

    def work(c: int) -> int:
        lo, hi = bounds[c], bounds[c + 1]
        if c not in hashed:
            prepare(c)
        rows = matrix.rows(lo, hi)
        sums[c] = rows.sum(axis=0)
        packed[lo:hi] = pack(rows)
        return writer.write(packed[lo:hi], range(lo, hi), lo)

    # The slugs in sorted order, as both documents list them, are found while the validation
    # runs (or else first); the documents are written side by side at the end.
    order, plain = array(n, np.int64), array(1, np.int64)
    encoded = array((n, SlugTable.encoded_width(slugs)), np.uint8)

    def validate_and_sort() -> None:
        if gate is not None:
            gate()
        plain[0] = SlugTable.fill(slugs, order, encoded)

    def table() -> SlugTable:
        return SlugTable(slugs, order, encoded if plain[0] else None)

    def snapshot() -> None:
        _write_file(str(build / SNAPSHOT), snapshot_bytes(environment, revision, keys, slugs, packed, table()))

    def manifest() -> None:
        data = manifest_bytes(environment, revision, keys, slugs, writer.digests, table())
        _write_file(str(build / MANIFEST), data)
        manifest_sha[:] = np.frombuffer(hashlib.sha256(data).digest(), dtype=np.uint8)

    if gate is None:
        validate_and_sort()
    try:
        share(work, len(bounds) - 1, _reporter(progress, n, environment),
              then=[manifest, snapshot, *([remember] if remember else [])], processes=None if spread else 1,
              gate=None if gate is None else validate_and_sort, prepare=prepare)
    finally:
        writer.close()
    state = State(list(keys), list(slugs), np.array(packed), writer.digest_list(), np.array(writer.sizes),
                  manifest_sha.tobytes().hex())
    return state, dict(zip(keys, sums.sum(axis=0).tolist()))


@dataclass
class Staged:
    """One environment's new output, ready to be committed (or discarded).

    A full build (``build`` set) is a complete tree that the caller swaps in; an update
    (``update`` set) renames its staged files into the live directory on :meth:`commit`
    and can put the previous files back with :meth:`undo`.
    """

    environment: str
    target: Path
    keys: list[str]
    enabled: dict[str, int]
    rewritten: int  # bundle files this compile writes
    repaired: int  # of those, bundles whose file differed from what the last compile wrote
    hashed: int  # rollout (tenant, key) pairs hashed by this compile
    state: State
    build: Optional[Path] = None
    update: Optional["_Update"] = None
    _after: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def incremental(self) -> bool:
        return self.update is not None

    def commit(self) -> None:
        if self.update is not None:
            self.update.commit()

    def undo(self) -> None:
        if self.update is not None:
            self.update.undo()

    def discard(self) -> None:
        """Remove what staging left (call after commit, or instead of it)."""
        for path in (self.build, self.update.stage if self.update else None):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)

    def save(self, out: Path) -> None:
        """Record the committed output in the state and buckets files."""
        _, state_path = cache_paths(out, self.environment)
        self.state.fence_ns = (self.target / MANIFEST).stat().st_ctime_ns
        save_state(state_path, self.environment, self.state)
        for step in self._after:
            step()


class _Update:
    """Changed files staged beside the output; renamed into place, with an undo."""

    def __init__(self, target: Path, stage: Path, names: list[str], removed: Sequence[str],
                 previous: Callable[[str], Optional[bytes]]):
        self.target, self.stage, self.names, self.removed, self.previous = target, stage, names, removed, previous
        self.done: list[str] = []  # slugs whose file was replaced, created or deleted
        self.swapped: list[str] = []

    def commit(self) -> None:
        bundles = f"{self.target}/{BUNDLES_DIR}"
        for name in self.names:
            os.replace(f"{self.stage}/{name}", f"{bundles}/{name}")
            self.done.append(name[:-5])
        for slug in self.removed:
            os.unlink(f"{bundles}/{slug}.json")
            self.done.append(slug)
        for name in ENVIRONMENT_FILES:  # the manifest last
            os.link(self.target / name, self.stage / f".old-{name}")
            os.replace(self.stage / f".{name}", self.target / name)
            self.swapped.append(name)

    def undo(self) -> None:
        for name in reversed(self.swapped):
            os.replace(self.stage / f".old-{name}", self.target / name)
        bundles = f"{self.target}/{BUNDLES_DIR}"
        for slug in reversed(self.done):
            old = self.previous(slug)
            path = f"{bundles}/{slug}.json"
            if old is None:
                os.unlink(path)
            else:
                _write_file(f"{self.stage}/.undo", old)
                os.replace(f"{self.stage}/.undo", path)
        self.done, self.swapped = [], []


def _suspects(previous: State, target: Path) -> Optional[np.ndarray]:
    """Positions (in ``previous.slugs``) of bundles whose bytes may not be what was written.

    None when the output cannot be updated in place: a manifest other than the one recorded,
    a missing or extra file.
    """
    try:
        if sorted(os.listdir(target)) != sorted([BUNDLES_DIR, *ENVIRONMENT_FILES]):
            return None
        if hashlib.sha256((target / MANIFEST).read_bytes()).hexdigest() != previous.manifest:
            return None
        where = {f"{s}.json": i for i, s in enumerate(previous.slugs)}
        seen = np.zeros(len(where), dtype=bool)
        sizes = previous.sizes
        suspects = []
        with os.scandir(target / BUNDLES_DIR) as entries:
            for entry in entries:
                i = where.get(entry.name)
                if i is None or seen[i]:
                    return None
                seen[i] = True
                st = entry.stat(follow_symlinks=False)
                if st.st_size != sizes[i]:
                    suspects.append(i)
                elif st.st_ctime_ns >= previous.fence_ns:  # changed since that compile
                    with open(entry.path, "rb") as fh:
                        if hashlib.sha256(fh.read()).digest() != previous.digests[i]:
                            suspects.append(i)
        if not seen.all():
            return None
    except OSError:
        return None
    return np.array(suspects, dtype=np.int64)


def stage_environment(rules: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                      environment: str, revision: Optional[str], out: Path,
                      progress: Optional[Progress] = None, columns: Optional[TenantColumns] = None,
                      gate: Optional[Callable[[], Any]] = None) -> Staged:
    """Stage ``out/<environment>`` (``rules``: key -> ``Flag.as_rule()``); the live output is untouched.

    ``columns``: the tenants' fields as the validation read them (saves reading them again).
    ``gate``: the validation of input not validated yet; no bundle is written before it passes
    (a full build hashes meanwhile, see :func:`build_environment`).
    """
    target = out / environment
    buckets_path, state_path = cache_paths(out, environment)
    keys = sorted(rules)
    index = TenantIndex.build(tenants, columns)
    index.buckets = load_buckets(buckets_path, index.ids)
    loaded_keys = set(index.buckets.columns)
    slugs = index.slugs
    rules_raw = dumps(rules_document(environment, rules))
    renderer = BundleRenderer(environment, keys)

    def remember_buckets() -> None:
        save_buckets_if_needed(index.buckets, buckets_path, keys, loaded_keys)

    previous = load_state(state_path, environment, keys) if target.is_dir() else None
    suspects = _suspects(previous, target) if previous is not None else None
    if previous is not None and suspects is not None:
        if gate is not None:
            gate()
        staged = _stage_update(rules, keys, index, environment, revision, out, target, slugs, renderer,
                               rules_raw, previous, suspects, progress)
        if staged is not None:
            staged._after.append(remember_buckets)
            return staged

    build = staging_directory(out, f".{environment}.build-")
    try:
        (build / BUNDLES_DIR).mkdir()
        _write_file(str(build / RULES), rules_raw)
        state, enabled = build_environment(rules, keys, index, environment, revision, renderer, slugs, build,
                                           progress, remember_buckets, gate)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    hashed = index.buckets.hashed if index.buckets is not None else 0
    return Staged(environment, target, keys, enabled, len(slugs), 0, hashed, state, build=build)


def _stage_update(rules: Mapping[str, Mapping[str, Any]], keys: list[str], index: TenantIndex, environment: str,
                  revision: Optional[str], out: Path, target: Path, slugs: list[str], renderer: BundleRenderer,
                  rules_raw: bytes, previous: State, suspects: np.ndarray,
                  progress: Optional[Progress]) -> Optional[Staged]:
    """Stage the files that change; None when so much changed that a full build is cheaper."""
    matrix = evaluate_columns(rules, keys, index, environment)
    packed = pack(matrix)
    old_slugs, old_packed = previous.slugs, previous.packed
    if old_slugs == slugs:
        old_pos = np.arange(len(slugs))
    else:
        where = {s: i for i, s in enumerate(old_slugs)}
        old_pos = np.fromiter((where.get(s, -1) for s in slugs), dtype=np.int64, count=len(slugs))
    known = old_pos >= 0
    same = np.zeros(len(slugs), dtype=bool)
    if len(slugs):
        same[known] = (old_packed[old_pos[known]] == packed[known]).all(axis=1)
    damaged = np.zeros(len(old_slugs), dtype=bool)
    damaged[suspects] = True
    repaired = np.zeros(len(slugs), dtype=bool)
    if len(slugs):
        repaired[known] = damaged[old_pos[known]]
    repaired &= same
    same &= ~repaired
    changed = np.flatnonzero(~same)
    removed = sorted(set(old_slugs) - set(slugs)) if old_slugs != slugs else []
    if len(changed) + len(removed) > len(slugs) // 2:
        return None

    stage = staging_directory(out, f".{environment}.update-")
    try:
        new_digests, new_sizes = write_bundles(renderer, packed, slugs, changed, stage, environment, progress)
        digests = [previous.digests[p] if p >= 0 else b"" for p in old_pos.tolist()]
        sizes = np.where(known, previous.sizes[np.where(known, old_pos, 0)], 0).astype(np.uint32)
        for p, d in zip(changed.tolist(), new_digests):
            digests[p] = d
        sizes[changed] = new_sizes
        table = SlugTable(slugs)
        manifest = manifest_bytes(environment, revision, keys, slugs, digests, table)
        _write_file(str(stage / f".{RULES}"), rules_raw)
        _write_file(str(stage / f".{SNAPSHOT}"), snapshot_bytes(environment, revision, keys, slugs, packed, table))
        _write_file(str(stage / f".{MANIFEST}"), manifest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old_where = {s: i for i, s in enumerate(old_slugs)}

    def previous_bytes(slug: str) -> Optional[bytes]:
        i = old_where.get(slug)
        return None if i is None else renderer.bundle(old_packed[i].tobytes(), slug)

    update = _Update(target, stage, [f"{slugs[p]}.json" for p in changed.tolist()], removed, previous_bytes)
    state = State(keys, slugs, packed, digests, sizes, hashlib.sha256(manifest).hexdigest())
    enabled = dict(zip(keys, matrix.sum(axis=0).tolist()))
    hashed = index.buckets.hashed if index.buckets is not None else 0
    return Staged(environment, target, keys, enabled, len(changed), int(repaired.sum()), hashed, state,
                  update=update)
