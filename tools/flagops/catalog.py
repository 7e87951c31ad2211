"""The catalog: every flag's definition with its git history, for tools that have no git.

``OUT/catalog.json`` (written by ``compile``) holds, per flag, its definition (its fields) plus
``createdAt``, ``updatedAt``, ``updatedBy`` (the author's email) and ``history``: its newest
20 history entries, in the form ``flagops history --format json`` prints. One pass over the
log serves every flag. Outside a git repository these are null and empty, not an error; on a
shallow clone they hold what the clone has (``createdAt`` is null when the creation is not in it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from .fsutil import atomic_write
from .layout import CATALOG, SCHEMA_VERSION, dumps
from .git import flags_revision, may_be_in_git

__all__ = ["CATALOG", "HISTORY_CAP", "build_catalog", "catalog_bytes", "write_catalog"]

#: Entries kept per flag; the full history is one ``flagops history KEY`` away.
HISTORY_CAP = 20


def _history_by_key(root: Path) -> Optional[dict[str, list[dict[str, Any]]]]:
    """Every flag's history, newest first; None outside git (or without a git binary)."""
    if not may_be_in_git(root):
        return None
    import git

    from .history import open_repo, scan_history  # here: git and the history reader only when needed

    try:
        r = open_repo(root)
        if r is None:
            return None
        try:
            scan = scan_history(r)
        finally:
            r.repo.close()
    except (git.GitCommandNotFound, git.InvalidGitRepositoryError):
        return None
    by_key: dict[str, list[dict[str, Any]]] = {}
    for entry in scan.entries:
        by_key.setdefault(entry["key"], []).append(entry)
    return by_key


_UNSET: Any = object()


def build_catalog(root: Path, flags: Mapping[str, Mapping[str, Any]], *,
                  revision: Optional[str] = _UNSET) -> dict[str, Any]:
    """The catalog of ``flags`` (key -> definition, as compiled) in the repository at ``root``.

    ``revision`` is the compile's own (read from git when not given).
    """
    root = Path(root)
    histories = _history_by_key(root) or {}
    out: dict[str, Any] = {}
    for key, definition in sorted(flags.items()):
        entries = histories.get(key, [])
        created = next((e for e in entries if e["action"] == "created"), None)
        newest = entries[0] if entries else None
        out[key] = {
            **dict(definition),
            "key": key,
            "createdAt": created["date"] if created else None,
            "updatedAt": newest["date"] if newest else None,
            "updatedBy": newest["authorEmail"] if newest else None,
            "history": entries[:HISTORY_CAP],
        }
    if revision is _UNSET:
        revision = flags_revision(root)
    return {"schemaVersion": SCHEMA_VERSION, "revision": revision, "flags": out}


def catalog_bytes(root: Path, flags: Mapping[str, Mapping[str, Any]], *,
                  revision: Optional[str] = _UNSET) -> bytes:
    """The canonical bytes of ``catalog.json``."""
    return dumps(build_catalog(root, flags, revision=revision))


def write_catalog(root: Path, flags: Mapping[str, Mapping[str, Any]], out: Path, *,
                  revision: Optional[str] = _UNSET) -> Path:
    """Build the catalog and write ``out/catalog.json`` (replaced atomically)."""
    path = Path(out) / CATALOG
    atomic_write(path, catalog_bytes(root, flags, revision=revision), parents=True, durable=False)
    return path
