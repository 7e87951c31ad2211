"""Impact: who a flag change turns on and off, per environment, and whether it is risky.

One computation serves ``flagops plan``, the edits (``set``, ``kill``, ``new``, ``delete``,
``restore``) and the console's live preview, so all three show the same exact numbers. A
flag is evaluated for a whole inventory at once with the vectorised evaluator
(:func:`flagops.matrix.flag_column`); the tenant indexes of a :class:`Repository` are built
once and reused by every preview, so a preview costs two columns per environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .loading import SCHEMA_DIR, TENANTS_DIR, FsSource, Project, load_project
from .matrix import TenantIndex, flag_column
from .schemas import Schemas

__all__ = ["EXAMPLES", "RISK_ROLLOUT_JUMP", "EnvironmentImpact", "Preview", "Repository", "compare",
           "impact_of", "preview", "risks_of"]

#: A rollout that moves by more than this many points in one change is risky.
RISK_ROLLOUT_JUMP = 50
#: How many tenants a report names per list before it says "and N more".
EXAMPLES = 10


@dataclass
class EnvironmentImpact:
    """One flag in one environment, before and after a change; the counts are exact."""

    environment: str
    total: int
    enabled_before: int
    enabled_after: int
    turned_on: list[str]  # slugs, sorted
    turned_off: list[str]
    by_plan: dict[str, dict[str, int]]  # plan -> {"on": n, "off": n}, in the schema's plan order
    risks: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.turned_on or self.turned_off)

    def describe(self, examples: int = EXAMPLES) -> str:
        """``production: 1 of 5 tenants -> 5 of 5 tenants (+4 turn on: beta, ...)``."""
        line = (f"{self.enabled_before} of {self.total} tenants -> "
                f"{self.enabled_after} of {self.total} tenants")
        flips = []
        for sign, what, slugs in (("+", "on", self.turned_on), ("-", "off", self.turned_off)):
            if slugs:
                shown = ", ".join(slugs[:examples])
                more = f" and {len(slugs) - examples} more" if len(slugs) > examples else ""
                flips.append(f"{sign}{len(slugs)} turn {what}: {shown}{more}")
        return f"{self.environment}: {line}" + (f" ({'; '.join(flips)})" if flips else " (nothing flips)")

    def to_dict(self, examples: Optional[int] = None) -> dict[str, Any]:
        """Counts always; the slug lists whole, or the first ``examples`` of each."""
        on = self.turned_on if examples is None else self.turned_on[:examples]
        off = self.turned_off if examples is None else self.turned_off[:examples]
        return {"environment": self.environment, "total": self.total,
                "enabledBefore": self.enabled_before, "enabledAfter": self.enabled_after,
                "turnedOnCount": len(self.turned_on), "turnedOffCount": len(self.turned_off),
                "turnedOn": on, "turnedOff": off, "byPlan": self.by_plan, "risks": list(self.risks)}


# --------------------------------------------------------------------------- risks


def _rollout_level(flag: Optional[Mapping[str, Any]]) -> Optional[int]:
    """How much of its scope a flag reaches, in percent; None for targeted (no percentage)."""
    if flag is None:
        return 0
    state = flag.get("state")
    if state == "rollout":
        pct = flag.get("pct")
        return pct if isinstance(pct, int) and not isinstance(pct, bool) else 0
    if state == "on":
        return 100
    if state == "targeted":
        return None
    return 0


def risks_of(impact: EnvironmentImpact, before: Optional[Mapping[str, Any]],
             after: Optional[Mapping[str, Any]]) -> list[str]:
    """The risk checks: every tenant of an environment, a rollout move of more than
    :data:`RISK_ROLLOUT_JUMP` points, a deletion of a flag that is still on."""
    risks = []
    deleted = before is not None and after is None
    if impact.changed and not deleted:
        a, b = _rollout_level(before), _rollout_level(after)
        rollout = "rollout" in ((before or {}).get("state"), (after or {}).get("state"))
        if rollout and a is not None and b is not None and abs(b - a) > RISK_ROLLOUT_JUMP:
            verb = "jumps" if b > a else "drops"
            risks.append(f"rollout {verb} from {a}% to {b}% at once (more than {RISK_ROLLOUT_JUMP} points)")
    if (impact.total > 0 and impact.enabled_after == impact.total
            and impact.enabled_before < impact.total):
        risks.append(f"turned on for every tenant of {impact.environment} ({impact.total})")
    if deleted and impact.enabled_before > 0:
        risks.append(f"deleted while still on for {impact.enabled_before} of {impact.total} tenants")
    return risks


# --------------------------------------------------------------------------- the computation


def _column(key: str, flag: Optional[Mapping[str, Any]], index: TenantIndex, environment: str) -> np.ndarray:
    if not isinstance(flag, Mapping):
        return np.zeros(len(index), dtype=bool)
    return flag_column(key, flag, index, environment)


def compare(key: str, before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
            index: TenantIndex, environment: str, plans_order: Sequence[str] = (), *,
            before_column: Optional[np.ndarray] = None, same: bool = False) -> EnvironmentImpact:
    """The flag before and after (None: no such flag) in one environment.

    ``before_column`` replaces the evaluation of ``before`` (the plan passes zeros for a base
    flag that fails validation, while the risk checks still see what it said); ``same`` says
    that both decide the same (equal state, pct and scope), so ``after`` is not evaluated.
    """
    was = _column(key, before, index, environment) if before_column is None else before_column
    now = was if same else _column(key, after, index, environment)
    up = np.flatnonzero(now & ~was)
    down = np.flatnonzero(was & ~now)
    tenants = index.tenants
    axes = index.axes()
    names = list(axes.plan_ids) + ["None"]  # the last code: a tenant without a plan
    on = np.bincount(axes.plan_codes[up], minlength=len(names))
    off = np.bincount(axes.plan_codes[down], minlength=len(names))
    by_plan = {str(names[c]): {"on": int(on[c]), "off": int(off[c])}
               for c in range(len(names)) if on[c] or off[c]}
    rank = {p: n for n, p in enumerate(plans_order)}
    impact = EnvironmentImpact(
        environment=environment, total=len(index),
        enabled_before=int(np.count_nonzero(was)), enabled_after=int(np.count_nonzero(now)),
        turned_on=sorted(tenants[i]["slug"] for i in up.tolist()),
        turned_off=sorted(tenants[i]["slug"] for i in down.tolist()),
        by_plan={p: by_plan[p] for p in sorted(by_plan, key=lambda p: (rank.get(p, len(rank)), p))})
    impact.risks = risks_of(impact, before, after)
    return impact


def _usable(tenants: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [t for t in tenants if isinstance(t, dict) and {"id", "slug", "plan"} <= t.keys()]


def impact_of(key: str, before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
              project: Project, schemas: Schemas) -> list[EnvironmentImpact]:
    """The change in every environment that has an inventory, in the schema's order (edits)."""
    return Repository.from_project(project, schemas).compare(key, before, after)


# --------------------------------------------------------------------------- previews


@dataclass
class Preview:
    """What a proposed flag would change, per environment (the console's live preview)."""

    key: str
    environments: list[EnvironmentImpact]

    @property
    def risks(self) -> list[tuple[str, str]]:
        """(environment, message) of every risk."""
        return [(e.environment, r) for e in self.environments for r in e.risks]

    @property
    def risky(self) -> bool:
        return any(e.risks for e in self.environments)

    def to_dict(self, examples: Optional[int] = EXAMPLES) -> dict[str, Any]:
        return {"key": self.key, "risky": self.risky,
                "risks": [{"environment": env, "message": m} for env, m in self.risks],
                "environments": {e.environment: e.to_dict(examples) for e in self.environments}}


@dataclass
class Repository:
    """A repository's flags and tenant indexes, built once for many impact computations.

    The indexes carry the rollout buckets they computed, so previewing one flag again and
    again (a slider) hashes each tenant once. Build it again when the inventories change
    (:meth:`load` with ``previous`` reuses what is unchanged).
    """

    root: Optional[Path]
    schemas: Schemas
    project: Project
    environments: list[str]  # with an inventory, in the schema's order
    indexes: dict[str, TenantIndex]
    signature: tuple[Any, ...] = ()

    @property
    def flags(self) -> dict[str, dict[str, Any]]:
        return self.project.flag_data()

    @classmethod
    def from_project(cls, project: Project, schemas: Schemas, root: Optional[Path] = None,
                     signature: tuple[Any, ...] = ()) -> "Repository":
        order = {env: i for i, env in enumerate(schemas.environments)}
        environments = sorted(project.inventories, key=lambda e: (order.get(e, len(order)), e))
        indexes = {env: TenantIndex.build(_usable(project.inventories[env].tenants)) for env in environments}
        return cls(root, schemas, project, environments, indexes, signature)

    @classmethod
    def load(cls, root: Path, previous: Optional["Repository"] = None) -> "Repository":
        """Load the working tree at ``root``; keeps ``previous``'s indexes if the tenants are unchanged."""
        root = Path(root)
        schemas = Schemas.load(root / SCHEMA_DIR)
        project = load_project(FsSource(root), schemas.environments)
        signature = _tenants_signature(root)
        if previous is not None and previous.signature == signature and signature:
            return cls(root, schemas, project, previous.environments, previous.indexes, signature)
        return cls.from_project(project, schemas, root, signature)

    def compare(self, key: str, before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
                environments: Optional[Sequence[str]] = None) -> list[EnvironmentImpact]:
        return [compare(key, before, after, self.indexes[env], env, self.schemas.plans)
                for env in (environments or self.environments) if env in self.indexes]


def _tenants_signature(root: Path) -> tuple[Any, ...]:
    """(name, size, mtime) of every inventory file: cheap, and enough to notice an edit."""
    folder = root / TENANTS_DIR
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return ()
    out = []
    for name in names:
        try:
            st = os.stat(folder / name)
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def preview(repository: Repository, key: str, proposed: Optional[Mapping[str, Any]], *,
            current: Any = ..., environments: Optional[Sequence[str]] = None) -> Preview:
    """The exact impact of replacing flag ``key`` with ``proposed`` (None: deleting it).

    ``current`` defaults to the flag as the repository holds it (None for a new flag).
    """
    before = repository.flags.get(key) if current is ... else current
    return Preview(key, repository.compare(key, before, proposed, environments))
