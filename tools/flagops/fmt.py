"""The canonical layout of flag files (``flagops fmt``), and where an edit puts a new field.

Modeline first; fields in the order key, description, owner, expires, state, pct, scope,
killed (unknown fields after them); scope axes in the order plans, tenantSlugs, partnerSlugs,
environments, as flow lists ``[a, b]``; comments kept. A file in this layout stays in it
through an edit (:mod:`flagops.edit` inserts fields and axes at their canonical positions).

The formatter works on the same ruamel.yaml round-trip document as the edits: ruamel keeps the
comment lines between two fields on the field above (or, after a flow value, before the field
below), so each entry first takes the comment lines above it, then the entries are sorted and
every end-of-line comment keeps its gap after its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from flagops_client.evaluation import AXES
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

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


# --------------------------------------------------------------------------- the layout


def _block(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq)) and bool(value) and not value.fa.flow_style()


def _take_following(mapping: CommentedMap, key: Any) -> str:
    """Detach the full comment lines after an entry (ruamel keeps them on it; they are about the next one)."""
    value = mapping[key]
    if _block(value):
        items, k, slot = roundtrip.last_slot(value)
    else:
        items, k, slot = mapping.ca.items, key, 2
    entry = items.get(k)
    token = entry[slot] if entry else None
    eol, rest = roundtrip.split_post_comment(token)
    if rest and token is not None:
        if eol:
            token.value = eol + "\n"
        else:
            entry[slot] = None
            if isinstance(value, CommentedSeq) and value.ca.comment and value.ca.comment[0] is token:
                value.ca.comment[0] = None
    return rest


def _lines(text: str, indent: int) -> list[str]:
    """Comment lines re-indented to ``indent``; modelines and document markers dropped."""
    out = []
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    for line in parts:
        s = line.strip()
        if s.startswith(_MODELINE_PREFIX) or s == "---":
            continue
        out.append(" " * indent + s if s else "")
    return out


def _pre(mapping: CommentedMap, key: Any) -> str:
    """Detach the comment lines ruamel keeps before an entry (after a flow value)."""
    entry = mapping.ca.items.get(key)
    if not entry or not entry[1]:
        return ""
    text = "".join(t.value for t in entry[1])
    entry[1] = None
    return text


def _set_pre(mapping: CommentedMap, key: Any, lines: list[str]) -> None:
    entry = mapping.ca.items.setdefault(key, [None, None, None, None])
    entry[1] = [CommentToken("".join(l + "\n" for l in lines), CommentMark(0), None)] if lines else None


def _keep_gaps(mapping: CommentedMap, indent: int, lines: list[str]) -> None:
    """Each end-of-line comment keeps its gap after the value, wherever the value now ends."""
    for key in mapping:
        value = mapping[key]
        entry = mapping.ca.items.get(key)
        token = entry[2] if entry and len(entry) > 2 else None
        if _block(value) or token is None or token.start_mark is None or not token.value.startswith("#"):
            continue
        _, _, vline, vcol = mapping.lc.data[key]
        if token.start_mark.line != vline or vline >= len(lines):
            continue
        old_end = len(lines[vline][:token.start_mark.column].rstrip())
        width = roundtrip.flow_width(value) if isinstance(value, CommentedSeq) else old_end - vcol
        roundtrip.shift_eol_comment(mapping, key, indent + len(str(key)) + 2 + width - old_end)


def _reorder(mapping: CommentedMap, order: Sequence[str], indent: int, first_leading: str) -> str:
    """Sort the entries by ``order``, each with the comment lines above it; returns the trailing lines."""
    keys = list(mapping)
    leading: dict[Any, list[str]] = {}
    carry = first_leading
    for k in keys:
        leading[k] = _lines(carry + _pre(mapping, k), indent)
        carry = _take_following(mapping, k)
    trailing = carry
    rank = {n: i for i, n in enumerate(order)}
    for k in sorted(keys, key=lambda k: rank.get(k, len(order))):
        mapping.move_to_end(k)
    new = list(mapping)
    if new:
        while leading[new[0]] and not leading[new[0]][0].strip() and indent == 0:
            leading[new[0]].pop(0)
    for k in new:
        _set_pre(mapping, k, leading[k])
    return trailing


def _canonical(text: str, data: CommentedMap) -> None:
    """Put the round-trip document ``data`` (read from ``text``) in the canonical layout, in place."""
    lines = text.split("\n")
    _keep_gaps(data, 0, lines)
    start = ""
    if data.ca.comment and data.ca.comment[1]:
        start = "".join(t.value for t in data.ca.comment[1])
        data.ca.comment[1] = []
    # ruamel keeps some of the blank lines that open a document; they all belong to the first field.
    start = "\n" * (len(text) - len(text.lstrip("\n"))) + start.lstrip("\n")
    scope = data.get("scope")
    if isinstance(scope, CommentedMap) and scope and not scope.fa.flow_style():
        head = data.ca.items.get("scope")
        token = head[2] if head else None
        eol, rest = roundtrip.split_post_comment(token)
        if rest and token is not None:
            token.value = eol + "\n"  # the lines after "scope:  # ..." are about its first axis
        if scope.ca.comment and scope.ca.comment[1]:
            rest += "".join(t.value for t in scope.ca.comment[1])
            scope.ca.comment[1] = []
        _keep_gaps(scope, 2, lines)
        scope_trailing = _reorder(scope, AXES, 2, rest)
        for axis in list(scope):
            seq = scope[axis]
            plain = (isinstance(seq, CommentedSeq) and not seq.fa.flow_style()
                     and all(all(t is None for t in v) for v in seq.ca.items.values())
                     and not (seq.ca.comment and any(seq.ca.comment)))
            if plain:  # a list without comments inside is written [a, b]
                seq.fa.set_flow_style()
        if scope_trailing:
            roundtrip.give_trailing(scope, scope_trailing)
    trailing = _lines(_reorder(data, FIELD_ORDER, 0, start), 0)
    while trailing and not trailing[-1].strip():
        trailing.pop()
    if trailing:
        roundtrip.give_trailing(data, "".join(line + "\n" for line in trailing))
    data.yaml_set_start_comment(MODELINE[2:])


def format_flag_text(text: str, rel: str = "flag.yaml") -> str:
    """The canonical layout of a flag file, comments kept.

    Modeline first; fields in the order key, description, owner, expires, state, pct, scope,
    killed (unknown fields after them); scope axes in the order plans, tenantSlugs,
    partnerSlugs, environments, as flow lists ``[a, b]`` (a list with comments inside keeps its
    block form); ``key: value`` with one space; no trailing spaces; one newline at the end.
    Raises :class:`InvalidInputError` when the file does not parse as a mapping.
    """
    doc, problems = parse_yaml(rel, text.encode("utf-8"))
    fatal = [p for p in problems if p.severity == "error"]
    if doc is None or fatal or not isinstance(doc.data, dict):
        raise InvalidInputError(f"{rel} cannot be formatted until it parses as a flag mapping",
                                fatal or [Problem(rel, 1, 1, "not-a-mapping", "a flag file must be a YAML mapping")])
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    try:
        y, data = roundtrip.load(text)
    except YAMLError as exc:  # pragma: no cover - the core loader refuses such input first
        raise InvalidInputError(f"{rel} cannot be formatted: {exc}",
                                [Problem(rel, 1, 1, "yaml-syntax", str(exc).splitlines()[0])]) from None
    if data.fa.flow_style():
        raise InvalidInputError(f"{rel} is written as a flow mapping {{...}}; write one field per line",
                                [Problem(rel, 1, 1, "layout", "write one field per line")])
    _canonical(text, data)
    out = roundtrip.dump(y, data)
    result = "\n".join(line.rstrip() for line in out.rstrip("\n").split("\n")) + "\n"
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
