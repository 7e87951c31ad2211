"""Compile: evaluate every flag for every tenant and write the output of every environment.

For each environment ``OUT/<env>/`` holds ``tenants/<slug>.json`` (one bundle per tenant),
``manifest.json``, ``rules.json`` and ``snapshot.json``; ``OUT/catalog.json`` describes every
flag (names and bytes: :mod:`flagops.layout`). Output is byte-for-byte deterministic.

All or nothing: every environment and the catalog are staged first (:mod:`flagops.bundles`),
then committed together; a failure at any point (a full disk, a directory that cannot be
replaced) puts back every file already replaced, so the previous output stays whole. Leftovers
of killed compiles (staging directories, temporary files) are removed by the next run once
their process is gone.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from .bundles import Staged, stage_environment
from .catalog import catalog_bytes
from .compile_state import cache_paths
from .errors import UsageError, require_environment
from .fsutil import remove_stale, swap_directories, temp_name
from .layout import CATALOG
from .loading import Project
from .parallel import frozen_heap
from .problems import Result
from .git import flags_revision
from .schemas import Schemas
from .validation import Validation, load_repository

#: progress(done, total, what): called while writing bundles.
Progress = Callable[[int, int, str], None]

__all__ = ["CompileResult", "EnvironmentResult", "compile_project", "compile_validated"]


@dataclass
class EnvironmentResult:
    """What one environment's compile produced."""

    environment: str
    revision: Optional[str]
    tenants: int
    flags: int
    enabled: dict[str, int] = field(default_factory=dict)  # key -> tenants it is on for
    path: Optional[Path] = None
    rewritten: int = 0  # bundle files this compile wrote (the rest were already up to date)
    repaired: int = 0  # of those, bundles found changed on disk since the last compile

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "revision": self.revision, "tenants": self.tenants,
                "flags": self.flags, "enabled": self.enabled, "path": str(self.path) if self.path else None}


@dataclass
class CompileResult:
    environments: list[EnvironmentResult]
    validation: Result
    out: Path


class _StagedFile:
    """A file written aside, renamed into place on commit; undo puts the previous one back."""

    def __init__(self, path: Path, data: bytes):
        self.path = path
        self.tmp = temp_name(path, "stage")
        self.old: Optional[Path] = None
        self.committed = False
        self.tmp.write_bytes(data)
        os.chmod(self.tmp, 0o644)

    def commit(self) -> None:
        if self.path.exists():
            old = temp_name(self.path, "old")
            os.link(self.path, old)
            self.old = old
        os.replace(self.tmp, self.path)
        self.committed = True

    def undo(self) -> None:
        if not self.committed:
            return
        if self.old is not None:
            os.replace(self.old, self.path)
            self.old = None
        else:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        for path in (self.tmp, self.old):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()


def leftover_prefixes(environments: Iterable[str]) -> list[str]:
    """Name prefixes of what a killed compile can leave in ``OUT/``."""
    out = [f".{CATALOG}.", "..flagops-"]
    for env in environments:
        out += [f".{env}.build-", f".{env}.update-", f".{env}.old."]
    return out


def compile_validated(project: Project, environments: Iterable[str], out: Path, revision: Optional[str],
                      progress: Optional[Progress] = None, *, catalog: Optional[bytes] = None,
                      gate: Optional[Callable[[], Any]] = None) -> list[EnvironmentResult]:
    """Compile environments of a project that passed validation; all of them, or none.

    ``catalog``: the bytes of ``OUT/catalog.json``, committed with the environments.
    ``gate``: for a project not validated yet, its validation: it runs beside the first
    environment's hashing, and no bundle is written before it passes.
    """
    rules = {key: flag.as_rule() for key, flag in project.flag_models().items()}
    envs = list(environments)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out, leftover_prefixes(envs))
    staged: list[Staged] = []
    files: list[_StagedFile] = []
    try:
        with frozen_heap():  # millions of short-lived containers: no collection walks the inventories
            for env in envs:
                inventory = project.inventories[env]
                staged.append(stage_environment(rules, inventory.tenants, env, revision, out, progress,
                                                inventory.columns, gate))
        if catalog is not None:
            files.append(_StagedFile(out / CATALOG, catalog))
        _commit(out, staged, files)
    finally:
        for item in [*staged, *files]:
            item.discard()
    for s in staged:
        s.save(out)
    return [EnvironmentResult(s.environment, revision, len(s.state.slugs), len(s.keys), s.enabled, s.target,
                              rewritten=s.rewritten, repaired=s.repaired) for s in staged]


def _commit(out: Path, staged: Sequence[Staged], files: Sequence[_StagedFile]) -> None:
    """Put every staged output in place, or (on any error) none of it."""
    # The state files go aside first: a crash from here on means a full build next time,
    # never an update of output the state does not describe.
    states: list[tuple[Path, Path]] = []
    done: list[Any] = []
    try:
        for s in staged:
            state = cache_paths(out, s.environment)[1]
            if state.exists():
                states.append((state, temp_name(state, "old")))
                os.replace(*states[-1])
        for item in [*(s for s in staged if s.incremental), *files]:
            done.append(item)  # undo handles a commit that stopped half-way
            item.commit()
        swap_directories([(s.build, s.target) for s in staged if s.build is not None])
    except BaseException:
        for item in reversed(done):
            item.undo()
        for state, aside in states:  # the previous output is back, and so is its record
            os.replace(aside, state)
        raise
    for _, aside in states:
        aside.unlink(missing_ok=True)


def compile_project(root: Path, *, environments: Optional[Sequence[str]] = None, out: Path = Path("dist"),
                    tenants: Optional[str] = None, cwd: Optional[Path] = None,
                    progress: Optional[Progress] = None, schemas: Optional[Schemas] = None) -> CompileResult:
    """Validate the repository at ``root`` and compile the chosen environments into ``out``.

    Raises :class:`InvalidInputError` (with the problems) when validation finds errors; nothing
    is written then.
    """
    env_list = list(dict.fromkeys(environments or []))
    if tenants is not None and len(env_list) != 1:
        raise UsageError("--tenants replaces one environment's inventory; pass exactly one --env")
    project, schemas = load_repository(root, tenants=tenants, environment=env_list[0] if tenants else None,
                                       cwd=cwd, schemas=schemas)
    # The validation runs beside the first hashing (compile_validated); whatever fails before
    # it passes is reported as the input's problems when the input has any.
    validation = Validation(project, schemas, then="nothing was compiled")
    existed = out.exists()
    try:
        for env in env_list:
            require_environment(env, schemas.environments)
            if env not in project.inventories:
                raise UsageError(f'no tenant inventory for "{env}"',
                                 hint=f"add tenants/{env}.yaml or pass --tenants")
        if not env_list:
            env_list = sorted(project.inventories)
            if not env_list:
                raise UsageError("no tenant inventories under tenants/", hint="add tenants/<environment>.yaml")
        revision = flags_revision(root)
        catalog = catalog_bytes(root, project.flag_data(), revision=revision)
        envs = compile_validated(project, env_list, out, revision, progress, catalog=catalog, gate=validation)
    except BaseException as exc:
        if not existed:
            with contextlib.suppress(OSError):
                out.rmdir()  # made for this compile, and empty again: refused input leaves no trace
        if isinstance(exc, Exception):
            validation()  # invalid input explains any failure: its problems are the report
        raise
    return CompileResult(envs, validation(), out)
