"""The canonical layout of flag files (``flagops fmt``), and where an edit puts a new field.

Modeline first; fields in the order key, description, owner, expires, state, pct, scope,
killed (unknown fields after them); scope axes in the order plans, tenantSlugs, partnerSlugs,
environments, as flow lists ``[a, b]``; comments kept. A file in this layout stays in it
through an edit (:mod:`flagops.edit` inserts fields and axes at their canonical positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from flagops_client.evaluation import AXES
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import roundtrip
from .errors import FlagopsError, InvalidInputError
from .loading import FLAG_SUFFIX, FLAGS_DIR, parse_yaml
from .model import FIELDS as FIELD_ORDER
from .problems import Problem
from .roundtrip import write_file

__all__ = ["FIELD_ORDER", "MODELINE", "FormatResult", "format_flag_text", "format_flags", "insert_field",
           "set_axis"]

MODELINE = "# yaml-language-server: $schema=../schema/flag.schema.json"
_MODELINE_PREFIX = "# yaml-language-server:"


def insert_field(data: CommentedMap, name: str, value: Any) -> None:
    """Add a top-level field at its canonical position."""
    roundtrip.insert_field(data, name, value, FIELD_ORDER)


def set_axis(scope: CommentedMap, axis: str, values: CommentedSeq) -> None:
    """Set a scope axis, inserting it at its canonical position."""
    roundtrip.set_axis(scope, axis, values, AXES)


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
            write_file(path, formatted, expect=raw)
    return FormatResult(changed, unchanged, problems)
