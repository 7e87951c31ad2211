"""What the console's pages show, computed from the clone: the flags table, a flag, the search.

A :class:`Workspace` keeps one :class:`~flagops.impact.Repository` (flags, inventories and
tenant indexes with their rollout buckets) and the git history, and rebuilds them only when a
file under ``flags/``, ``tenants/`` or ``schema/`` or the checked-out commit changed. So a page
or a live preview after the first costs the evaluation of the flags involved, not a reload.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from flagops_client.evaluation import AXES, STATES

from ..dashboard import expiry_status
from ..edit import flag_rel
from ..errors import FlagopsError
from ..history import flag_history, when
from ..impact import Repository
from ..listing import scope_summary
from ..loading import FLAG_SUFFIX, FLAGS_DIR, SCHEMA_DIR, TENANTS_DIR
from ..matrix import flag_column
from ..problems import Problem, Result
from ..stale import DEFAULT_DAYS, find_stale, last_changes
from ..validation import validate_project

__all__ = ["Workspace", "Snapshot", "STATES"]

#: Tenant slugs offered by the completion, at most.
COMPLETIONS = 20


def _signature(root: Path) -> tuple[Any, ...]:
    """Cheap fingerprint of what the pages show: file stats and the checked-out commit."""
    out: list[Any] = []
    for folder in (FLAGS_DIR, TENANTS_DIR, SCHEMA_DIR):
        try:
            names = sorted(os.listdir(root / folder))
        except OSError:
            out.append((folder, None))
            continue
        for name in names:
            try:
                st = os.stat(root / folder / name)
            except OSError:
                continue
            out.append((folder, name, st.st_size, st.st_mtime_ns))
    # The checked-out commit: HEAD and the ref it names (not the index, which git status
    # refreshes on its own and which decides nothing shown here).
    git_dir = _git_dir(root)
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        head = ""
    out.append(("HEAD", head))
    ref = head.partition("ref:")[2].strip()
    for path in ([git_dir / ref] if ref else []) + [git_dir / "packed-refs"]:
        try:
            out.append((path.name, os.stat(path).st_mtime_ns))
        except OSError:
            out.append((path.name, None))
    return tuple(out)


def _git_dir(root: Path) -> Path:
    for folder in (root, *root.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a worktree: "gitdir: PATH"
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            return (folder / text.partition(":")[2].strip()).resolve()
    return root / ".git"


@dataclass
class Snapshot:
    """Everything the pages need, for one state of the clone."""

    repository: Repository
    result: Result
    rows: list[dict[str, Any]]
    history: dict[str, list[dict[str, Any]]]
    deleted: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def environments(self) -> list[str]:
        return self.repository.environments

    @property
    def flags(self) -> dict[str, dict[str, Any]]:
        return self.repository.flags

    def row(self, key: str) -> Optional[dict[str, Any]]:
        return next((r for r in self.rows if r["key"] == key), None)

    def problems_of(self, key: str) -> list[Problem]:
        rel = f"{FLAGS_DIR}/{key}{FLAG_SUFFIX}"
        return [p for p in self.result.problems if p.path == rel]

    # ------------------------------------------------------------------ inventories

    def tenant(self, slug: str) -> dict[str, Mapping[str, Any]]:
        """The tenant with this slug in each environment that has it."""
        out = {}
        for env in self.environments:
            index = self.repository.indexes[env]
            position = index.by_slug.get(slug)
            if position is not None:
                out[env] = index.tenants[position]
        return out

    @cached_property
    def known_tenants(self) -> set[str]:
        """Every tenant slug of every inventory (what a scope may name); read-only."""
        return set(slug for env in self.environments for slug in self.repository.indexes[env].by_slug)

    @cached_property
    def known_partners(self) -> set[str]:
        return set(p for env in self.environments for p in self.repository.indexes[env].partners)

    def partners(self) -> list[str]:
        return sorted(self.known_partners)

    def complete_tenants(self, prefix: str, limit: int = COMPLETIONS) -> list[dict[str, Any]]:
        """Tenant slugs starting with ``prefix`` (then containing it), with plan and environments."""
        text = prefix.strip().lower()
        seen: dict[str, dict[str, Any]] = {}
        for env in self.environments:
            for t in self.repository.indexes[env].tenants:
                slug = t["slug"]
                if text in slug:
                    entry = seen.setdefault(slug, {"slug": slug, "plan": t.get("plan"), "name": t.get("name"),
                                                   "environments": []})
                    entry["environments"].append(env)
        ranked = sorted(seen.values(), key=lambda e: (not e["slug"].startswith(text), e["slug"]))
        return ranked[:limit]

    # ------------------------------------------------------------------ search

    def search(self, query: str) -> dict[str, Any]:
        """The keys matching every term of ``query``.

        A term ``field:value`` (key, owner, state, plan, tenant, partner, env) asks one field; a
        bare term equal to a state, a tenant slug or a plan means that state, the flags *on*
        for that tenant (in any environment), or the flags whose scope names the plan; any
        other term is looked for in the key, description, owner and the scope's slugs.
        """
        plans = set(self.repository.schemas.plans)
        terms = query.lower().split()
        tenants: dict[str, dict[str, list[str]]] = {}
        keys = []
        for row in self.rows + self.deleted:
            if all(self._matches(row, term, plans, tenants) for term in terms):
                keys.append(row["key"])
        return {"query": query, "keys": keys,
                "tenants": [{"slug": slug, "on": on} for slug, on in tenants.items()]}

    def _on_for(self, slug: str, cache: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
        """{flag key: [environments where it is on for the tenant]}."""
        if slug not in cache:
            on: dict[str, list[str]] = {}
            for env, tenant in self.tenant(slug).items():
                for key, flag in self.repository.project.flag_models().items():
                    if flag.evaluate(tenant, env):
                        on.setdefault(key, []).append(env)
            cache[slug] = on
        return cache[slug]

    def _matches(self, row: Mapping[str, Any], term: str, plans: set[str],
                 tenants: dict[str, dict[str, list[str]]]) -> bool:
        name, sep, value = term.partition(":")
        scope = row.get("scope_axes", {})
        if sep and value and name in ("key", "owner", "state", "plan", "tenant", "partner", "env"):
            if name == "key":
                return value in row["key"]
            if name == "owner":
                return value in (row.get("owner") or "").lower()
            if name == "state":
                return row.get("state") == value
            if name == "plan":
                return value in scope.get("plans", [])
            if name == "tenant":
                return row["key"] in self._on_for(value, tenants)
            if name == "partner":
                return value in scope.get("partnerSlugs", [])
            return value in scope.get("environments", []) or not scope.get("environments")
        if term in STATES:
            return row.get("state") == term
        if self.tenant(term):
            return row["key"] in self._on_for(term, tenants)
        if term in plans:
            return term in scope.get("plans", [])
        haystack = " ".join([row["key"], row.get("description") or "", row.get("owner") or "",
                             *scope.get("tenantSlugs", []), *scope.get("partnerSlugs", [])]).lower()
        return term in haystack


class Workspace:
    """The clone behind the console, with its computed views cached until a file changes."""

    def __init__(self, root: Path, *, stale_days: int = DEFAULT_DAYS):
        self.root = Path(root).resolve()
        self.stale_days = stale_days
        self._lock = threading.Lock()
        self._snapshot: Optional[Snapshot] = None
        self._signature: tuple[Any, ...] = ()
        self._repository: Optional[Repository] = None

    def snapshot(self) -> Snapshot:
        signature = _signature(self.root)
        with self._lock:
            if self._snapshot is None or signature != self._signature:
                self._snapshot = self._build()
                self._signature = signature
            return self._snapshot

    def forget(self) -> None:
        """Rebuild on the next request (after a write whose mtime might not have moved)."""
        with self._lock:
            self._snapshot = None

    def _build(self) -> Snapshot:
        repository = Repository.load(self.root, self._repository)
        self._repository = repository
        now = _dt.datetime.now(_dt.timezone.utc)
        result = validate_project(repository.project, repository.schemas, today=now.date())
        notes: list[str] = []
        history = self._history(notes)
        valid = repository.project.flag_models()
        changes = last_changes(self.root)
        try:
            if result.errors:
                raise FlagopsError(f"{len(result.errors)} error(s) in the working tree (flagops validate)")
            stale_found, stale_notes = find_stale(self.root, days=self.stale_days, now=now,
                                                  project=repository.project, changes=changes,
                                                  indexes=repository.indexes)
            notes += stale_notes
        except FlagopsError as exc:
            stale_found = []
            notes.append(f"stale flags not computed: {exc.message}")
        stale = {s.key: s.to_dict() for s in stale_found}
        pending = self._pending()
        rows = []
        for key, flag in sorted(repository.flags.items()):
            model = valid.get(key)
            reach = []
            for env in repository.environments:
                index = repository.indexes[env]
                enabled = (int(np.count_nonzero(flag_column(key, flag, index, env)))
                           if model is not None else None)
                reach.append({"environment": env, "enabled": enabled, "total": len(index)})
            rows.append(self._row(key, flag, reach, history.get(key, []), stale.get(key), now.date(),
                                  invalid=model is None, pending=key in pending))
        # A flag git knows and the tree no longer has: deleted (committed or not), history kept.
        deleted = [self._deleted_row(key, entries) for key, entries in sorted(history.items())
                   if key not in repository.flags and entries and not (self.root / flag_rel(key)).exists()]
        return Snapshot(repository, result, rows, history, deleted, notes)

    def _row(self, key: str, flag: Mapping[str, Any], reach: list[dict[str, Any]],
             entries: list[dict[str, Any]], stale: Optional[dict[str, Any]], today: _dt.date, *,
             invalid: bool, pending: bool) -> dict[str, Any]:
        scope = flag.get("scope") if isinstance(flag.get("scope"), dict) else {}
        state = flag.get("state") if flag.get("state") in STATES else "off"
        pct = flag.get("pct")
        return {
            "key": key,
            "description": str(flag.get("description") or ""),
            "owner": str(flag.get("owner") or ""),
            "expires": str(flag.get("expires") or ""),
            "state": state,
            "pct": pct if isinstance(pct, int) and not isinstance(pct, bool) else 0,
            "scope": scope_summary(scope),
            "scope_axes": {axis: [str(v) for v in (scope.get(axis) or [])] for axis in AXES},
            "killed": flag.get("killed") if isinstance(flag.get("killed"), dict) else None,
            "reach": reach,
            "last": entries[0] if entries else None,
            "stale": stale,
            "expiry": expiry_status(flag.get("expires"), today),
            "invalid": invalid,
            "pending": pending,
            "deleted": False,
        }

    @staticmethod
    def _deleted_row(key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """The flag as it last was, replayed from its history (oldest first)."""
        fields: dict[str, Any] = {}
        for entry in reversed(entries):
            for change in entry["changes"]:
                fields[change["field"]] = change["before" if entry["action"] == "deleted" else "after"]
        return {"key": key, "description": str(fields.get("description") or ""),
                "owner": str(fields.get("owner") or ""), "state": "deleted", "pct": 0, "scope": "",
                "scope_axes": {axis: [] for axis in AXES}, "killed": None, "last": entries[0], "deleted": True}

    def _history(self, notes: list[str]) -> dict[str, list[dict[str, Any]]]:
        try:
            entries = flag_history(self.root, on_shallow=lambda problem: notes.append(problem.message))
        except FlagopsError as exc:
            notes.append(f"no history: {exc.message}")
            return {}
        by_key: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_key.setdefault(entry["key"], []).append({**entry, "when": when(entry["date"])})
        return by_key

    def _pending(self) -> set[str]:
        """Keys of flag files with changes not committed yet (saved, not proposed)."""
        from .propose import changed_paths

        try:
            paths = changed_paths(self.root)
        except FlagopsError:
            return set()
        prefix = f"{FLAGS_DIR}/"
        return {p[len(prefix):-len(FLAG_SUFFIX)] for p in paths
                if p.startswith(prefix) and p.endswith(FLAG_SUFFIX) and "/" not in p[len(prefix):]}
