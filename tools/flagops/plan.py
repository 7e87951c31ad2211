"""Plan: which tenants a change turns on and off, per environment, before anyone merges.

The flags at ``base`` (a git revision) and at ``head`` (a revision, or the working tree with
its uncommitted changes) are evaluated against the same tenant inventories, the head's. Only
flags whose definition changed are evaluated, and a flag whose value-deciding part (state,
pct, scope) is unchanged is evaluated once: the same definition against the same tenants
gives the same result.

The head must be valid (it is what would be published). An invalid base is still planned,
since it is what the branch was cut from: its problems are reported, and each of its flags
that fails validation counts as off for every tenant (the compiler refuses to publish it).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from .errors import FlagopsError, InvalidInputError, UnknownEnvironmentError, UsageError
from .git import GitSource, Repository, require_repository
from .history import SHORT, semantic_changes
from .loading import FLAG_SUFFIX, FLAGS_DIR, SCHEMA_DIR, TENANTS_DIR, FsSource, Project, Source, load_flags, load_project
from .impact import RISK_ROLLOUT_JUMP, compare
from .matrix import TenantIndex, normalise_flag
from .problems import Problem
from .schemas import SCHEMA_FILES, Schemas
from .validation import flag_problems, validate_project

__all__ = ["EnvironmentPlan", "FlagPlan", "Plan", "make_plan",
           "RISK_ROLLOUT_JUMP", "WORKTREE"]

WORKTREE = "worktree"


@dataclass
class FlagPlan:
    """One changed flag in one environment."""

    key: str
    action: str  # created | updated | deleted
    changes: list[dict[str, Any]]
    enabled_before: int
    enabled_after: int
    tenant_count: int
    turned_on: list[str]
    turned_off: list[str]
    by_plan: dict[str, dict[str, int]]
    risks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The contract form (risks are shown in text and markdown only)."""
        return {"key": self.key, "action": self.action, "changes": self.changes,
                "enabledBefore": self.enabled_before, "enabledAfter": self.enabled_after,
                "tenantCount": self.tenant_count, "turnedOn": self.turned_on,
                "turnedOff": self.turned_off, "byPlan": self.by_plan}


@dataclass
class EnvironmentPlan:
    environment: str
    tenants: int
    flags: list[FlagPlan] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tenants": self.tenants, "flags": [f.to_dict() for f in self.flags]}


@dataclass
class Plan:
    base: str
    head: str  # a commit, or WORKTREE
    environments: dict[str, EnvironmentPlan]
    #: Errors found in the base; its flags named here were counted as off.
    base_problems: list[Problem] = field(default_factory=list)
    invalid_base_flags: list[str] = field(default_factory=list)
    #: The commit the head is (for the working tree: its HEAD commit, None before the first one).
    head_commit: Optional[str] = None
    #: The head is the working tree and it holds uncommitted changes to flags/, tenants/ or schema/.
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head, "headCommit": self.head_commit, "dirty": self.dirty,
                "environments": {env: p.to_dict() for env, p in self.environments.items()}}

    @property
    def head_label(self) -> str:
        """The head as a reader names it: ``1a2b3c4d5e6f``, or ``1a2b3c4d5e6f-dirty``."""
        if self.head_commit is None:
            return "working tree (no commit yet)" if self.head == WORKTREE else self.head[:SHORT]
        return self.head_commit[:SHORT] + ("-dirty" if self.dirty else "")

    @property
    def risks(self) -> list[tuple[str, str, str]]:
        """(environment, key, message) of every risky change."""
        return [(env, f.key, r) for env, p in self.environments.items() for f in p.flags for r in f.risks]

    @property
    def changed_keys(self) -> list[str]:
        return sorted({f.key for p in self.environments.values() for f in p.flags})


# --------------------------------------------------------------------------- loading


def _schemas_from(source: Source, fallback: Schemas) -> Schemas:
    """The schemas of a revision (its schema/ files), else the given ones."""
    docs: dict[str, dict[str, Any]] = {}
    for name in SCHEMA_FILES:
        rel = f"{SCHEMA_DIR}/{name}.schema.json"
        try:
            docs[name] = json.loads(source.read(rel))
        except (FileNotFoundError, KeyError):
            docs[name] = fallback.documents[name]
        except ValueError as exc:
            raise FlagopsError(f"{rel} at {source.label} is not valid JSON: {exc}") from exc
    return Schemas(docs)


def _flag_problem_stems(problems: Iterable[Problem]) -> set[str]:
    prefix = f"{FLAGS_DIR}/"
    return {p.path[len(prefix): -len(FLAG_SUFFIX)] for p in problems
            if p.severity == "error" and p.path.startswith(prefix) and p.path.endswith(FLAG_SUFFIX)}


def _base_flag_errors(base: Project, head: Project, schemas: Schemas) -> list[Problem]:
    """Errors of the base's flags against the head's (already validated) inventories."""
    known_tenants: set[str] = set()
    known_partners: set[str] = set()
    for inventory in head.inventories.values():
        for t in inventory.tenants:
            known_tenants.add(t["slug"])
            if t.get("partnerSlug") is not None:
                known_partners.add(t["partnerSlug"])
    # A base from before flags/ existed simply has no flags: that is no problem of the base.
    problems = [p for p in base.problems if p.rule != "missing-directory"]
    today = _dt.date.today()
    for stem, doc in sorted(base.flags.items()):
        if isinstance(doc.data, dict):
            problems.extend(flag_problems(stem, doc, schemas, known_tenants, known_partners, "error", today))
    return sorted((p for p in problems if p.severity == "error"),
                  key=lambda p: (p.path, p.line, p.col, p.rule))


# --------------------------------------------------------------------------- planning


def _plan_environment(environment: str, tenants: Sequence[Mapping[str, Any]],
                      base: Mapping[str, Mapping[str, Any]], head: Mapping[str, Mapping[str, Any]],
                      broken_base: set[str], plans_order: Sequence[str]) -> EnvironmentPlan:
    result = EnvironmentPlan(environment, len(tenants))
    index: Optional[TenantIndex] = None
    for key in sorted(set(base) | set(head)):
        before, after = base.get(key), head.get(key)
        if before is not None and after is not None and before == after and key not in broken_base:
            continue
        changes = semantic_changes(before, after)
        if before is not None and after is not None and not changes and key not in broken_base:
            continue  # a pure formatting change decides nothing
        if index is None:
            index = TenantIndex.build(tenants)
        action = "created" if before is None else "deleted" if after is None else "updated"
        # A base flag that fails validation counts as off: the compiler refuses to publish it.
        broken = key in broken_base
        same = (before is not None and after is not None and not broken
                and normalise_flag(before) == normalise_flag(after))  # same tenants: evaluate once
        impact = compare(key, before, after, index, environment, plans_order,
                         before_column=np.zeros(len(index), dtype=bool) if broken else None, same=same)
        if before is not None and after is not None and not changes and not impact.changed:
            continue
        result.flags.append(FlagPlan(
            key=key, action=action, changes=changes, enabled_before=impact.enabled_before,
            enabled_after=impact.enabled_after, tenant_count=impact.total, turned_on=impact.turned_on,
            turned_off=impact.turned_off, by_plan=impact.by_plan, risks=impact.risks))
    return result


def make_plan(root: Path, base: str, head: Optional[str] = None, *,
              environments: Optional[Sequence[str]] = None) -> Plan:
    """Plan the change from ``base`` to ``head`` (None: the working tree) at the repository ``root``."""
    root = Path(root)
    with require_repository(root, "plan compares git revisions",
                            hint="run flagops plan from a clone of the flags repository") as r:
        return _make_plan(root, r, base, head, environments)


def _make_plan(root: Path, r: Repository, base: str, head: Optional[str],
               environments: Optional[Sequence[str]]) -> Plan:
    base_source = GitSource(r.repo, base, prefix=r.prefix)
    builtin = Schemas.load(root / SCHEMA_DIR)
    head_source: Source
    if head is None:
        head_source, head_label = FsSource(root), WORKTREE
        schemas = builtin
    else:
        git_head = GitSource(r.repo, head, prefix=r.prefix)
        head_source, head_label = git_head, git_head.sha
        schemas = _schemas_from(git_head, builtin)

    head_project = load_project(head_source, schemas.environments)
    head_result = validate_project(head_project, schemas)
    if head_result.errors:
        where = "the working tree" if head is None else f"--head {head}"
        raise InvalidInputError(f"{len(head_result.errors)} error(s) in {where}; fix them before planning "
                                "(flagops validate)", head_result.problems)

    # The base's flags, judged against the head's inventories: the tenants a merge would meet.
    base_project = Project(base_source)
    load_flags(base_source, base_project)
    base_errors = _base_flag_errors(base_project, head_project, schemas)
    broken = _flag_problem_stems(base_errors)

    env_list = list(dict.fromkeys(environments or []))
    for env in env_list:
        if env not in schemas.environments:
            raise UnknownEnvironmentError(env, schemas.environments)
        if env not in head_project.inventories:
            raise UsageError(f'no tenant inventory for "{env}"', hint=f"add tenants/{env}.yaml")
    if not env_list:
        env_list = sorted(head_project.inventories)

    base_flags = base_project.flag_data()
    head_flags = head_project.flag_data()
    plans = {env: _plan_environment(env, head_project.inventories[env].tenants, base_flags, head_flags,
                                    broken, schemas.plans)
             for env in env_list}
    head_commit, dirty = (git_head.sha, False) if head is not None else _worktree_head(r)
    return Plan(base_source.sha, head_label, plans, base_errors, sorted(broken), head_commit, dirty)


def _worktree_head(r: Repository) -> tuple[Optional[str], bool]:
    """The working tree's HEAD commit, and whether the inputs a plan reads differ from it."""
    sha = r.head()
    if sha is None:  # no commit yet
        return None, True
    return sha, bool(r.status(*(r.path(name) for name in (FLAGS_DIR, TENANTS_DIR, SCHEMA_DIR))).strip())
