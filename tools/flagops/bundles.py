"""Render, write and update the bundles of one environment, fast and incrementally.

The whole tenants x flags matrix is evaluated with numpy (:func:`evaluate_columns`), packed
to bits, and each bundle is assembled from precomputed pieces covering 8 flags at a time, so
the bytes equal ``dumps(bundle_document(...))`` without building a dict per tenant. Bundles
are hashed (rollout buckets) on all cores and written by one process.

Next to the output, two hidden files per environment remember what the last compile did:

* ``OUT/.flagops-<env>.buckets``: rollout buckets per (tenant id, key); a bucket never
  changes, so a recompile hashes only new tenants and new rollout keys;
* ``OUT/.flagops-<env>.state``: the flag keys, tenant slugs, every tenant's packed row and
  the digest of the manifest written. When the manifest on disk still has that digest and the
  directory holds exactly the expected files, a recompile rewrites only the bundles whose row
  changed (staged first, then renamed into place, undone on error); any mismatch means
  a full build aside and a swap, as for a first compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .matrix import BucketCache, TenantIndex, evaluate_columns
from .parallel import fork_map, jobs

STATE_VERSION = 1
_MAGIC = b"FLAGOPS-STATE 1\n"
#: Processes that write bundles. One: creating files in one directory serialises on the
#: directory's lock, and measured here two writers spent 2-4x the system time of one for
#: the same files; rendering and hashing a bundle costs a few microseconds, a create far more.
WRITE_JOBS = 1
#: Below this many bundles, writing stays in one process even with WRITE_JOBS > 1.
PARALLEL_WRITE_MIN = 5_000

Progress = Callable[[int, int, str], None]
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def _json_str(value: str) -> bytes:
    if _PLAIN.fullmatch(value):
        return b'"' + value.encode("utf-8") + b'"'
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def cache_paths(out: Path, environment: str) -> tuple[Path, Path]:
    """(buckets file, state file) of one environment's output."""
    return out / f".flagops-{environment}.buckets", out / f".flagops-{environment}.state"


# --------------------------------------------------------------------------- small binary files


def write_blob(path: Path, meta: Mapping[str, Any], payload: bytes) -> None:
    """A header line, one JSON line (with the payload's sha256), the payload; atomically."""
    head = dict(meta, length=len(payload), check=hashlib.sha256(payload).hexdigest())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC + json.dumps(head, sort_keys=True).encode("utf-8") + b"\n")
        fh.write(payload)
    os.replace(tmp, path)


def read_blob(path: Path) -> Optional[tuple[dict[str, Any], bytes]]:
    """(meta, payload) of a file from :func:`write_blob`, or None if absent or damaged."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(_MAGIC):
        return None
    end = raw.find(b"\n", len(_MAGIC))
    try:
        meta = json.loads(raw[len(_MAGIC):end])
    except ValueError:
        return None
    payload = raw[end + 1:]
    if (not isinstance(meta, dict) or meta.get("length") != len(payload)
            or meta.get("check") != hashlib.sha256(payload).hexdigest()):
        return None
    return meta, payload


def save_buckets(cache: BucketCache, path: Path, keys: Sequence[str]) -> None:
    chosen = sorted(k for k in keys if k in cache.columns)
    table = b"".join(cache.columns[k].tobytes() for k in chosen)
    ids = json.dumps(cache.ids).encode("utf-8")
    write_blob(path, {"kind": "buckets", "keys": chosen, "ids": len(ids)}, ids + table)


def load_buckets(path: Path, ids: Sequence[str]) -> BucketCache:
    """The saved buckets re-keyed to ``ids`` (tenants matched by id); empty if unusable."""
    cache = BucketCache(ids)
    blob = read_blob(path)
    if blob is None:
        return cache
    meta, payload = blob
    keys, cut = meta.get("keys"), meta.get("ids")
    if meta.get("kind") != "buckets" or not isinstance(keys, list) or not isinstance(cut, int):
        return cache
    try:
        old_ids = json.loads(payload[:cut])
    except ValueError:
        return cache
    table = np.frombuffer(payload, dtype=np.uint8, offset=cut)
    if not isinstance(old_ids, list) or table.size != len(keys) * len(old_ids):
        return cache
    table = table.reshape(len(keys), len(old_ids))
    if old_ids == cache.ids:
        for key, row in zip(keys, table):
            cache.columns[key] = row.copy()
        return cache
    where = {tid: i for i, tid in enumerate(old_ids)}
    old_pos = np.fromiter((where.get(tid, -1) for tid in cache.ids), dtype=np.int64, count=len(cache.ids))
    found = old_pos >= 0
    for key, row in zip(keys, table):
        col = np.full(len(cache.ids), 255, dtype=np.uint8)
        col[found] = row[old_pos[found]]
        cache.columns[key] = col
    cache.changed = True
    return cache


# --------------------------------------------------------------------------- bundle bytes


class BundleRenderer:
    """Assembles bundle bytes from packed rows: one lookup per 8 flags."""

    def __init__(self, environment: str, keys: Sequence[str], schema_version: int):
        self.head = b'{"environment":' + _json_str(environment) + b',"flags":{'
        self.mid = b'},"schemaVersion":' + str(schema_version).encode() + b',"tenant":'
        groups = [keys[c:c + 8] for c in range(0, len(keys), 8)]
        flat: list[bytes] = []
        for group in groups:
            off = [_json_str(k) + b":false" for k in group]
            on = [_json_str(k) + b":true" for k in group]
            for v in range(256):
                flat.append(b",".join(on[b] if v >> b & 1 else off[b] for b in range(len(group)))
                            if v < 1 << len(group) else b"")
        self.flat = flat
        self.offsets = np.arange(len(groups), dtype=np.intp) * 256

    def indices(self, packed: np.ndarray) -> np.ndarray:
        return packed.astype(np.intp) + self.offsets

    def bundle(self, row: Sequence[int], slug: str) -> bytes:
        return b"".join((self.head, b",".join(map(self.flat.__getitem__, row)), self.mid,
                         _json_str(slug), b"}\n"))


def pack(matrix: np.ndarray) -> np.ndarray:
    """Rows of bits, flag j of a row at bit j % 8 of byte j // 8."""
    return np.packbits(matrix, axis=1, bitorder="little")


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_bundles(renderer: BundleRenderer, packed: np.ndarray, slugs: Sequence[str], positions: np.ndarray,
                  directory: Path, environment: str, progress: Optional[Progress] = None) -> list[bytes]:
    """Write the bundles of the tenants at ``positions`` into ``directory``; their sha256 digests."""
    total = len(positions)
    shares = min(WRITE_JOBS, jobs(), max(1, total // PARALLEL_WRITE_MIN))
    bounds = np.linspace(0, total, shares + 1).astype(int)
    base = str(directory)

    def run(share: int) -> bytes:
        chosen = positions[bounds[share]:bounds[share + 1]]
        rows = renderer.indices(packed[chosen]).tolist()
        out = []
        sha = hashlib.sha256
        step = max(1, len(rows) // 50)
        for n, (row, p) in enumerate(zip(rows, chosen.tolist())):
            slug = slugs[p]
            data = renderer.bundle(row, slug)
            _write_file(f"{base}/{slug}.json", data)
            out.append(sha(data).digest())
            if progress and share == 0 and n % step == 0:
                progress(min(total, n * shares), total, environment)
        return b"".join(out)

    digests: list[bytes] = []
    for blob in fork_map(run, shares):
        digests.extend(blob[i:i + 32] for i in range(0, len(blob), 32))
    if progress and total:
        progress(total, total, environment)
    return digests


# --------------------------------------------------------------------------- one environment


@dataclass
class Rendered:
    """What rendering one environment produced (before its result object is built)."""

    keys: list[str]
    enabled: dict[str, int]
    rewritten: int  # bundle files written by this compile
    incremental: bool
    hashed: int  # rollout (tenant, key) pairs hashed by this compile


def manifest_bytes(dumps: Callable[[Any], bytes], environment: str, revision: Optional[str],
                   keys: Sequence[str], slugs: Sequence[str], digests: Sequence[bytes],
                   schema_version: int) -> bytes:
    """``dumps`` of the manifest, with the (large) tenants object joined directly.

    "tenants" sorts last among the manifest's keys, so the document is the small part's
    canonical JSON with the tenants object spliced in before the closing brace.
    """
    small = dumps({"schemaVersion": schema_version, "environment": environment, "revision": revision,
                   "flags": list(keys)})
    order = sorted(range(len(slugs)), key=slugs.__getitem__)
    hexes = b"".join(digests).hex()
    if _PLAIN.fullmatch("".join(slugs)):  # the usual case: no slug needs escaping
        body = ",".join([f'"{slugs[i]}":"sha256:{hexes[64 * i:64 * i + 64]}"' for i in order]).encode("utf-8")
    else:
        body = b",".join([_json_str(slugs[i]) + f':"sha256:{hexes[64 * i:64 * i + 64]}"'.encode() for i in order])
    return small[:-2] + b',"tenants":{' + body + b"}}\n"


def _previous(state_path: Path, target: Path, environment: str, keys: Sequence[str]
              ) -> Optional[tuple[list[str], np.ndarray, list[bytes]]]:
    """(slugs, packed rows, raw digests) of the previous output when it can be updated in place."""
    blob = read_blob(state_path)
    if blob is None:
        return None
    meta, payload = blob
    if (meta.get("kind") != "state" or meta.get("version") != STATE_VERSION
            or meta.get("environment") != environment or meta.get("keys") != list(keys)):
        return None
    try:
        manifest_raw = (target / "manifest.json").read_bytes()
        if hashlib.sha256(manifest_raw).hexdigest() != meta.get("manifest"):
            return None
        if sorted(os.listdir(target)) != ["manifest.json", "rules.json", "tenants"]:
            return None
        # A bundle touched after the state was saved (a hand edit) is not trusted: rebuild.
        saved = state_path.stat().st_mtime_ns
        names = []
        with os.scandir(target / "tenants") as entries:
            for entry in entries:
                if entry.stat().st_mtime_ns > saved:
                    return None
                names.append(entry.name)
    except OSError:
        return None
    cut, width = meta.get("slugs"), meta.get("width")
    if not isinstance(cut, int) or not isinstance(width, int):
        return None
    slugs = json.loads(payload[:cut])
    n = len(slugs)
    if width != (len(keys) + 7) // 8 or len(payload) != cut + n * (width + 32):
        return None
    packed = np.frombuffer(payload, dtype=np.uint8, offset=cut, count=n * width).reshape(n, width)
    raw = payload[cut + n * width:]
    digests = [raw[i:i + 32] for i in range(0, len(raw), 32)]
    # Every expected bundle present and nothing else (a stray or missing file: rebuild).
    if len(names) != n or set(names) != {f"{s}.json" for s in slugs}:
        return None
    return slugs, packed, digests


def _save_state(state_path: Path, environment: str, keys: Sequence[str], slugs: Sequence[str],
                packed: np.ndarray, digests: Sequence[bytes], manifest: bytes) -> None:
    names = json.dumps(list(slugs)).encode("utf-8")
    write_blob(state_path, {"kind": "state", "version": STATE_VERSION, "environment": environment,
                            "keys": list(keys), "slugs": len(names), "width": packed.shape[1],
                            "manifest": hashlib.sha256(manifest).hexdigest()},
               names + np.ascontiguousarray(packed).tobytes() + b"".join(digests))


def render_full(flags: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                environment: str, revision: Optional[str], directory: Path, *,
                dumps: Callable[[Any], bytes], rules: bytes, schema_version: int,
                index: Optional[TenantIndex] = None, progress: Optional[Progress] = None
                ) -> tuple[Rendered, np.ndarray, list[bytes], bytes]:
    """Write every bundle, rules and manifest into an empty ``directory``.

    Returns (what was rendered, packed rows, bundle digests, manifest bytes).
    """
    keys = sorted(flags)
    index = index or TenantIndex.build(tenants)
    matrix = evaluate_columns(flags, keys, index, environment)
    packed = pack(matrix)
    renderer = BundleRenderer(environment, keys, schema_version)
    slugs = [t["slug"] for t in tenants]
    (directory / "tenants").mkdir(parents=True)
    digests = write_bundles(renderer, packed, slugs, np.arange(len(slugs)), directory / "tenants",
                            environment, progress)
    _write_file(str(directory / "rules.json"), rules)
    manifest = manifest_bytes(dumps, environment, revision, keys, slugs, digests, schema_version)
    _write_file(str(directory / "manifest.json"), manifest)
    enabled = dict(zip(keys, matrix.sum(axis=0).tolist()))
    hashed = index.buckets.hashed if index.buckets is not None else 0
    return Rendered(keys, enabled, len(slugs), False, hashed), packed, digests, manifest


def _update_in_place(target: Path, out: Path, renderer: BundleRenderer, packed: np.ndarray,
                     slugs: Sequence[str], changed: np.ndarray, removed: Sequence[str], rules: bytes,
                     make_manifest: Callable[[list[bytes]], bytes], previous: Callable[[str], Optional[bytes]],
                     environment: str, progress: Optional[Progress]) -> bytes:
    """Stage the changed files, then rename them over the old ones; undo everything on error.

    ``previous(slug)`` gives the bytes a bundle had (None for a new tenant): an undo rewrites
    them, which spares a backup link per changed file (file creation is what costs here).
    Returns the manifest written (``make_manifest`` gets the digests of the changed bundles).
    """
    stage = Path(tempfile.mkdtemp(prefix=f".{environment}.update-", dir=out))
    try:
        digests = write_bundles(renderer, packed, slugs, changed, stage, environment, progress)
        manifest = make_manifest(digests)
        _write_file(str(stage / ".rules.json"), rules)
        _write_file(str(stage / ".manifest.json"), manifest)
        for name in ("rules.json", "manifest.json"):
            os.link(target / name, stage / f".old-{name}")
        bundles = f"{target}/tenants"
        names = [f"{slugs[p]}.json" for p in changed.tolist()]
        done: list[str] = []  # slugs whose file was replaced, created or deleted
        swapped: list[str] = []
        try:
            for name in names:
                os.replace(f"{stage}/{name}", f"{bundles}/{name}")
                done.append(name[:-5])
            for slug in removed:
                os.unlink(f"{bundles}/{slug}.json")
                done.append(slug)
            for name in ("rules.json", "manifest.json"):
                os.replace(stage / f".{name}", target / name)
                swapped.append(name)
        except BaseException:
            for name in reversed(swapped):
                os.replace(stage / f".old-{name}", target / name)
            for slug in reversed(done):
                old = previous(slug)
                path = f"{bundles}/{slug}.json"
                if old is None:
                    os.unlink(path)
                else:
                    _write_file(f"{stage}/.undo", old)
                    os.replace(f"{stage}/.undo", path)
            raise
        return manifest
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def compile_environment(flags: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                        environment: str, revision: Optional[str], out: Path, *,
                        dumps: Callable[[Any], bytes], rules: bytes, schema_version: int,
                        swap: Callable[[Path, Path], None], progress: Optional[Progress] = None) -> Rendered:
    """Bring ``out/<environment>`` up to date, rewriting only what changed when possible."""
    target = out / environment
    buckets_path, state_path = cache_paths(out, environment)
    keys = sorted(flags)
    index = TenantIndex.build(tenants)
    index.buckets = load_buckets(buckets_path, index.ids)
    loaded_keys = set(index.buckets.columns)
    slugs = [t["slug"] for t in tenants]

    previous = _previous(state_path, target, environment, keys) if target.is_dir() else None
    if previous is not None:
        old_slugs, old_packed, old_digests = previous
        matrix = evaluate_columns(flags, keys, index, environment)
        packed = pack(matrix)
        if old_slugs == slugs:
            old_pos = np.arange(len(slugs))
        else:
            where = {s: i for i, s in enumerate(old_slugs)}
            old_pos = np.fromiter((where.get(s, -1) for s in slugs), dtype=np.int64, count=len(slugs))
        known = old_pos >= 0
        same = np.zeros(len(slugs), dtype=bool)
        if len(slugs):
            same[known] = (old_packed[old_pos[known]] == packed[known]).all(axis=1)
        changed = np.flatnonzero(~same)
        removed = sorted(set(old_slugs) - set(slugs)) if old_slugs != slugs else []
        if len(changed) + len(removed) <= len(slugs) // 2:
            renderer = BundleRenderer(environment, keys, schema_version)
            digests = [old_digests[p] if p >= 0 else b"" for p in old_pos.tolist()]

            def make_manifest(new: list[bytes]) -> bytes:
                for p, d in zip(changed.tolist(), new):
                    digests[p] = d
                return manifest_bytes(dumps, environment, revision, keys, slugs, digests, schema_version)

            old_where = {s: i for i, s in enumerate(old_slugs)}

            def previous_bytes(slug: str) -> Optional[bytes]:
                i = old_where.get(slug)
                return None if i is None else renderer.bundle(renderer.indices(old_packed[i:i + 1])[0].tolist(), slug)

            state_path.unlink(missing_ok=True)  # a crash mid-update forces a full build next time
            manifest = _update_in_place(target, out, renderer, packed, slugs, changed, removed, rules,
                                        make_manifest, previous_bytes, environment, progress)
            _save_state(state_path, environment, keys, slugs, packed, digests, manifest)
            _save_buckets_if_needed(index, buckets_path, keys, loaded_keys)
            enabled = dict(zip(keys, matrix.sum(axis=0).tolist()))
            return Rendered(keys, enabled, len(changed), True, index.buckets.hashed)

    state_path.unlink(missing_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{environment}.build-", dir=out))
    build.chmod(0o755)  # mkdtemp's 0700 would hide the output from a web server's user
    try:
        rendered, packed, digests, manifest = render_full(
            flags, tenants, environment, revision, build, dumps=dumps, rules=rules,
            schema_version=schema_version, index=index, progress=progress)
        swap(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    _save_state(state_path, environment, keys, slugs, packed, digests, manifest)
    _save_buckets_if_needed(index, buckets_path, keys, loaded_keys)
    return rendered


def _save_buckets_if_needed(index: TenantIndex, path: Path, keys: Sequence[str], loaded: set[str]) -> None:
    cache = index.buckets
    if cache is None:
        return
    wanted = {k for k in keys if k in cache.columns}
    if cache.changed or wanted != loaded:
        save_buckets(cache, path, keys)
