"""Stale flags: flags that no longer decide anything, and flags past their expiry date.

A flag is stale when it serves the same value to every tenant of every environment (fully on
or fully off, decided by compiling it over every inventory, not by reading its state) and its
file has not changed in git for ``days`` days. A flag past its ``expires`` date is stale too,
whatever it serves. Either way the action is the same: remove the flag and the code it guards.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from .git import run_git
from .loading import FLAGS_DIR, FLAG_SUFFIX, Project
from .matrix import TenantIndex, enabled_tenants
from .validation import require_valid

DEFAULT_DAYS = 90


@dataclass(frozen=True)
class StaleFlag:
    """One stale flag, in the shape of ``flagops stale --format json``."""

    key: str
    reason: str
    since: str  # ISO date: last change of the file, or the expiry date
    owner: Optional[str]
    action: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Served:
    """What a flag serves across every inventory: "on", "off" or "mixed" (or "none": no tenants)."""

    value: str
    enabled: int
    total: int


def served_value(key: str, flag: Mapping[str, Any], indexes: Mapping[str, TenantIndex]) -> Served:
    """Compile the flag over every environment's inventory and say whether it is uniform."""
    enabled = total = 0
    for environment, index in sorted(indexes.items()):
        enabled += len(enabled_tenants(key, flag, index, environment))
        total += len(index)
    if total == 0:
        return Served("none", 0, 0)
    if enabled == 0:
        return Served("off", 0, total)
    if enabled == total:
        return Served("on", enabled, total)
    return Served("mixed", enabled, total)


def last_changes(root: Path) -> Optional[dict[str, _dt.datetime]]:
    """When each flag file last changed: ``{key: committer date}``, from one ``git log`` pass.

    Files with uncommitted changes (or never committed) count as changed now. None when
    ``root`` is not inside a git repository.
    """
    if run_git(root, "rev-parse", "--is-inside-work-tree") is None:
        return None
    now = _dt.datetime.now(_dt.timezone.utc)
    changes: dict[str, _dt.datetime] = {}
    # --relative: paths relative to root even when root is a sub-directory of the repository.
    log = run_git(root, "log", "--format=%x00%ct", "--name-only", "--no-renames", "--relative",
               "--", FLAGS_DIR)
    when: Optional[_dt.datetime] = None
    for line in (log or "").splitlines():
        if line.startswith("\x00"):
            when = _dt.datetime.fromtimestamp(int(line[1:]), _dt.timezone.utc)
        elif line and when is not None:
            key = _flag_key(line)
            if key and key not in changes:  # newest first: the first sighting is the last change
                changes[key] = when
    # Porcelain paths are relative to the top of the work tree: strip root's prefix.
    prefix = (run_git(root, "rev-parse", "--show-prefix") or "").strip()
    status = run_git(root, "status", "--porcelain", "--untracked-files=all", "--no-renames", "--", FLAGS_DIR)
    for line in (status or "").splitlines():
        path = line[3:].strip().strip('"')
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        key = _flag_key(path)
        if key:
            changes[key] = now
    return changes


def _flag_key(path: str) -> Optional[str]:
    p = Path(path.strip().strip('"'))
    if len(p.parts) == 2 and p.parts[0] == FLAGS_DIR and p.suffix == FLAG_SUFFIX:
        return p.stem
    return None


def _parse_date(value: Any) -> Optional[_dt.date]:
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        return None


ACTION_ON = "remove the flag and the code paths for off; keep the new behaviour"
ACTION_OFF = "remove the flag and the code it guards; the feature is not served to anyone"
ACTION_EXPIRED = "roll it out fully or turn it off, then remove the flag and its code"


def find_stale(root: Path, *, days: int = DEFAULT_DAYS, now: Optional[_dt.datetime] = None,
               project: Optional[Project] = None,
               changes: Optional[dict[str, _dt.datetime]] = None,
               indexes: Optional[Mapping[str, TenantIndex]] = None) -> tuple[list[StaleFlag], list[str]]:
    """Every stale flag of the repository at ``root``, sorted by key, and notes for the operator.

    Refuses (InvalidInputError) when the repository does not validate: a flag's value is only
    known for a valid project.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    today = now.date()
    notes: list[str] = []
    if project is None:
        project, _, _ = require_valid(root, today=today)
    if changes is None:
        changes = last_changes(root)
    if changes is None:
        notes.append(f"{root} is not a git repository: only expired flags can be found")
    elif (run_git(root, "rev-parse", "--is-shallow-repository") or "").strip() == "true":
        notes.append("shallow clone: files look changed at its oldest commit; fetch the whole "
                     "history (fetch-depth: 0) for true ages")
    if indexes is None:
        indexes = {env: TenantIndex.build(inv.tenants) for env, inv in project.inventories.items()}
    if not indexes:
        notes.append("no tenant inventory: flags are not checked for serving one value")
    cutoff = now - _dt.timedelta(days=days)

    found: list[StaleFlag] = []
    for key, flag in sorted(project.flag_data().items()):
        owner = flag.get("owner") or None
        reasons: list[str] = []
        since: Optional[str] = None
        action = ACTION_EXPIRED
        changed = changes.get(key) if changes is not None else None
        if changes is not None and changed is not None and changed <= cutoff:
            served = served_value(key, flag, indexes)
            if served.value in ("on", "off"):
                envs = len(indexes)
                reasons.append(f"fully {served.value} for all {served.total} tenants of "
                               f"{envs} environment{'s' * (envs != 1)}, unchanged for "
                               f"{(today - changed.date()).days} days")
                since = changed.date().isoformat()
                action = ACTION_ON if served.value == "on" else ACTION_OFF
        expires = _parse_date(flag.get("expires")) if flag.get("expires") is not None else None
        if expires is not None and expires < today:
            reasons.append(f"expired on {expires.isoformat()}")
            since = since or expires.isoformat()
        if reasons:
            found.append(StaleFlag(key, "; ".join(reasons), since or "", owner, action))
    return found, notes


__all__ = ["DEFAULT_DAYS", "Served", "StaleFlag", "find_stale", "last_changes",
           "served_value"]
