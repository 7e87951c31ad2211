"""Edit flag files the way an operator would: keep comments, key order and layout.

Every edit (``new``, ``set``, ``kill``, ``restore``, ``delete``) runs the same pipeline: apply
the change to the round-trip document (:mod:`flagops.roundtrip`, fields placed by
:mod:`flagops.fmt`), validate the repository with the edited file in place, exactly as
``flagops validate`` would, compute the exact impact and the risk checks of ``flagops plan``
(:mod:`flagops.impact`), and only then write the file atomically. A risky edit is written
only when the caller's ``confirm`` callback agrees; otherwise :class:`RiskyChangeError` is
raised and nothing changes.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from flagops_client.evaluation import AXES
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from . import roundtrip as rt
from .errors import FlagopsError, InvalidInputError, RiskyChangeError, UnknownFlagError, UsageError
from .git import author as git_author
from .fmt import MODELINE, insert_field, set_axis
from .impact import EnvironmentImpact, impact_of
from .loading import FLAG_SUFFIX, FLAGS_DIR, SCHEMA_DIR, FsSource, Project, load_project, parse_yaml
from .problems import Result
from .schemas import Schemas
from .suggest import did_you_mean
from .validation import validate_project

__all__ = ["EditResult", "FlagChange", "OverlaySource", "apply_change", "delete_flag", "edit_flag", "flag_rel",
           "kill_flag", "kill_message", "new_flag", "new_flag_text", "parse_date", "restore_flag"]

#: Asked before a risky edit is written; True writes it.
Confirm = Callable[["EditResult"], bool]


class _Untouched(list):  # type: ignore[type-arg]
    """Notes of an edit that left the document as it was (its text is kept byte for byte)."""


# --------------------------------------------------------------------------- sources


@dataclass
class OverlaySource:
    """The working tree with one file's bytes replaced, added (or, with ``None``, removed)."""

    base: FsSource
    rel: str
    data: Optional[bytes]
    label: str = "edit"

    def list_dir(self, rel: str) -> Optional[list[str]]:
        names = self.base.list_dir(rel)
        folder, _, name = self.rel.rpartition("/")
        if folder == rel.rstrip("/"):
            names = sorted(set(names or []) - {name}) if self.data is None else sorted(set(names or []) | {name})
        return names

    def read(self, rel: str) -> bytes:
        if rel != self.rel:
            return self.base.read(rel)
        if self.data is None:
            raise FileNotFoundError(rel)
        return self.data


# --------------------------------------------------------------------------- changes


@dataclass
class FlagChange:
    """What an edit changes in one flag; ``None`` leaves a field as it is.

    An empty string for ``owner`` or ``expires`` removes the field.
    """

    state: Optional[str] = None
    pct: Optional[int] = None
    add: dict[str, list[str]] = field(default_factory=dict)  # axis -> values to add
    remove: dict[str, list[str]] = field(default_factory=dict)  # axis -> values to remove
    environments: Optional[list[str]] = None  # replaces the environments axis
    description: Optional[str] = None
    owner: Optional[str] = None
    expires: Optional[str] = None

    def is_empty(self) -> bool:
        return (all(v is None for v in (self.state, self.pct, self.environments, self.description,
                                        self.owner, self.expires))
                and not any(self.add.values()) and not any(self.remove.values()))


def parse_date(value: str) -> _dt.date:
    """A YYYY-MM-DD date from the command line, or a usage error saying so."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(value)
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f'"{value}" is not a date; write it as YYYY-MM-DD, e.g. 2027-03-31') from None


def _set_field(data: CommentedMap, name: str, value: Any) -> None:
    """Set a field where it is (or insert it in canonical order), keeping its comment's gap."""
    if name not in data:
        insert_field(data, name, value)
        return
    old = data[name]
    data[name] = value
    if not isinstance(old, (CommentedMap, CommentedSeq)):
        rt.shift_eol_comment(data, name, len(str(value)) - len(str(old)))


def apply_change(data: CommentedMap, change: FlagChange) -> list[str]:
    """Apply ``change`` to a round-trip mapping in place; returns notes for the operator."""
    trailing = rt.take_trailing(data)
    try:
        return _apply(data, change)
    finally:
        rt.give_trailing(data, trailing)


def _apply(data: CommentedMap, change: FlagChange) -> list[str]:
    notes: list[str] = []
    for name in ("description", "owner", "expires"):
        value = getattr(change, name)
        if value is None:
            continue
        if value == "" and name != "description":
            rt.remove_field(data, name)
        else:
            _set_field(data, name, parse_date(value) if name == "expires" else value)
    if change.state is not None:
        _set_field(data, "state", change.state)
    if change.pct is not None:
        _set_field(data, "pct", change.pct)

    axes_touched = {a for a, v in change.add.items() if v} | {a for a, v in change.remove.items() if v}
    if change.environments is not None:
        axes_touched.add("environments")
    if not axes_touched:
        return notes
    scope = data.get("scope")
    if scope is None or not isinstance(scope, dict):
        if scope is not None:
            raise FlagopsError("scope is not a mapping; fix the file by hand (flagops validate)")
        scope = CommentedMap()
        insert_field(data, "scope", scope)
    for axis in AXES:
        if axis in axes_touched:
            notes += _apply_axis(scope, axis, change)
    return notes


def _apply_axis(scope: CommentedMap, axis: str, change: FlagChange) -> list[str]:
    notes: list[str] = []
    current = scope.get(axis)
    if current is not None and not isinstance(current, list):
        raise FlagopsError(f"scope.{axis} is not a list; fix the file by hand (flagops validate)")
    values = list(current or [])
    if axis == "environments" and change.environments is not None:
        values = list(dict.fromkeys(change.environments))
    for value in change.remove.get(axis, []):
        if value not in values:
            raise FlagopsError(f'"{value}" is not in scope.{axis}{did_you_mean(value, map(str, values))}; '
                               f"it holds: {', '.join(map(str, values)) or 'nothing'}")
        values.remove(value)
    for value in change.add.get(axis, []):
        if value in values:
            notes.append(f'"{value}" is already in scope.{axis}')
        else:
            values.append(value)
    if isinstance(current, CommentedSeq) and (values or current.fa.flow_style()):
        # Edit the existing list in place: its style and its comments stay.
        old_width = rt.flow_width(current)
        for value in [v for v in current if v not in values]:
            del current[current.index(value)]  # ruamel shifts the comments of the items below
        for value in [v for v in values if v not in current]:
            current.append(value)
        if current.fa.flow_style():
            rt.shift_eol_comment(scope, axis, rt.flow_width(current) - old_width)
    else:
        set_axis(scope, axis, rt.flow(values))
    return notes


# --------------------------------------------------------------------------- results


@dataclass
class EditResult:
    """What an edit did (or, when refused or a dry run, would have done)."""

    key: str
    path: Path
    before: str  # the file's text before ("" for a new flag)
    after: str  # the file's text after ("" for a deleted flag)
    radius: list[EnvironmentImpact] = field(default_factory=list)
    validation: Result = field(default_factory=Result)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def risks(self) -> list[tuple[str, str]]:
        """(environment, message) of every risk check the edit fails, as ``flagops plan`` says it."""
        return [(r.environment, message) for r in self.radius for message in r.risks]

    @property
    def risky(self) -> bool:
        return bool(self.risks)

    def describe_radius(self) -> list[str]:
        return [r.describe() for r in self.radius]


# --------------------------------------------------------------------------- the edit pipeline


def flag_rel(key: str) -> str:
    return f"{FLAGS_DIR}/{key}{FLAG_SUFFIX}"


def _schemas(root: Path) -> Schemas:
    return Schemas.load(root / SCHEMA_DIR)


def _check_result(root: Path, rel: str, new_text: Optional[str], schemas: Schemas,
                  today: Optional[_dt.date]) -> tuple[Project, Result]:
    """Validate the repository with the edited file in place; refuse when that file has errors."""
    data = None if new_text is None else new_text.encode("utf-8")
    project = load_project(OverlaySource(FsSource(root), rel, data), schemas.environments)
    result = validate_project(project, schemas, today=today)
    errors = [p for p in result.problems if p.path == rel and p.severity == "error"]
    if errors:
        raise InvalidInputError(f"the edit would leave {rel} invalid ({len(errors)} error(s)); "
                                "nothing was written", errors)
    return project, result


def _existing_flag(root: Path, key: str) -> tuple[Path, bytes]:
    path = root / flag_rel(key)
    if not path.is_file():
        names = [p.stem for p in (root / FLAGS_DIR).glob(f"*{FLAG_SUFFIX}")]
        raise UnknownFlagError(key, names, hint="flagops list shows every flag; flagops new creates one")
    return path, path.read_bytes()


def _core_data(rel: str, raw: bytes) -> dict[str, Any]:
    """The flag as the core loader reads it (checks encoding and syntax before anything else)."""
    doc, _ = parse_yaml(rel, raw)
    if doc is None or not isinstance(doc.data, dict):
        raise FlagopsError(f"{rel} does not parse as a flag; fix it first (flagops validate)")
    return doc.data


def _finish(edit: EditResult, *, write: Callable[[], None], dry_run: bool,
            confirm: Optional[Confirm]) -> EditResult:
    """Write a changed edit unless it is a dry run; a risky one only when ``confirm`` agrees."""
    if not edit.changed or dry_run:
        return edit
    if edit.risky and (confirm is None or not confirm(edit)):
        shown = "; ".join(f"{env}: {message}" for env, message in edit.risks)
        raise RiskyChangeError(f"nothing was written: the change of {edit.key} is risky ({shown})",
                               hint="review the impact above; pass --yes to make the change anyway")
    write()
    edit.written = True
    return edit


def _edit_text(root: Path, key: str, edit_data: Callable[[CommentedMap, dict[str, Any]], list[str]], *,
               dry_run: bool, confirm: Optional[Confirm], today: Optional[_dt.date]) -> EditResult:
    """The pipeline for an existing flag: ``edit_data(document, flag)`` changes the document."""
    schemas = _schemas(root)
    rel = flag_rel(key)
    path, raw = _existing_flag(root, key)
    before = _core_data(rel, raw)
    text = raw.decode("utf-8-sig")
    y, data = rt.load(text)
    notes = edit_data(data, before)
    new_text = text if isinstance(notes, _Untouched) else rt.dump(y, data)
    project, result = _check_result(root, rel, new_text, schemas, today)
    after = project.flags[key].data if key in project.flags else None
    edit = EditResult(key, path, text, new_text, impact_of(key, before, after, project, schemas), result, notes)
    return _finish(edit, write=lambda: rt.write_file(path, new_text, expect=raw), dry_run=dry_run,
                   confirm=confirm)


def edit_flag(root: Path, key: str, change: FlagChange, *, dry_run: bool = False,
              confirm: Optional[Confirm] = None, today: Optional[_dt.date] = None) -> EditResult:
    """Change one flag: apply, validate the result, compute the impact, write it atomically.

    Raises :class:`InvalidInputError` with the problems when the result would be invalid, and
    :class:`RiskyChangeError` when it is risky and ``confirm`` does not agree; nothing is
    written then.
    """
    if change.is_empty():
        raise UsageError("nothing to change; pass at least one option (flagops set --help)")

    def change_data(data: CommentedMap, flag: dict[str, Any]) -> list[str]:
        notes = apply_change(data, change)
        if change.state not in (None, "off") and "killed" in data:
            trailing = rt.take_trailing(data)
            rt.remove_field(data, "killed")
            rt.give_trailing(data, trailing)
            notes.append(f"removed the killed: block of {key} (it is turned on again)")
        return notes

    return _edit_text(root, key, change_data, dry_run=dry_run, confirm=confirm, today=today)


# --------------------------------------------------------------------------- kill and restore


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _killed_block(flag: Mapping[str, Any], reason: Optional[str], author: str, when: str) -> CommentedMap:
    block = CommentedMap()
    if reason and reason.strip():
        block["reason"] = reason.strip().splitlines()[0]
    block["at"] = when
    block["by"] = author
    block["state"] = flag.get("state", "off")
    if "pct" in flag:
        block["pct"] = flag["pct"]
    return block


def kill_flag(root: Path, key: str, *, reason: Optional[str] = None, dry_run: bool = False,
              confirm: Optional[Confirm] = None, today: Optional[_dt.date] = None,
              author: Optional[str] = None, when: Optional[str] = None) -> EditResult:
    """Turn a flag off for everyone (state off, pct 0), keeping its scope, and record in a
    ``killed:`` block what it replaced, so that :func:`restore_flag` brings it back."""

    def kill(data: CommentedMap, flag: dict[str, Any]) -> list[str]:
        if flag.get("state") == "off" and flag.get("pct", 0) == 0:
            return _Untouched([f"{key} is already off"])
        trailing = rt.take_trailing(data)
        try:
            block = _killed_block(flag, reason, author or git_author(root), when or _now())
            if "killed" in data:
                rt.remove_field(data, "killed")
            _set_field(data, "state", "off")
            if "pct" in flag:
                _set_field(data, "pct", 0)
            insert_field(data, "killed", block)
        finally:
            rt.give_trailing(data, trailing)
        return []

    return _edit_text(root, key, kill, dry_run=dry_run, confirm=confirm, today=today)


def restore_flag(root: Path, key: str, *, dry_run: bool = False, confirm: Optional[Confirm] = None,
                 today: Optional[_dt.date] = None) -> EditResult:
    """Undo a kill: the state and pct the ``killed:`` block recorded, and the block removed."""

    def restore(data: CommentedMap, flag: dict[str, Any]) -> list[str]:
        killed = flag.get("killed")
        if not isinstance(killed, dict) or "state" not in killed:
            raise FlagopsError(f"{key} has no killed: block to restore from (it was not turned off by "
                               "flagops kill)", hint=f"flagops set {key} --state ... turns it on")
        trailing = rt.take_trailing(data)
        try:
            rt.remove_field(data, "killed")
            _set_field(data, "state", killed["state"])
            if "pct" in killed:
                _set_field(data, "pct", killed["pct"])
            elif "pct" in data:
                rt.remove_field(data, "pct")
        finally:
            rt.give_trailing(data, trailing)
        return [f"restored {key} as it was before the kill of {killed.get('at', '?')}"]

    return _edit_text(root, key, restore, dry_run=dry_run, confirm=confirm, today=today)


# --------------------------------------------------------------------------- new and delete


def new_flag_text(key: str, description: str, *, owner: Optional[str] = None,
                  expires: Optional[str] = None, change: Optional[FlagChange] = None) -> str:
    """The text of a new flag file: the schema modeline, then the fields in canonical order."""
    data = CommentedMap()
    data["key"] = key
    data["description"] = description
    if owner:
        data["owner"] = owner
    if expires:
        data["expires"] = parse_date(expires)
    data["state"] = "off"
    data.yaml_set_start_comment(MODELINE[2:])
    if change is not None and not change.is_empty():
        apply_change(data, change)
    return rt.dump(rt.yaml_for(""), data)


def new_flag(root: Path, key: str, description: str, *, owner: Optional[str] = None,
             expires: Optional[str] = None, change: Optional[FlagChange] = None, dry_run: bool = False,
             confirm: Optional[Confirm] = None, today: Optional[_dt.date] = None) -> EditResult:
    """Create ``flags/<key>.yaml`` (``off`` unless ``change`` says otherwise); refuse a taken or
    malformed key."""
    schemas = _schemas(root)
    pattern = schemas.documents["flag"]["properties"]["key"]["pattern"]
    if not re.fullmatch(pattern.lstrip("^").rstrip("$"), key):
        raise FlagopsError(f'"{key}" is not a valid flag key: it must match {pattern} '
                           "(lower case letter first, then lower case letters, digits or _, 2-64 long)")
    rel = flag_rel(key)
    path = root / rel
    if path.exists():
        raise FlagopsError(f'a flag "{key}" already exists ({rel})', hint=f"flagops set {key} ... changes it")
    if not (root / FLAGS_DIR).is_dir():
        raise FlagopsError(f"there is no {FLAGS_DIR}/ directory under {root}", hint="pass --root")
    text = new_flag_text(key, description, owner=owner, expires=expires, change=change)
    project, result = _check_result(root, rel, text, schemas, today)
    edit = EditResult(key, path, "", text, impact_of(key, None, project.flags[key].data, project, schemas),
                      result)
    return _finish(edit, write=lambda: rt.write_file(path, text, expect=None, create=True),
                   dry_run=dry_run, confirm=confirm)


def delete_flag(root: Path, key: str, *, dry_run: bool = False, confirm: Optional[Confirm] = None,
                today: Optional[_dt.date] = None) -> EditResult:
    """Remove ``flags/<key>.yaml``; deleting a flag that is still on for someone is risky."""
    schemas = _schemas(root)
    rel = flag_rel(key)
    path, raw = _existing_flag(root, key)
    text = raw.decode("utf-8", "replace")
    doc, _ = parse_yaml(rel, raw)
    before = doc.data if doc is not None and isinstance(doc.data, dict) else None
    project, result = _check_result(root, rel, None, schemas, today)
    edit = EditResult(key, path, text, "", impact_of(key, before, None, project, schemas), result)
    still_on = sum(r.enabled_before for r in edit.radius)
    if still_on:
        edit.warnings.append(f"{key} is still on for {still_on} tenant(s): "
                          + ", ".join(f"{r.environment} {r.enabled_before} of {r.total}"
                                      for r in edit.radius if r.enabled_before))

    def remove() -> None:
        if path.read_bytes() != raw:
            raise FlagopsError(f"{path.name} changed while it was being deleted; nothing was removed",
                               hint="run the command again")
        path.unlink()

    return _finish(edit, write=remove, dry_run=dry_run, confirm=confirm)


# --------------------------------------------------------------------------- commit messages


def kill_message(key: str, reason: Optional[str]) -> str:
    subject = f"Kill {key}" + (f": {reason.strip().splitlines()[0]}" if reason and reason.strip() else "")
    body = "State off, pct 0, scope kept (flagops kill)."
    if reason and len(reason.strip().splitlines()) > 1:
        body = reason.strip() + "\n\n" + body
    return f"{subject}\n\n{body}\n"
