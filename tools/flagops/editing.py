"""Edit flag files the way an operator would: keep comments, key order and layout.

Reading and validating go through the core loader (:mod:`flagops.loading`), so an edit is
refused with exactly the errors ``flagops validate`` would report. Writing goes through
ruamel.yaml's round-trip mode, which keeps comments, quoting and key order; it is set up for
YAML 1.2 so ``on``/``off`` stay plain strings, never booleans. ``format_flag_text`` defines the
canonical layout (``flagops fmt``); a file in that layout stays byte-for-byte the same through
an edit, except for the lines that change.
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken
from flagops_client.evaluation import AXES
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import FlagopsError, InvalidInputError, UsageError
from .loading import FLAG_SUFFIX, FLAGS_DIR, SCHEMA_DIR, FsSource, Project, load_project, parse_yaml
from .matrix import TenantIndex, enabled_tenants
from .problems import Problem, Result
from .schemas import Schemas
from .validation import did_you_mean, validate_project

MODELINE = "# yaml-language-server: $schema=../schema/flag.schema.json"
_MODELINE_PREFIX = "# yaml-language-server:"
#: The canonical order of a flag's fields (``flagops fmt``, and where an edit inserts a field).
FIELD_ORDER = ("key", "description", "owner", "expires", "state", "pct", "scope")
#: How many flipped tenants a blast radius names before it says "+N more".
FLIP_SAMPLE = 8


# --------------------------------------------------------------------------- sources


@dataclass
class OverlaySource:
    """The working tree, with one file's bytes replaced (or added): the repository after an edit."""

    base: FsSource
    rel: str
    data: bytes
    label: str = "edit"

    def list_dir(self, rel: str) -> Optional[list[str]]:
        names = self.base.list_dir(rel)
        folder, _, name = self.rel.rpartition("/")
        if folder == rel.rstrip("/"):
            names = sorted(set(names or []) | {name})
        return names

    def read(self, rel: str) -> bytes:
        return self.data if rel == self.rel else self.base.read(rel)


# --------------------------------------------------------------------------- round-trip YAML


def _yaml_for(text: str) -> YAML:
    """A round-trip emitter matching the file's own indentation, never wrapping lines."""
    y = YAML(typ="rt")
    y.width = 4096  # a long description stays on its line
    y.preserve_quotes = True
    mapping, offset = _guess_indent(text)
    y.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return y


def _guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, block-sequence dash offset) as the file uses them; (2, 0) by default."""
    mapping, offset = 2, 0
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or not stripped.endswith(":"):
            continue
        parent = len(line) - len(line.lstrip(" "))
        nxt = next((n for n in lines[i + 1:] if n.strip() and not n.strip().startswith("#")), "")
        child = len(nxt) - len(nxt.lstrip(" "))
        if nxt.strip().startswith("- "):
            offset = max(0, child - parent)
        elif child > parent and parent == 0:
            mapping = child - parent
    return mapping, offset


def _load_rt(text: str) -> tuple[YAML, CommentedMap]:
    y = _yaml_for(text)
    data = y.load(text)
    if not isinstance(data, CommentedMap):
        raise FlagopsError("the flag file is not a YAML mapping; fix it by hand (flagops validate)")
    return y, data


def _dump_rt(y: YAML, data: CommentedMap) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def _flow(values: Iterable[str]) -> CommentedSeq:
    seq = CommentedSeq(list(values))
    seq.fa.set_flow_style()
    return seq


def _split_post_comment(token: Optional[CommentToken]) -> tuple[str, str]:
    """A key's trailing comment as (end-of-line part, full lines that follow it)."""
    if token is None:
        return "", ""
    eol, _, rest = token.value.partition("\n")
    return eol, rest


def _insert_field(data: CommentedMap, name: str, value: Any) -> None:
    """Add a field at its canonical position; comment lines before the next field stay before it."""
    position = 0
    for i, existing in enumerate(data):
        if existing in FIELD_ORDER and FIELD_ORDER.index(existing) < FIELD_ORDER.index(name):
            position = i + 1
    if position > 0:
        previous = list(data)[position - 1]
        item = data.ca.items.get(previous)
        token = item[2] if item and len(item) > 2 else None
        eol, rest = _split_post_comment(token)
        data.insert(position, name, value)
        if rest and token is not None and not isinstance(data[previous], (CommentedMap, CommentedSeq)):
            # ruamel keeps the comment lines between two fields on the field above; the new
            # field goes between them, so they move below it, next to the field they describe.
            token.value = eol + "\n" if eol else "\n"
            if not eol:
                item[2] = None
            data.ca.items[name] = [None, None, CommentToken("\n" + rest, token.start_mark, None), None]
        return
    data.insert(position, name, value)


def _remove_field(data: CommentedMap, name: str) -> None:
    """Drop a field; full comment lines below it (about the next field) are kept."""
    if name not in data:
        return
    keys = list(data)
    item = data.ca.items.get(name)
    _, rest = _split_post_comment(item[2] if item and len(item) > 2 else None)
    del data[name]
    if rest:
        i = keys.index(name)
        if i > 0 and not isinstance(data[keys[i - 1]], (CommentedMap, CommentedSeq)):
            prev = data.ca.items.setdefault(keys[i - 1], [None, None, None, None])
            if prev[2] is not None and prev[2].value.endswith("\n"):
                prev[2].value = prev[2].value + rest
            else:
                prev[2] = CommentToken("\n" + rest, CommentMark(0), None)


def _last_slot(node: Any) -> Optional[tuple[dict, Any, int]]:
    """Where ruamel keeps the comment lines after the last value of ``node``: (items, key, slot)."""
    if isinstance(node, CommentedMap) and node:
        key = list(node)[-1]
        value = node[key]
        if isinstance(value, (CommentedMap, CommentedSeq)) and value and not value.fa.flow_style():
            return _last_slot(value)
        return node.ca.items, key, 2
    if isinstance(node, CommentedSeq) and node:
        index = len(node) - 1
        value = node[index]
        if isinstance(value, (CommentedMap, CommentedSeq)) and value and not value.fa.flow_style():
            return _last_slot(value)
        return node.ca.items, index, 0
    return None


def _take_trailing(data: CommentedMap) -> str:
    """Detach the comment lines at the end of the document (they follow whatever ends up last)."""
    where = _last_slot(data)
    if where is None:
        return ""
    items, key, slot = where
    entry = items.get(key)
    token = entry[slot] if entry else None
    eol, rest = _split_post_comment(token)
    if rest and token is not None and entry is not None:
        if eol:
            token.value = eol + "\n"
        else:
            entry[slot] = None
    return rest


def _give_trailing(data: CommentedMap, rest: str) -> None:
    where = _last_slot(data) if rest else None
    if where is None:
        return
    items, key, slot = where
    entry = items.setdefault(key, [None, None, None, None])
    token = entry[slot]
    if token is not None and token.value.endswith("\n"):
        token.value = token.value + rest
    else:
        entry[slot] = CommentToken("\n" + rest, CommentMark(0), None)


# --------------------------------------------------------------------------- changes


@dataclass
class FlagChange:
    """What ``flagops set`` changes in one flag; ``None`` leaves a field as it is.

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
        _insert_field(data, name, value)
        return
    old = data[name]
    data[name] = value
    if not isinstance(old, (CommentedMap, CommentedSeq)):
        _shift_eol_comment(data, name, len(str(value)) - len(str(old)))


def apply_change(data: CommentedMap, change: FlagChange) -> list[str]:
    """Apply ``change`` to a round-trip mapping in place; returns notes for the operator."""
    trailing = _take_trailing(data)
    try:
        return _apply(data, change)
    finally:
        _give_trailing(data, trailing)


def _apply(data: CommentedMap, change: FlagChange) -> list[str]:
    notes: list[str] = []
    if change.description is not None:
        _set_field(data, "description", change.description)
    if change.owner is not None:
        if change.owner == "":
            _remove_field(data, "owner")
        else:
            _set_field(data, "owner", change.owner)
    if change.expires is not None:
        if change.expires == "":
            _remove_field(data, "expires")
        else:
            _set_field(data, "expires", parse_date(change.expires))
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
        _insert_field(data, "scope", scope)
    for axis in AXES:
        if axis not in axes_touched:
            continue
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
            old_width = _flow_width(current)
            for value in [v for v in current if v not in values]:
                _seq_remove(current, current.index(value))
            for value in [v for v in values if v not in current]:
                current.append(value)
            if current.fa.flow_style():
                _shift_eol_comment(scope, axis, _flow_width(current) - old_width)
        else:
            _set_axis(scope, axis, _flow(values))
    return notes


def _flow_width(seq: Sequence[Any]) -> int:
    return len(", ".join(map(str, seq))) + 2


def _shift_eol_comment(mapping: CommentedMap, name: str, delta: int) -> None:
    """Keep the gap before a field's end-of-line comment when its value grew or shrank."""
    item = mapping.ca.items.get(name)
    token = item[2] if item and len(item) > 2 else None
    if token is None or delta == 0 or not token.value.startswith("#") or token.start_mark is None:
        return
    mark = copy.copy(token.start_mark)
    mark.column = max(0, mark.column + delta)
    token.start_mark = mark


def _seq_remove(seq: CommentedSeq, index: int) -> None:
    del seq[index]  # ruamel shifts the comments of the items below


def _set_axis(scope: CommentedMap, axis: str, values: CommentedSeq) -> None:
    if axis in scope:
        scope[axis] = values
        return
    position = sum(1 for a in scope if a in AXES and AXES.index(a) < AXES.index(axis))
    scope.insert(position, axis, values)


# --------------------------------------------------------------------------- blast radius


@dataclass
class EnvironmentRadius:
    """Who a flag is on for in one environment, before and after an edit."""

    environment: str
    total: int
    before: list[str]  # slugs
    after: list[str]

    @property
    def turned_on(self) -> list[str]:
        was = set(self.before)
        return [s for s in self.after if s not in was]

    @property
    def turned_off(self) -> list[str]:
        now = set(self.after)
        return [s for s in self.before if s not in now]

    def describe(self) -> str:
        line = f"~{len(self.before)} of {self.total} tenants -> ~{len(self.after)} of {self.total} tenants"
        flips = []
        for sign, what, slugs in (("+", "on", self.turned_on), ("-", "off", self.turned_off)):
            if slugs:
                shown = ", ".join(slugs[:FLIP_SAMPLE])
                more = f" +{len(slugs) - FLIP_SAMPLE} more" if len(slugs) > FLIP_SAMPLE else ""
                flips.append(f"{sign}{len(slugs)} turn {what}: {shown}{more}")
        return f"{self.environment}: {line}" + (f" ({'; '.join(flips)})" if flips else " (nothing flips)")

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "total": self.total, "before": len(self.before),
                "after": len(self.after), "turnedOn": self.turned_on, "turnedOff": self.turned_off}


def blast_radius(key: str, before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]],
                 project: Project, environments: Sequence[str]) -> list[EnvironmentRadius]:
    """The flag's enabled tenants per environment with an inventory, before and after."""
    out = []
    for env in environments:
        inventory = project.inventories.get(env)
        if inventory is None:
            continue
        tenants = [t for t in inventory.tenants if isinstance(t, dict) and {"id", "slug", "plan"} <= t.keys()]
        index = TenantIndex.build(tenants)
        slugs = [t["slug"] for t in tenants]

        def on(flag: Optional[Mapping[str, Any]]) -> list[str]:
            if not isinstance(flag, Mapping):
                return []
            return [slugs[i] for i in sorted(enabled_tenants(key, flag, index, env))]

        out.append(EnvironmentRadius(env, len(tenants), on(before), on(after)))
    return out


# --------------------------------------------------------------------------- results


@dataclass
class EditResult:
    """What an edit did (or, when refused, would have done)."""

    key: str
    path: Path
    before: str  # the file's text before ("" for a new flag)
    after: str
    radius: list[EnvironmentRadius] = field(default_factory=list)
    validation: Result = field(default_factory=Result)
    notes: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe_radius(self) -> list[str]:
        return [r.describe() for r in self.radius]


# --------------------------------------------------------------------------- the edit pipeline


def flag_rel(key: str) -> str:
    return f"{FLAGS_DIR}/{key}{FLAG_SUFFIX}"


def _schemas(root: Path) -> Schemas:
    return Schemas.load(root / SCHEMA_DIR)


def _check_result(root: Path, key: str, rel: str, new_text: str, schemas: Schemas,
                  today: Optional[_dt.date]) -> tuple[Project, Result]:
    """Validate the repository with the edited file in place; refuse when that file has errors."""
    source = OverlaySource(FsSource(root), rel, new_text.encode("utf-8"))
    project = load_project(source, schemas.environments)
    result = validate_project(project, schemas, today=today)
    mine = [p for p in result.problems if p.path == rel]
    errors = [p for p in mine if p.severity == "error"]
    if errors:
        raise InvalidInputError(f"the edit would leave {rel} invalid ({len(errors)} error(s)); "
                                "nothing was written", errors)
    return project, result


def _write_atomic(path: Path, text: str, *, expect: Optional[bytes], create: bool = False) -> None:
    """Replace ``path`` in one rename; refuse when it changed since it was read."""
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if create:
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, path)  # fails if the file appeared meanwhile: never clobber
            except FileExistsError:
                raise FlagopsError(f"{path.name} was created by someone else meanwhile; nothing was written") from None
            os.unlink(tmp)
            return
        current = path.read_bytes()
        if expect is not None and current != expect:
            raise FlagopsError(f"{path.name} changed while it was being edited; nothing was written",
                               hint="run the command again")
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _existing_flag(root: Path, key: str) -> tuple[Path, bytes]:
    path = root / flag_rel(key)
    if not path.is_file():
        names = [p.stem for p in (root / FLAGS_DIR).glob(f"*{FLAG_SUFFIX}")]
        raise FlagopsError(f'no flag "{key}" in {FLAGS_DIR}/{did_you_mean(key, names)}',
                           hint="flagops list shows every flag; flagops new creates one")
    return path, path.read_bytes()


def _core_data(rel: str, raw: bytes) -> Optional[dict[str, Any]]:
    doc, _ = parse_yaml(rel, raw)
    return doc.data if doc is not None and isinstance(doc.data, dict) else None


def edit_flag(root: Path, key: str, change: FlagChange, *, dry_run: bool = False,
              today: Optional[_dt.date] = None) -> EditResult:
    """Change one flag: apply, validate the result, write it atomically, report the blast radius.

    Raises :class:`InvalidInputError` with the problems when the result would be invalid;
    nothing is written then.
    """
    if change.is_empty():
        raise UsageError("nothing to change; pass at least one option (flagops set --help)")
    schemas = _schemas(root)
    rel = flag_rel(key)
    path, raw = _existing_flag(root, key)
    before = _core_data(rel, raw)  # checks the encoding and the syntax before anything decodes it
    if before is None:
        raise FlagopsError(f"{rel} does not parse as a flag; fix it first (flagops validate)")
    text = raw.decode("utf-8-sig")
    y, data = _load_rt(text)
    notes = apply_change(data, change)
    new_text = _dump_rt(y, data)
    project, result = _check_result(root, key, rel, new_text, schemas, today)
    after = project.flags[key].data if key in project.flags else None
    edit = EditResult(key, path, text, new_text,
                      blast_radius(key, before, after, project, schemas.environments), result, notes)
    if edit.changed and not dry_run:
        _write_atomic(path, new_text, expect=raw)
        edit.written = True
    return edit


def kill_change(flag: Mapping[str, Any]) -> FlagChange:
    """The kill switch: state off, pct 0 (when the flag has one), scope kept."""
    return FlagChange(state="off", pct=0 if "pct" in flag else None)


def kill_flag(root: Path, key: str, *, today: Optional[_dt.date] = None) -> EditResult:
    """Turn a flag off for everyone, keeping its scope so turning it back on is one edit."""
    rel = flag_rel(key)
    _, raw = _existing_flag(root, key)
    flag = _core_data(rel, raw)
    if flag is None:
        raise FlagopsError(f"{rel} does not parse as a flag; fix it first (flagops validate)")
    change = kill_change(flag)
    if flag.get("state") == "off" and flag.get("pct", 0) == 0:
        edit = edit_flag(root, key, FlagChange(state="off"), dry_run=True, today=today)
        edit.notes.append(f"{key} is already off")
        return edit
    return edit_flag(root, key, change, today=today)


def new_flag_text(key: str, description: str, *, owner: Optional[str] = None,
                  expires: Optional[str] = None) -> str:
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
    return _dump_rt(_yaml_for(""), data)


def new_flag(root: Path, key: str, description: str, *, owner: Optional[str] = None,
             expires: Optional[str] = None, today: Optional[_dt.date] = None) -> EditResult:
    """Create ``flags/<key>.yaml`` as an ``off`` flag; refuse a taken or malformed key."""
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
    text = new_flag_text(key, description, owner=owner, expires=expires)
    project, result = _check_result(root, key, rel, text, schemas, today)
    edit = EditResult(key, path, "", text, blast_radius(key, None, project.flags[key].data, project,
                                                        schemas.environments), result)
    _write_atomic(path, text, expect=None, create=True)
    edit.written = True
    return edit


# --------------------------------------------------------------------------- git


def require_git_user(root: Path) -> Any:
    """The repository at ``root`` when a commit can be made there (a configured user), else refuse.

    Called before a ``--commit`` edit writes anything, so a refused commit leaves no change behind.
    """
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise FlagopsError(f"{root} is not in a git repository; cannot commit") from None
    reader = repo.config_reader()
    name = reader.get_value("user", "name", default="")
    email = reader.get_value("user", "email", default="")
    if not name or not email:
        raise FlagopsError("git has no user configured, so the commit would have no author",
                           hint='git config --global user.name "Your Name"; '
                                "git config --global user.email you@example.eu")
    return repo


def commit_file(root: Path, path: Path, message: str) -> str:
    """Commit exactly ``path`` (other staged changes stay staged) as the configured git user."""
    import git

    repo = require_git_user(root)
    rel = os.path.relpath(path.resolve(), Path(repo.working_tree_dir or root).resolve())
    try:
        repo.git.add("--", rel)
        repo.git.commit("--only", "-m", message, "--", rel)
    except git.GitCommandError as exc:
        raise FlagopsError(f"git commit failed: {exc.stderr.strip() or exc}") from None
    return repo.head.commit.hexsha


def kill_message(key: str, reason: Optional[str]) -> str:
    subject = f"Kill {key}" + (f": {reason.strip().splitlines()[0]}" if reason and reason.strip() else "")
    body = "State off, pct 0, scope kept (flagops kill)."
    if reason and len(reason.strip().splitlines()) > 1:
        body = reason.strip() + "\n\n" + body
    return f"{subject}\n\n{body}\n"


# --------------------------------------------------------------------------- fmt


@dataclass
class _Entry:
    """One mapping entry of a flag file, with the comment lines that precede it."""

    key: str
    key_node: Node
    value: Node
    first: int  # 0-based line of the key
    last: int  # 0-based line where the value's content ends
    end_col: int  # column right after the value's content on ``last``
    leading: list[str]


def _content_end(node: Node, lines: list[str]) -> tuple[int, int]:
    """Where a node's own text ends (block collections end at their last child, not later)."""
    if isinstance(node, ScalarNode):
        line, col = node.end_mark.line, node.end_mark.column
        if node.style in ("|", ">"):
            if col == 0:
                line -= 1
            while line > node.start_mark.line and not lines[line].strip():
                line -= 1
            col = len(lines[line])
        return line, col
    if node.flow_style or not node.value:  # type: ignore[attr-defined]
        return node.end_mark.line, node.end_mark.column
    children: list[Node] = []
    for item in node.value:  # type: ignore[attr-defined]
        children.extend(item if isinstance(item, tuple) else (item,))
    return max(_content_end(child, lines) for child in children)


def _entries(node: MappingNode, lines: list[str], start: int, end: Optional[int] = None
             ) -> tuple[list[_Entry], list[str]]:
    """The entries of a block mapping, each with the lines between it and the previous one."""
    out: list[_Entry] = []
    cursor = start
    for key_node, value in node.value:
        first = key_node.start_mark.line
        last, end_col = _content_end(value, lines)
        if isinstance(value, ScalarNode) and value.value == "" and value.style is None:
            last, end_col = key_node.end_mark.line, key_node.end_mark.column + 1
        out.append(_Entry(str(key_node.value), key_node, value, first, last, end_col, lines[cursor:first]))
        cursor = last + 1
    return out, lines[cursor:end]


def _src(text_lines: list[str], node: Node) -> str:
    s, e = node.start_mark, node.end_mark
    if s.line == e.line:
        return text_lines[s.line][s.column:e.column]
    return ""  # multi-line; callers keep such entries verbatim


def _tail(lines: list[str], line: int, col: int) -> str:
    """An end-of-line comment after ``col`` with its original spacing, or ''."""
    rest = lines[line][col:]
    return rest.rstrip() if rest.strip().startswith("#") else ""


def _reindent(block: list[str], indent: int) -> list[str]:
    """Shift lines so the first non-blank one starts at ``indent``."""
    firsts = [len(line) - len(line.lstrip(" ")) for line in block if line.strip()]
    if not firsts:
        return ["" for _ in block]
    delta = indent - firsts[0]
    if delta < 0 and min(firsts) + delta < 0:
        delta = -min(firsts)
    return [(" " * delta + line if delta >= 0 else line[-delta:]).rstrip() if line.strip() else ""
            for line in block]


def _comment_lines(block: list[str], indent: int) -> list[str]:
    return [(" " * indent + line.strip()) if line.strip() else "" for line in block]


def _has_comment(lines: list[str], entry: _Entry, scalars: list[Node]) -> bool:
    """True when the entry's lines hold a comment outside its scalars (kept verbatim then)."""
    for n in range(entry.first, entry.last + 1):
        line = list(lines[n])
        if n == entry.last:
            line = line[:entry.end_col]
        for s in scalars:
            if s.start_mark.line <= n <= s.end_mark.line:
                a = s.start_mark.column if s.start_mark.line == n else 0
                b = s.end_mark.column if s.end_mark.line == n else len(line)
                line[a:b] = [" "] * (min(b, len(line)) - a)
        if "#" in "".join(line):
            return True
    return False


def _render_axis(lines: list[str], entry: _Entry) -> list[str]:
    head = _comment_lines(entry.leading, 2)
    seq = entry.value
    items = seq.value if isinstance(seq, SequenceNode) else []
    simple = (isinstance(seq, SequenceNode) and all(isinstance(i, ScalarNode) for i in items)
              and all(i.start_mark.line == i.end_mark.line for i in items)
              and _src(lines, entry.key_node) != "" and not _has_comment(lines, entry, list(items)))
    if not simple:
        return head + _reindent(lines[entry.first:entry.last + 1], 2)
    flow = "[" + ", ".join(_src(lines, i) for i in items) + "]"
    return head + [f"  {_src(lines, entry.key_node)}: {flow}{_tail(lines, entry.last, entry.end_col)}"]


def _render_scope(lines: list[str], entry: _Entry) -> list[str]:
    head = _comment_lines(entry.leading, 0)
    value = entry.value
    key_src = _src(lines, entry.key_node)
    if not isinstance(value, MappingNode) or value.flow_style or not value.value or not key_src:
        return head + lines[entry.first:entry.last + 1]
    key_line = lines[entry.first]
    colon = key_line.find(":", entry.key_node.end_mark.column)
    header = f"{key_src}:{_tail(lines, entry.first, colon + 1)}"
    children, trailing = _entries(value, lines, entry.first + 1, entry.last + 1)
    ordered = sorted(children, key=lambda c: AXES.index(c.key) if c.key in AXES else len(AXES))
    body: list[str] = []
    for child in ordered:
        body += _render_axis(lines, child)
    return head + [header] + body + _comment_lines(trailing, 2)


def _render_field(lines: list[str], entry: _Entry) -> list[str]:
    head = _comment_lines(entry.leading, 0)
    key_src, value_src = _src(lines, entry.key_node), _src(lines, entry.value)
    single = entry.first == entry.last and key_src and isinstance(entry.value, ScalarNode)
    if not single:
        return head + [line.rstrip() for line in lines[entry.first:entry.last + 1]]
    value = f" {value_src}" if value_src else ""
    return head + [f"{key_src}:{value}{_tail(lines, entry.last, entry.end_col)}"]


def format_flag_text(text: str, rel: str = "flag.yaml") -> str:
    """The canonical layout of a flag file, comments kept.

    Modeline first; fields in the order key, description, owner, expires, state, pct, scope
    (unknown fields after them); scope axes in the order plans, tenantSlugs, partnerSlugs,
    environments, as flow lists ``[a, b]`` (a list with comments inside keeps its block form);
    ``key: value`` with one space; no trailing spaces; one newline at the end. Raises
    :class:`InvalidInputError` when the file does not parse as a mapping.
    """
    doc, problems = parse_yaml(rel, text.encode("utf-8"))
    fatal = [p for p in problems if p.severity == "error"]
    if doc is None or fatal or not isinstance(doc.data, dict):
        raise InvalidInputError(f"{rel} cannot be formatted until it parses as a flag mapping",
                                fatal or [Problem(rel, 1, 1, "not-a-mapping", "a flag file must be a YAML mapping")])
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, MappingNode)
    if root.flow_style:
        raise InvalidInputError(f"{rel} is written as a flow mapping {{...}}; write one field per line",
                                [Problem(rel, 1, 1, "layout", "write one field per line")])
    entries, trailing = _entries(root, lines, 0)
    known = {name: i for i, name in enumerate(FIELD_ORDER)}
    ordered = sorted(entries, key=lambda e: known.get(e.key, len(FIELD_ORDER)))
    out: list[str] = [MODELINE]
    for entry in ordered:
        entry.leading = [line for line in entry.leading
                         if not line.strip().startswith(_MODELINE_PREFIX) and line.strip() != "---"]
        if entry is ordered[0]:
            while entry.leading and not entry.leading[0].strip():
                entry.leading.pop(0)
        out += _render_scope(lines, entry) if entry.key == "scope" else _render_field(lines, entry)
    out += [line.rstrip() for line in trailing if not line.strip().startswith(_MODELINE_PREFIX)]
    while out and not out[-1].strip():
        out.pop()
    result = "\n".join(out) + "\n"
    # Never change meaning: the formatted text must read back as the same flag.
    again, _ = parse_yaml(rel, result.encode("utf-8"))
    if again is None or again.data != doc.data:  # pragma: no cover - a formatter bug, not bad input
        raise FlagopsError(f"formatting {rel} would change its content; leaving it as it is")
    return result


@dataclass
class FormatResult:
    changed: list[str]  # repository-relative paths that were (or would be) rewritten
    unchanged: int
    problems: list[Problem]


def format_flags(root: Path, *, check: bool = False) -> FormatResult:
    """Normalise every flag file (with ``check``: only report which ones would change)."""
    folder = root / FLAGS_DIR
    if not folder.is_dir():
        raise FlagopsError(f"there is no {FLAGS_DIR}/ directory under {root}", hint="pass --root")
    changed: list[str] = []
    problems: list[Problem] = []
    unchanged = 0
    for path in sorted(folder.glob(f"*{FLAG_SUFFIX}")):
        rel = f"{FLAGS_DIR}/{path.name}"
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
            formatted = format_flag_text(text, rel)
        except UnicodeDecodeError:
            problems.append(Problem(rel, 1, 1, "encoding", "the file is not valid UTF-8"))
            continue
        except InvalidInputError as exc:
            problems.extend(exc.problems)
            continue
        if formatted == text:
            unchanged += 1
            continue
        changed.append(rel)
        if not check:
            _write_atomic(path, formatted, expect=raw)
    return FormatResult(changed, unchanged, problems)
