"""Read a repository: its flag files and tenant inventories, and a ``--tenants`` override.

Only regular files inside the repository are read (no FIFOs, devices, or symlinks leading
out of it), each with its size limit enforced while reading; an inventory URL is fetched
within one wall-clock deadline. Parsing is :mod:`flagops.parsing`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol

from .errors import SourceError
from .fastpath import TenantColumns
from .model import Flag, Tenant
from .parsing import (MAX_DEPTH, MAX_FLAG_BYTES, MAX_INVENTORY_BYTES, Document, JsonPath, Position,
                      parse_file, parse_flag_blob, parse_json, parse_yaml, too_large)
from .problems import Problem
from .tenantsource import (DEFAULT_URL_TIMEOUT, TENANTS_TIMEOUT_ENV, TENANTS_TOKEN_ENV, RefusedFile,
                           read_regular, read_tenants_source)

__all__ = ["FLAGS_DIR", "TENANTS_DIR", "SCHEMA_DIR", "FLAG_SUFFIX", "INVENTORY_SUFFIXES", "MAX_DEPTH",
           "MAX_FLAG_BYTES", "MAX_INVENTORY_BYTES", "Document", "FsSource", "Inventory", "JsonPath",
           "Position", "Project", "Source", "load_flags", "load_inventories", "load_override",
           "load_project", "parse_file", "parse_flag_blob", "parse_json", "parse_yaml", "read_tenants_source",
           "DEFAULT_URL_TIMEOUT", "TENANTS_TIMEOUT_ENV", "TENANTS_TOKEN_ENV"]

FLAGS_DIR = "flags"
TENANTS_DIR = "tenants"
SCHEMA_DIR = "schema"
FLAG_SUFFIX = ".yaml"
INVENTORY_SUFFIXES = (".yaml", ".json")


# --------------------------------------------------------------------------- sources


class Source(Protocol):
    """Where a repository's files come from: the working tree, or a git revision."""

    label: str

    def list_dir(self, rel: str) -> Optional[list[str]]:
        """Names of the entries of a directory (directories end with '/'), None if absent."""

    def read(self, rel: str) -> bytes:
        """The bytes of one file."""


@dataclass
class FsSource:
    """The working tree under ``root``."""

    root: Path
    label: str = "worktree"

    def list_dir(self, rel: str) -> Optional[list[str]]:
        base = self.root / rel
        if not base.is_dir():
            return None
        return sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(base))

    def read(self, rel: str, *, limit: int = MAX_INVENTORY_BYTES) -> bytes:
        """A regular file inside the root, read up to ``limit``; else :class:`RefusedFile`."""
        return read_regular(self.root / rel, limit, inside=self.root)


def _parse(source: Source, project: Project, rel: str, limit: int) -> tuple[bool, Optional[Document]]:
    """Read and parse one file: (whether it could be read, its document); problems go to the project."""
    raw = _read(source, rel, limit)
    if isinstance(raw, Problem):
        project.problems.append(raw)
        return False, None
    doc, problems = parse_file(rel, raw, max_bytes=limit)
    project.problems.extend(problems)
    return True, doc


def _read(source: Source, rel: str, limit: int) -> "bytes | Problem":
    try:
        if isinstance(source, FsSource):
            return source.read(rel, limit=limit)
        return source.read(rel)
    except RefusedFile as exc:
        return Problem(rel, 1, 1, exc.rule, exc.message)
    except OSError as exc:
        return Problem(rel, 1, 1, "unreadable", f"cannot read the file: {exc.strerror or exc}")


# --------------------------------------------------------------------------- project


@dataclass
class Inventory:
    """The tenants of one environment."""

    environment: str
    document: Optional[Document]
    path: str
    override: bool = False  # given with --tenants rather than read from the repository
    #: Set by validation when the tenants passed its fast check: their fields, read once.
    columns: Optional[TenantColumns] = field(default=None, repr=False, compare=False)
    _models: Optional[tuple[Tenant, ...]] = field(default=None, repr=False, compare=False)

    @property
    def tenants(self) -> list[dict[str, Any]]:
        data = self.document.data if self.document else None
        return data if isinstance(data, list) else []

    def tenant_models(self) -> tuple[Tenant, ...]:
        """The tenants as :class:`Tenant` values (built once); for a validated inventory."""
        if self._models is None:
            self._models = Tenant.many(self.tenants)
        return self._models


@dataclass
class Project:
    """Everything read from one repository (or revision), before validation."""

    source: Any
    flags: dict[str, Document] = field(default_factory=dict)  # file stem -> document
    inventories: dict[str, Inventory] = field(default_factory=dict)  # environment -> inventory
    problems: list[Problem] = field(default_factory=list)
    #: Set by validation: the flags whose files have no error, keyed by file stem.
    models: Optional[dict[str, Flag]] = None

    def flag_data(self) -> dict[str, dict[str, Any]]:
        """Flag definitions keyed by file stem, for documents that parsed to a mapping."""
        return {k: d.data for k, d in sorted(self.flags.items()) if isinstance(d.data, dict)}

    def flag_models(self) -> dict[str, Flag]:
        """The flags as :class:`Flag` values, keyed by file stem, sorted.

        After validation, the flags whose files have no error; before it, every definition
        that parses as a flag (one that does not is left out).
        """
        if self.models is not None:
            return self.models
        out: dict[str, Flag] = {}
        for stem, data in self.flag_data().items():
            try:
                out[stem] = Flag.from_mapping(data, key=stem)
            except ValueError:
                continue
        return out


def load_flags(source: Source, project: Project) -> None:
    names = source.list_dir(FLAGS_DIR)
    if names is None:
        project.problems.append(Problem(FLAGS_DIR, 1, 1, "missing-directory",
                                        "there is no flags/ directory; create it with one <key>.yaml per flag"))
        return
    for name in names:
        rel = f"{FLAGS_DIR}/{name}"
        if name.endswith("/"):
            project.problems.append(Problem(rel.rstrip("/"), 1, 1, "stray-file",
                                            "flags/ holds one <key>.yaml file per flag; move this directory out"))
            continue
        if not name.endswith(FLAG_SUFFIX):
            hint = (f"rename it to {name.rsplit('.', 1)[0]}.yaml" if name.endswith(".yml")
                    else "only <key>.yaml files belong in flags/; move or delete it")
            project.problems.append(Problem(rel, 1, 1, "stray-file", f"not a .yaml flag file: {hint}"))
            continue
        read, doc = _parse(source, project, rel, MAX_FLAG_BYTES)
        if doc is not None:
            if not isinstance(doc.data, dict):
                line, col = doc.locate(())
                project.problems.append(Problem(rel, line, col, "not-a-mapping",
                                                "a flag file must be a YAML mapping (key: value lines)"))
            project.flags[name[: -len(FLAG_SUFFIX)]] = doc


def load_inventories(source: Source, project: Project, environments: Iterable[str]) -> None:
    names = source.list_dir(TENANTS_DIR)
    if names is None:
        return
    known = set(environments)
    for name in names:
        rel = f"{TENANTS_DIR}/{name}"
        stem, dot, ext = name.rpartition(".")
        if name.endswith("/") or not dot or f".{ext}" not in INVENTORY_SUFFIXES:
            project.problems.append(Problem(rel.rstrip("/"), 1, 1, "stray-file",
                                            "tenants/ holds <environment>.yaml or <environment>.json files only"))
            continue
        if stem not in known:
            project.problems.append(Problem(
                rel, 1, 1, "unknown-environment",
                f'"{stem}" is not an environment of the schema ({", ".join(sorted(known))}); '
                "rename the file or add the environment to schema/flag.schema.json"))
            continue
        if stem in project.inventories:
            project.problems.append(Problem(rel, 1, 1, "duplicate-inventory",
                                            f"{project.inventories[stem].path} already holds the {stem} inventory; keep one"))
            continue
        read, doc = _parse(source, project, rel, MAX_INVENTORY_BYTES)
        if read:  # one that does not parse is still this environment's (broken) inventory
            project.inventories[stem] = Inventory(stem, doc, rel)


def load_override(project: Project, environment: str, display: str, raw: bytes) -> None:
    """Replace one environment's inventory with one given on the command line."""
    is_json = display.endswith(".json") or raw.lstrip()[:1] in (b"[", b"{")
    if is_json:
        doc, problems = parse_json(display, raw)
    else:
        doc, problems = parse_yaml(display, raw, max_bytes=MAX_INVENTORY_BYTES, fast=True)
    # Problems of the replaced repository file no longer matter for this run.
    replaced = project.inventories.get(environment)
    if replaced is not None:
        project.problems = [p for p in project.problems if p.path != replaced.path]
    project.problems.extend(problems)
    project.inventories[environment] = Inventory(environment, doc, display, override=True)


def load_project(source: Source, environments: Iterable[str],
                 progress: Optional[Callable[[str], None]] = None) -> Project:
    """Read every flag file and every inventory of a repository."""
    project = Project(source)
    load_flags(source, project)
    if progress:
        progress(f"read {len(project.flags)} flag files")
    load_inventories(source, project, environments)
    return project
