"""Read-only views of the flags: the table behind ``flagops list`` and ``flagops show``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional

from flagops_client.evaluation import AXES, normalise_scope

from .errors import UnknownFlagError
from .loading import FLAGS_DIR, FsSource, Project, load_flags

_AXIS_LABELS = {"plans": "plans", "tenantSlugs": "tenants", "partnerSlugs": "partners",
                "environments": "env"}


def scope_summary(scope: Optional[Mapping[str, Any]], *, limit: int = 3) -> str:
    """One line: ``plans: business, enterprise; env: production`` or ``everyone``."""
    parts = []
    for axis in AXES:
        values = [v if isinstance(v, str) else json.dumps(v) for v in (scope or {}).get(axis) or []]
        if values:
            shown = ", ".join(values[:limit]) + (f" +{len(values) - limit}" if len(values) > limit else "")
            parts.append(f"{_AXIS_LABELS[axis]}: {shown}")
    return "; ".join(parts) or "everyone"


def read_flags(root: Path) -> dict[str, dict[str, Any]]:
    """Every flag file that parses to a mapping, keyed by file stem (validation not required)."""
    project = Project(FsSource(root))
    load_flags(FsSource(root), project)
    return project.flag_data()


def _scope_of(flag: Mapping[str, Any]) -> dict[str, list[Any]]:
    """All four axes as lists, whatever an invalid file holds (list and show never need it valid)."""
    scope = flag.get("scope") if isinstance(flag.get("scope"), dict) else {}
    return normalise_scope({axis: (value if isinstance(value, list) else [value] if value is not None else [])
                            for axis, value in scope.items() if axis in AXES})


def _json_safe(value: Any) -> Any:
    """``.nan``/``.inf`` in an invalid file would make ``--format json`` unparseable."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _row(stem: str, flag: Mapping[str, Any]) -> dict[str, Any]:
    row = {
        "key": flag.get("key", stem),
        "description": flag.get("description"),
        "state": flag.get("state"),
        "pct": _json_safe(flag.get("pct")),
        "scope": _scope_of(flag),
        "owner": flag.get("owner"),
        "expires": flag.get("expires"),
    }
    if isinstance(flag.get("killed"), dict):
        row["killed"] = flag["killed"]  # what a kill replaced: flagops restore brings it back
    return row


def flag_summaries(root: Path) -> list[dict[str, Any]]:
    return [_row(stem, flag) for stem, flag in sorted(read_flags(root).items())]


def find_flag(root: Path, key: str) -> dict[str, Any]:
    flags = read_flags(root)
    if key not in flags:
        from .history import SHORT, last_deletion, when

        try:
            deleted = last_deletion(root, key) if not (root / FLAGS_DIR / f"{key}.yaml").exists() else None
        except Exception:  # noqa: BLE001 - git missing or broken: the plain answer still holds
            deleted = None
        if deleted is not None:
            raise UnknownFlagError(key, message=f'no flag "{key}" in {FLAGS_DIR}/: it was deleted in '
                                                f'{deleted["commit"][:SHORT]} on {when(deleted["date"])} by '
                                                f'{deleted["authorEmail"]}; see flagops history {key}')
        raise UnknownFlagError(key, flags, hint="flagops list shows every flag")
    return _row(key, flags[key])
