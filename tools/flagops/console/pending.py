"""A flag as the detail page holds it while the operator edits: the change, its text and impact.

The page sends the whole definition it shows; :func:`change_from_form` turns the difference
to the file into the :class:`~flagops.edit.FlagChange` that ``flagops set`` would apply, so a
save is exactly a ``set``. The preview applies that change to the file's text with the same
round-trip code (comments kept), checks the result with the validator's flag rules, and
computes the exact impact with :func:`flagops.impact.preview`, the computation behind
``flagops plan``, over the workspace's cached tenant indexes.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
from typing import Any, Mapping, Optional

from flagops_client.evaluation import AXES

from .. import roundtrip as rt
from ..edit import FlagChange, apply_change, flag_rel
from ..errors import FlagopsError, UsageError
from ..history import semantic_changes
from ..impact import preview as impact_preview
from ..loading import parse_yaml
from ..validation import flag_problems
from .views import STATES, Snapshot

__all__ = ["change_from_form", "digest", "preview"]

_TEXT_FIELDS = ("description", "owner", "expires")


def digest(text: str) -> str:
    """What the page remembers of the file it loaded, to notice an edit made elsewhere."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{what} must be a list of strings")
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def change_from_form(current: Mapping[str, Any], form: Mapping[str, Any]) -> FlagChange:
    """The edit that turns the flag ``current`` into what the form shows."""
    change = FlagChange()
    state = form.get("state", current.get("state"))
    if state not in STATES:
        raise UsageError(f"state must be one of {', '.join(STATES)}")
    if state != current.get("state"):
        change.state = state
    if state == "rollout":
        pct = form.get("pct")
        if isinstance(pct, str) and pct.strip().isdigit():
            pct = int(pct)
        if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
            raise UsageError("pct must be a whole number from 0 to 100")
        if pct != current.get("pct"):
            change.pct = pct
    scope = current.get("scope") if isinstance(current.get("scope"), dict) else {}
    wanted = form.get("scope") or {}
    if not isinstance(wanted, dict):
        raise UsageError("scope must be a mapping of axis to list")
    for axis in AXES:
        if axis not in wanted:
            continue
        now = [str(v) for v in (scope.get(axis) or [])]
        new = _strings(wanted[axis], f"scope.{axis}")
        added = [v for v in new if v not in now]
        removed = [v for v in now if v not in new]
        if added:
            change.add[axis] = added
        if removed:
            change.remove[axis] = removed
    for name in _TEXT_FIELDS:
        if name not in form:
            continue
        value = form[name]
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise UsageError(f"{name} must be text")
        value = value.strip()
        if value != str(current.get(name) or ""):
            setattr(change, name, value)
    return change


def _diff(key: str, before: str, after: str) -> str:
    rel = flag_rel(key)
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{rel}", tofile=f"b/{rel}"))


def preview(snapshot: Snapshot, text: str, key: str, form: Mapping[str, Any],
            today: Optional[_dt.date] = None) -> dict[str, Any]:
    """The edited text, its diff, its problems and its exact impact per environment."""
    repository = snapshot.repository
    current = repository.flags.get(key)
    if current is None:
        raise FlagopsError(f'no flag "{key}" in flags/')
    change = change_from_form(current, form)
    out: dict[str, Any] = {"key": key, "changed": not change.is_empty(), "problems": [], "diff": "",
                           "changes": [], "risky": False, "risks": [], "environments": {}}
    after = current
    new_text = text
    if not change.is_empty():
        y, data = rt.load(text)
        try:
            apply_change(data, change)
        except FlagopsError as exc:
            out["problems"].append({"line": 0, "col": 0, "rule": "edit", "severity": "error",
                                    "message": exc.message})
            return out
        new_text = rt.dump(y, data)
        rel = flag_rel(key)
        doc, problems = parse_yaml(rel, new_text.encode("utf-8"))
        if doc is not None and isinstance(doc.data, dict):
            problems += flag_problems(key, doc, repository.schemas, snapshot.known_tenants,
                                      snapshot.known_partners, "error", today or _dt.date.today())
            after = doc.data
        out["problems"] = [{"line": p.line, "col": p.col, "rule": p.rule, "severity": p.severity,
                            "message": p.message} for p in problems]
        out["diff"] = _diff(key, text, new_text)
        out["changes"] = semantic_changes(current, after)
    if any(p["severity"] == "error" for p in out["problems"]):
        return out
    impact = impact_preview(repository, key, after, current=current)
    out.update(impact.to_dict())
    out["changed"] = not change.is_empty()
    return out
