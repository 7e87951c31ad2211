"""The dashboard: a static site over the flags, their reach, their staleness and their history.

``index.html`` holds the flags table (state, rollout, scope, owner, "~N of M tenants" per
environment, last change, stale and expiry badges) and a search box; ``flags/<key>.html`` one
page per flag (definition, enabled tenants per environment, the whole history timeline). Plain
HTML and CSS rendered with Jinja2, a few lines of inline JavaScript for the search only, no
network requests: it works from ``file://`` and beside the published bundles. The output is
deterministic for a given repository state, and no path has a ``tenants`` segment (the bucket
policy makes those public).
"""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from flagops_client.evaluation import AXES

from .errors import FlagopsError
from .fsutil import staging_directory, swap_directory
from .git import flags_revision
from .listing import scope_summary
from .loading import FLAG_SUFFIX, FLAGS_DIR
from .matrix import TenantIndex, enabled_tenants
from .render import TEMPLATES_DIR, render, when
from .stale import DEFAULT_DAYS, find_stale, last_changes
from .validation import require_valid

__all__ = ["DashboardResult", "build_dashboard", "dashboard_pages", "expiry_status", "MARKER"]

#: Written into every dashboard directory, so a rebuild only ever replaces a dashboard.
MARKER = ".flagops-dashboard"
STYLESHEET = "dashboard.css"
#: Enabled tenants listed per environment on a flag page; the count is always exact.
TENANT_LIST_LIMIT = 500
#: An expiry this close is flagged on the table.
EXPIRY_WARNING_DAYS = 30


@dataclass
class DashboardResult:
    out: Path
    flags: int
    pages: int
    notes: list[str] = field(default_factory=list)


def expiry_status(value: Any, today: _dt.date) -> Optional[dict[str, Any]]:
    """The expiry badge of a flag: its date, "expired", "soon" (within 30 days) or "later"."""
    if value is None:
        return None
    try:
        date = value if isinstance(value, _dt.date) else _dt.date.fromisoformat(str(value))
    except ValueError:
        return {"date": str(value), "status": "unknown", "days": None}
    days = (date - today).days
    status = "expired" if days < 0 else ("soon" if days <= EXPIRY_WARNING_DAYS else "later")
    return {"date": date.isoformat(), "status": status, "days": days}


def _history(root: Path, notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every flag's history from git, newest first; empty (with a note) when git cannot tell."""
    import git

    from .history import flag_history

    try:
        entries = flag_history(root)
    except FlagopsError as exc:
        notes.append(f"no history: {exc.message}")
        return {}
    except git.GitCommandNotFound:
        notes.append("no history: the git command is not installed")
        return {}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        shown = dict(entry)
        shown["when"] = when(entry["date"])
        by_key.setdefault(entry["key"], []).append(shown)
    return by_key


def _deleted_flags(history: Mapping[str, list[dict[str, Any]]], current: set[str]) -> list[dict[str, Any]]:
    """Flags whose newest change deleted them: listed with a badge, their last definition and history."""
    out = []
    for key, entries in sorted(history.items()):
        if key in current or not entries or entries[0]["action"] != "deleted":
            continue
        last = {c["field"]: c["before"] for c in entries[0]["changes"]}
        scope = {axis: last.get(f"scope.{axis}") or [] for axis in AXES}
        state = last.get("state") or "off"
        out.append({
            "key": key, "description": last.get("description") or "", "owner": last.get("owner") or "",
            "state": state, "pct": None, "scope": scope_summary(scope),
            "scope_axes": [(axis, list(scope[axis])) for axis in AXES], "expiry": None, "stale": None,
            "reach": [], "last": entries[0], "history": entries, "source": "", "href": f"flags/{key}.html",
            "deleted": entries[0],
        })
    return out


def _source(root: Path, key: str) -> str:
    try:
        return (root / FLAGS_DIR / f"{key}{FLAG_SUFFIX}").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def dashboard_pages(root: Path, *, days: int = DEFAULT_DAYS, now: Optional[_dt.datetime] = None,
                    tenant_limit: int = TENANT_LIST_LIMIT) -> tuple[dict[str, bytes], list[str], int]:
    """Every file of the dashboard as ``{relative path: bytes}``, notes, and the flag count."""
    root = Path(root)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    today = now.date()
    project, schemas, _ = require_valid(root, today=today)
    notes: list[str] = []
    order = {env: i for i, env in enumerate(schemas.environments)}
    environments = sorted(project.inventories, key=lambda e: (order.get(e, len(order)), e))
    indexes = {env: TenantIndex.build(project.inventories[env].tenants) for env in environments}
    history_notes: list[str] = []
    history = _history(root, history_notes)
    notes += history_notes
    changes = last_changes(root)
    # The same indexes (and their rollout buckets) serve both: each bucket is hashed once.
    stale_found, stale_notes = find_stale(root, days=days, now=now, project=project, changes=changes,
                                          indexes=indexes)
    notes += [n for n in stale_notes if n not in notes]
    stale = {s.key: s for s in stale_found}

    flags: list[dict[str, Any]] = []
    for key, flag in sorted(project.flag_data().items()):
        reach = []
        for env in environments:
            index = indexes[env]
            on = sorted(enabled_tenants(key, flag, index, env))
            slugs = [index.tenants[i]["slug"] for i in on[:tenant_limit]]
            reach.append({"environment": env, "enabled": len(on), "total": len(index),
                          "pct": (100.0 * len(on) / len(index)) if len(index) else 0.0,
                          "slugs": slugs, "more": max(0, len(on) - tenant_limit)})
        entries = history.get(key, [])
        scope = flag.get("scope") or {}
        state = flag.get("state", "off")
        flags.append({
            "key": key,
            "description": flag.get("description") or "",
            "owner": flag.get("owner") or "",
            "state": state,
            "pct": int(flag.get("pct") or 0) if state == "rollout" else (100 if state == "on" else None),
            "scope": scope_summary(scope),
            "scope_axes": [(axis, list(scope.get(axis) or [])) for axis in AXES],
            "expiry": expiry_status(flag.get("expires"), today),
            "stale": stale[key].to_dict() if key in stale else None,
            "reach": reach,
            "last": entries[0] if entries else None,
            "history": entries,
            "source": _source(root, key),
            "href": f"flags/{key}.html",
            "deleted": None,
        })
    flags += _deleted_flags(history, set(project.flag_data()))

    revision = flags_revision(root)
    context = {"flags": flags, "environments": environments, "revision": revision, "days": days,
               "notes": notes, "stylesheet": STYLESHEET, "history_known": not history_notes}
    files: dict[str, bytes] = {
        "index.html": render("dashboard/index.html.j2", base="", title="Feature flags", **context).encode("utf-8"),
        STYLESHEET: (TEMPLATES_DIR / "dashboard" / STYLESHEET).read_bytes(),
        MARKER: b"flagops dashboard: this directory is replaced on every build\n",
    }
    for flag in flags:
        files[flag["href"]] = render("dashboard/flag.html.j2", base="../", title=flag["key"], flag=flag,
                                     **context).encode("utf-8")
    return files, notes, sum(1 for f in flags if not f["deleted"])


def _replace_dir(out: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` aside and swap the directory in; only an empty dir or a dashboard is replaced."""
    if out.exists():
        if not out.is_dir():
            raise FlagopsError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise FlagopsError(f"{out} is not empty and holds no dashboard; refusing to replace it",
                               hint="choose an empty or new directory for --out")
    tmp = staging_directory(out.parent, f".{out.name}.build-")
    try:
        for rel, data in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        swap_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_dashboard(root: Path, out: Path, *, days: int = DEFAULT_DAYS,
                    now: Optional[_dt.datetime] = None) -> DashboardResult:
    """Render the dashboard of the repository at ``root`` into ``out`` (replaced as a whole)."""
    files, notes, count = dashboard_pages(root, days=days, now=now)
    _replace_dir(Path(out), files)
    return DashboardResult(Path(out), count, sum(1 for p in files if p.endswith(".html")), notes)
