"""Compile: evaluate every flag for every tenant and render the output of each environment.

For each environment ``OUT/<env>/`` holds ``tenants/<slug>.json`` (one bundle per tenant),
``manifest.json`` and ``rules.json``. Output is byte-for-byte deterministic. It is built
aside and swapped in, or (when the previous output is intact) only the changed bundles are
staged and renamed into place, so a failed compile leaves the previous output untouched.
The fast paths live in :mod:`flagops.bundles`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .bundles import compile_environment
from .errors import InvalidInputError, UsageError
from .matrix import normalise_flag
from .loading import Project
from .problems import Result
from .revision import flags_revision
from .schemas import Schemas
from .validation import load_and_validate

SCHEMA_VERSION = 1
BUNDLES_DIR = "tenants"
MANIFEST = "manifest.json"
RULES = "rules.json"

#: progress(done, total, what): called while writing bundles.
Progress = Callable[[int, int, str], None]


def dumps(value: Any) -> bytes:
    """The canonical JSON of every file flagops writes: sorted keys, compact, one newline."""
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def bundle_document(environment: str, slug: str, values: Mapping[str, bool]) -> dict[str, Any]:
    """The reference form of one bundle (the fast writer must produce exactly its ``dumps``)."""
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment, "tenant": slug,
            "flags": dict(sorted(values.items()))}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rules_document(environment: str, flags: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"schemaVersion": SCHEMA_VERSION, "environment": environment,
            "flags": {key: normalise_flag(flag) for key, flag in sorted(flags.items())}}


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

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "revision": self.revision, "tenants": self.tenants,
                "flags": self.flags, "enabled": self.enabled, "path": str(self.path) if self.path else None}


@dataclass
class CompileResult:
    environments: list[EnvironmentResult]
    validation: Result
    out: Path


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def render_environment(flags: Mapping[str, Mapping[str, Any]], tenants: Sequence[Mapping[str, Any]],
                       environment: str, revision: Optional[str], directory: Path,
                       progress: Optional[Progress] = None) -> EnvironmentResult:
    """Write bundles, rules and manifest of one environment into an empty ``directory``."""
    from .bundles import render_full  # imported here: bundles builds on this module

    rendered, _, _, _ = render_full(flags, tenants, environment, revision, directory, dumps=dumps,
                                 rules=dumps(rules_document(environment, flags)),
                                 schema_version=SCHEMA_VERSION, progress=progress)
    return EnvironmentResult(environment, revision, len(tenants), len(rendered.keys), rendered.enabled,
                             directory, rewritten=rendered.rewritten)


def swap_into_place(built: Path, target: Path) -> None:
    """Replace ``target`` with ``built``; the old tree is removed only once the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def compile_validated(project: Project, environments: Iterable[str], out: Path, revision: Optional[str],
                      progress: Optional[Progress] = None) -> list[EnvironmentResult]:
    """Compile environments of a project that passed validation."""
    flags = project.flag_data()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for env in environments:
        tenants = project.inventories[env].tenants
        # Only bundles whose bytes change are rewritten when the previous output is intact.
        rendered = compile_environment(flags, tenants, env, revision, out, dumps=dumps,
                                       rules=dumps(rules_document(env, flags)), schema_version=SCHEMA_VERSION,
                                       swap=swap_into_place, progress=progress)
        results.append(EnvironmentResult(env, revision, len(tenants), len(rendered.keys), rendered.enabled,
                                         out / env, rewritten=rendered.rewritten))
    return results


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
    project, schemas, result = load_and_validate(
        root, tenants=tenants, environment=env_list[0] if tenants else None, cwd=cwd, schemas=schemas)
    if result.errors:
        raise InvalidInputError(f"{len(result.errors)} error(s) in the input; nothing was compiled",
                                result.problems)
    for env in env_list:
        if env not in schemas.environments:
            raise UsageError(f'unknown environment "{env}"; known: {", ".join(schemas.environments)}')
        if env not in project.inventories:
            raise UsageError(f'no tenant inventory for "{env}"',
                             hint=f"add tenants/{env}.yaml or pass --tenants")
    if not env_list:
        env_list = sorted(project.inventories)
        if not env_list:
            raise UsageError("no tenant inventories under tenants/", hint="add tenants/<environment>.yaml")
    revision = flags_revision(root)
    envs = compile_validated(project, env_list, out, revision, progress)
    from .catalog import write_catalog  # imported here: catalog builds on this module

    write_catalog(root, project.flag_data(), out, revision=revision)
    return CompileResult(envs, result, out)
