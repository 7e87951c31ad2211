"""A compiled environment about to be published, checked against its schemas before anything is uploaded.

Two phases, so that a kill reaches readers before the (long) read of every bundle:

1. :func:`load_release` reads and checks the small documents: ``manifest.json``,
   ``rules.json``, ``snapshot.json`` and ``catalog.json`` against their schemas and against
   each other (environment, revision, flag keys, tenant slugs). The flags that are off for
   every tenant come from the snapshot.
2. :meth:`LocalRelease.verify_bundles` reads every bundle once: its digest must be the
   manifest's, and its bytes the canonical bundle of the manifest's flags (a check equivalent
   to ``bundle.schema.json`` for the manifest's flag keys, run as one compiled regular
   expression; a bundle that fails it is validated with the schema for a precise message).
   It also computes each bundle's MD5, which the listing's ETags are compared with.

Large mappings (the manifest's and the snapshot's ``tenants``) are validated with the schema
on a sample of entries, and every entry with the schema's own patterns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .errors import CompiledOutputInvalid, UsageError
from .layout import BUNDLES_DIR, CATALOG, MANIFEST, RULES, SNAPSHOT, digest, json_str
from .problems import Problem
from .schemas import BUILTIN_SCHEMA_DIR, Schemas, ecma_pattern, validator_class

__all__ = ["LocalRelease", "load_release"]

_SAMPLE = 64  # entries of a large mapping validated by the schema itself
_SHOWN = 5


@lru_cache(maxsize=4)
def _schemas(directory: Optional[Path]) -> tuple[Schemas, dict[str, Any]]:
    schemas = Schemas.load(directory)
    extra = {}
    for name in ("snapshot", "catalog"):
        for base in (directory, BUILTIN_SCHEMA_DIR):
            path = base / f"{name}.schema.json" if base is not None else None
            if path is not None and path.is_file():
                extra[name] = validator_class()(json.loads(path.read_text(encoding="utf-8")), registry=schemas.registry)
                break
    return schemas, extra


def _sampled(document: dict[str, Any], name: str) -> dict[str, Any]:
    mapping = document.get(name)
    if not isinstance(mapping, dict) or len(mapping) <= _SAMPLE:
        return document
    return {**document, name: dict(list(mapping.items())[:_SAMPLE])}


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: Path, rule: str, message: str) -> None:
        self.items.append(Problem(str(path), 1, 1, rule, message))

    def schema(self, path: Path, validator: Any, document: Any) -> None:
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))[:_SHOWN]:
            where = "/".join(str(p) for p in error.absolute_path) or "(document)"
            self.add(path, "schema", f"{where}: {error.message}")

    def raise_if_any(self, directory: Path, environment: str, out: Path) -> None:
        if not self.items:
            return
        shown = "; ".join(f"{Path(p.path).name}: {p.message}" for p in self.items[:_SHOWN])
        more = f" (+{len(self.items) - _SHOWN} more)" if len(self.items) > _SHOWN else ""
        raise CompiledOutputInvalid(
            f"refusing to publish {directory}: {len(self.items)} problem(s), nothing was uploaded: {shown}{more}",
            problems=self.items,
            hint=f"the compiled output was modified after compile; compile again into an empty directory "
                 f"(rm -rf {out} && flagops compile --env {environment} --out {out})")


def _read_json(path: Path, problems: _Problems) -> tuple[Optional[bytes], Any]:
    try:
        data = path.read_bytes()
        return data, json.loads(data)
    except OSError as exc:
        problems.add(path, "unreadable", exc.strerror or str(exc))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.add(path, "json", f"not valid JSON ({exc})")
    return None, None


@dataclass
class LocalRelease:
    """One environment's compiled output (its small documents checked; bundles by :meth:`verify_bundles`)."""

    environment: str
    directory: Path
    out: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    rules_bytes: bytes
    catalog_bytes: Optional[bytes]
    snapshot_bytes: Optional[bytes]
    #: flag keys false for every tenant (None until known: from the snapshot, else the bundles)
    off: Optional[tuple[str, ...]] = None
    #: slug -> the ETag a store gives the bundle (quoted MD5), after verify_bundles
    etags: dict[str, str] = field(default_factory=dict)
    bundle_bytes_total: int = 0
    schema_dir: Optional[Path] = None

    @property
    def revision(self) -> Optional[str]:
        return self.manifest.get("revision")

    @property
    def digests(self) -> dict[str, str]:
        return self.manifest["tenants"]

    @property
    def snapshot_digest(self) -> Optional[str]:
        return digest(self.snapshot_bytes) if self.snapshot_bytes is not None else None

    def bundle_path(self, slug: str) -> Path:
        return self.directory / BUNDLES_DIR / f"{slug}.json"

    def bundle_bytes(self, slug: str) -> bytes:
        return self.bundle_path(slug).read_bytes()

    def verify_bundles(self) -> None:
        """Check every bundle (digest and schema) and compute its ETag; raise before anything is uploaded."""
        schemas, _ = _schemas(self.schema_dir)
        problems = _Problems()
        keys: list[str] = self.manifest["flags"]
        pattern = re.compile(b'{"environment":' + re.escape(json_str(self.environment)) + b',"flags":{'
                             + b",".join(re.escape(json_str(k)) + b":(?:true|false)" for k in keys)
                             + b'},"schemaVersion":1,"tenant":(".*")}\n', re.DOTALL)
        on_somewhere = 0
        need_off = self.off is None
        index = {k: i for i, k in enumerate(keys)}
        total = 0
        for slug, want in self.digests.items():
            path = self.bundle_path(slug)
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.add(path, "missing", f"the manifest names {slug} but its bundle is unreadable "
                                              f"({exc.strerror or exc})")
                continue
            total += len(data)
            if digest(data) != want:
                problems.add(path, "digest", f"does not match the manifest digest ({slug})")
                continue
            match = pattern.fullmatch(data)
            if match is None or match.group(1) != json_str(slug):
                self._bundle_problem(path, slug, data, schemas, problems)
                continue
            self.etags[slug] = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
            if need_off:
                for key, value in json.loads(data)["flags"].items():
                    if value:
                        on_somewhere |= 1 << index[key]
        tenants_dir = self.directory / BUNDLES_DIR
        if tenants_dir.is_dir():
            extra = sorted(p.stem for p in tenants_dir.glob("*.json") if p.stem not in self.digests)
            for slug in extra[:_SHOWN]:
                problems.add(tenants_dir / f"{slug}.json", "extra", f"bundle {slug} is not in the manifest")
        problems.raise_if_any(self.directory, self.environment, self.out)
        self.bundle_bytes_total = total
        if need_off:
            self.off = tuple(k for i, k in enumerate(keys) if not on_somewhere >> i & 1) if self.digests else ()

    def _bundle_problem(self, path: Path, slug: str, data: bytes, schemas: Schemas, problems: _Problems) -> None:
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.add(path, "json", f"not valid JSON ({exc})")
            return
        before = len(problems.items)
        problems.schema(path, schemas.validator("bundle"), document)
        if len(problems.items) == before:
            problems.add(path, "bundle", f"is not the bundle of {self.environment}/{slug} for the manifest's "
                                         "flags (each flag once, canonical JSON)")


def load_release(out: Path, environment: str, *, schema_dir: Optional[Path] = None) -> LocalRelease:
    """Read ``out/<environment>/`` and ``out/catalog.json``; check the small documents (phase 1).

    ``schema_dir``: the repository's ``schema/`` (its environments), else the schemas flagops ships.
    """
    directory = out / environment
    manifest_path, rules_path = directory / MANIFEST, directory / RULES
    for path in (manifest_path, rules_path):
        if not path.is_file():
            why = "missing" if not path.exists() else "not a file"
            raise UsageError(f'no compiled output for "{environment}" in {out} ({path.name} {why})',
                             hint=f"run flagops compile --env {environment} --out {out}")
    schemas, extra = _schemas(schema_dir)
    problems = _Problems()
    manifest_bytes, manifest = _read_json(manifest_path, problems)
    rules_bytes, rules = _read_json(rules_path, problems)
    snapshot_path, catalog_path = directory / SNAPSHOT, out / CATALOG
    snapshot_bytes, snapshot = _read_json(snapshot_path, problems) if snapshot_path.exists() else (None, None)
    catalog_bytes, catalog = _read_json(catalog_path, problems) if catalog_path.exists() else (None, None)
    if manifest is not None:
        problems.schema(manifest_path, schemas.validator("manifest"), _sampled(manifest, "tenants"))
    if rules is not None:
        problems.schema(rules_path, schemas.validator("rules"), rules)
    if snapshot is not None and "snapshot" in extra:
        problems.schema(snapshot_path, extra["snapshot"], _sampled(snapshot, "tenants"))
    if catalog is not None and "catalog" in extra:
        problems.schema(catalog_path, extra["catalog"], catalog)
    problems.raise_if_any(directory, environment, out)

    keys = manifest["flags"]
    slug_re = ecma_pattern(schemas.slug_pattern)
    digest_re = re.compile(r"sha256:[0-9a-f]{64}\Z")
    bad = [s for s, d in manifest["tenants"].items() if not slug_re.match(s) or not isinstance(d, str)
           or not digest_re.match(d)]
    for slug in bad[:_SHOWN]:
        problems.add(manifest_path, "schema", f"tenants/{slug}: not a slug and a sha256 digest")
    for path, doc in ((manifest_path, manifest), (rules_path, rules), (snapshot_path, snapshot)):
        if doc is not None and doc.get("environment") != environment:
            problems.add(path, "environment", f'is for environment "{doc.get("environment")}", not "{environment}"')
    if set(rules["flags"]) != set(keys):
        problems.add(rules_path, "flags", "does not define exactly the manifest's flags")
    if catalog is not None and catalog.get("revision") != manifest.get("revision"):
        problems.add(catalog_path, "revision", f"is of revision {catalog.get('revision')}, the manifest of "
                                               f"{manifest.get('revision')}")
    off = None
    if snapshot is not None:
        off = _snapshot_off(snapshot_path, snapshot, manifest, problems)
    problems.raise_if_any(directory, environment, out)
    assert manifest_bytes is not None and rules_bytes is not None
    return LocalRelease(environment, directory, out, manifest, manifest_bytes, rules_bytes, catalog_bytes,
                        snapshot_bytes, off=off, schema_dir=schema_dir)


def _snapshot_off(path: Path, snapshot: dict[str, Any], manifest: dict[str, Any],
                  problems: _Problems) -> Optional[tuple[str, ...]]:
    """The flags no tenant of the snapshot has on; checks it agrees with the manifest."""
    keys = manifest["flags"]
    if snapshot.get("revision") != manifest.get("revision") or snapshot.get("flags") != keys:
        problems.add(path, "snapshot", "is not of the manifest's revision and flags")
        return None
    tenants = snapshot["tenants"]
    if tenants.keys() != manifest["tenants"].keys():
        problems.add(path, "snapshot", "does not hold exactly the manifest's tenants")
        return None
    width = (len(keys) + 7) // 8
    on_somewhere = 0
    for slug, text in tenants.items():
        try:
            bits = base64.b64decode(text, validate=True)
        except (ValueError, TypeError):
            bits = b""
        if len(bits) != width:
            problems.add(path, "snapshot", f"tenants/{slug}: not {width} byte(s) of standard base64")
            return None
        on_somewhere |= int.from_bytes(bits, "little")
    if on_somewhere >> len(keys):
        problems.add(path, "snapshot", "a bitset has bits beyond the flags")
        return None
    return tuple(k for i, k in enumerate(keys) if not on_somewhere >> i & 1) if tenants else ()
