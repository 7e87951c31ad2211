"""Compile: evaluate every flag for every tenant and render the output of each environment.

For each environment ``OUT/<env>/`` holds ``tenants/<slug>.json`` (one bundle per tenant),
``manifest.json`` and ``rules.json``. Output is byte-for-byte deterministic. It is built
aside and swapped in, so a failed compile leaves the previous output untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .errors import InvalidInputError, UsageError
from .evaluation import TenantIndex, enabled_tenants, normalise_flag
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
    keys = sorted(flags)
    index = TenantIndex.build(tenants)
    n = len(tenants)
    enabled = [enabled_tenants(key, flags[key], index, environment) for key in keys]

    # Bundles are assembled from per-flag pieces; keys and slugs need no JSON escaping
    # (their schema patterns exclude it), so this equals dumps(bundle_document(...)).
    on_for_all = [len(s) == n and n > 0 for s in enabled]
    base = [f'"{k}":{"true" if on_for_all[j] else "false"}' for j, k in enumerate(keys)]
    true_piece = [f'"{k}":true' for k in keys]
    per_tenant: list[list[int]] = [[] for _ in range(n)]
    for j, chosen in enumerate(enabled):
        if not on_for_all[j]:
            for i in chosen:
                per_tenant[i].append(j)
    head = f'{{"environment":"{environment}","flags":{{'
    bundles_dir = directory / BUNDLES_DIR
    bundles_dir.mkdir(parents=True)
    digests: dict[str, str] = {}
    step = max(1, n // 100)
    for i, tenant in enumerate(tenants):
        slug = tenant["slug"]
        row = base
        if per_tenant[i]:
            row = base.copy()
            for j in per_tenant[i]:
                row[j] = true_piece[j]
        data = f'{head}{",".join(row)}}},"schemaVersion":{SCHEMA_VERSION},"tenant":"{slug}"}}\n'.encode()
        _write(bundles_dir / f"{slug}.json", data)
        digests[slug] = "sha256:" + hashlib.sha256(data).hexdigest()
        if progress and (i % step == 0 or i == n - 1):
            progress(i + 1, n, environment)

    _write(directory / RULES, dumps(rules_document(environment, flags)))
    manifest = {"schemaVersion": SCHEMA_VERSION, "environment": environment, "revision": revision,
                "flags": keys, "tenants": digests}
    _write(directory / MANIFEST, dumps(manifest))
    return EnvironmentResult(environment, revision, n, len(keys),
                             {k: len(s) for k, s in zip(keys, enabled)}, directory)


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
        inventory = project.inventories[env]
        build = Path(tempfile.mkdtemp(prefix=f".{env}.build-", dir=out))
        try:
            result = render_environment(flags, inventory.tenants, env, revision, build, progress)
            swap_into_place(build, out / env)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        result.path = out / env
        results.append(result)
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
    return CompileResult(envs, result, out)
