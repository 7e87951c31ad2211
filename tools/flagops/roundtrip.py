"""Round-trip YAML with ruamel.yaml: load a flag file, change it, write it back as it was.

ruamel's round-trip mode keeps comments, quoting and key order; it is set up for YAML 1.2 so
``on``/``off`` stay plain strings, never booleans. The helpers here move the comment tokens
ruamel attaches to the field *above* a comment line, so that inserting, removing or
reordering fields keeps every comment next to the field it describes.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from .errors import FlagopsError
from .fsutil import atomic_write

__all__ = ["dump", "flow", "flow_width", "give_trailing", "guess_indent", "insert_field", "last_slot", "load",
           "remove_field", "set_axis", "shift_eol_comment", "split_post_comment", "take_trailing",
           "write_file", "yaml_for"]


def yaml_for(text: str) -> YAML:
    """A round-trip emitter matching the file's own indentation, never wrapping lines."""
    y = YAML(typ="rt")
    y.width = 4096  # a long description stays on its line
    y.preserve_quotes = True
    mapping, offset = guess_indent(text)
    y.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return y


def guess_indent(text: str) -> tuple[int, int]:
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


def load(text: str) -> tuple[YAML, CommentedMap]:
    y = yaml_for(text)
    data = y.load(text)
    if not isinstance(data, CommentedMap):
        raise FlagopsError("the flag file is not a YAML mapping; fix it by hand (flagops validate)")
    return y, data


def dump(y: YAML, data: CommentedMap) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def flow(values: Iterable[str]) -> CommentedSeq:
    seq = CommentedSeq(list(values))
    seq.fa.set_flow_style()
    return seq


def split_post_comment(token: Optional[CommentToken]) -> tuple[str, str]:
    """A key's trailing comment as (end-of-line part, full lines that follow it)."""
    if token is None:
        return "", ""
    eol, _, rest = token.value.partition("\n")
    return eol, rest


def insert_field(data: CommentedMap, name: str, value: Any, order: Sequence[str]) -> None:
    """Add a field at its canonical position; comment lines before the next field stay before it."""
    position = 0
    for i, existing in enumerate(data):
        if existing in order and order.index(existing) < order.index(name):
            position = i + 1
    if position > 0:
        previous = list(data)[position - 1]
        item = data.ca.items.get(previous)
        token = item[2] if item and len(item) > 2 else None
        eol, rest = split_post_comment(token)
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


def remove_field(data: CommentedMap, name: str) -> None:
    """Drop a field; full comment lines below it (about the next field) are kept."""
    if name not in data:
        return
    keys = list(data)
    item = data.ca.items.get(name)
    _, rest = split_post_comment(item[2] if item and len(item) > 2 else None)
    del data[name]
    if rest:
        i = keys.index(name)
        if i > 0 and not isinstance(data[keys[i - 1]], (CommentedMap, CommentedSeq)):
            prev = data.ca.items.setdefault(keys[i - 1], [None, None, None, None])
            if prev[2] is not None and prev[2].value.endswith("\n"):
                prev[2].value = prev[2].value + rest
            else:
                prev[2] = CommentToken("\n" + rest, CommentMark(0), None)


def last_slot(node: Any) -> Optional[tuple[dict, Any, int]]:
    """Where ruamel keeps the comment lines after the last value of ``node``: (items, key, slot)."""
    if isinstance(node, CommentedMap) and node:
        key = list(node)[-1]
        value = node[key]
        if isinstance(value, (CommentedMap, CommentedSeq)) and value and not value.fa.flow_style():
            return last_slot(value)
        return node.ca.items, key, 2
    if isinstance(node, CommentedSeq) and node:
        index = len(node) - 1
        value = node[index]
        if isinstance(value, (CommentedMap, CommentedSeq)) and value and not value.fa.flow_style():
            return last_slot(value)
        return node.ca.items, index, 0
    return None


def take_trailing(data: CommentedMap) -> str:
    """Detach the comment lines at the end of the document (they follow whatever ends up last)."""
    where = last_slot(data)
    if where is None:
        return ""
    items, key, slot = where
    entry = items.get(key)
    token = entry[slot] if entry else None
    eol, rest = split_post_comment(token)
    if rest and token is not None and entry is not None:
        if eol:
            token.value = eol + "\n"
        else:
            entry[slot] = None
    return rest


def give_trailing(data: CommentedMap, rest: str) -> None:
    where = last_slot(data) if rest else None
    if where is None:
        return
    items, key, slot = where
    entry = items.setdefault(key, [None, None, None, None])
    token = entry[slot]
    if token is not None and token.value.endswith("\n"):
        token.value = token.value + rest
    else:
        entry[slot] = CommentToken("\n" + rest, CommentMark(0), None)




def flow_width(seq: Sequence[Any]) -> int:
    return len(", ".join(map(str, seq))) + 2


def shift_eol_comment(mapping: CommentedMap, name: str, delta: int) -> None:
    """Keep the gap before a field's end-of-line comment when its value grew or shrank."""
    item = mapping.ca.items.get(name)
    token = item[2] if item and len(item) > 2 else None
    if token is None or delta == 0 or not token.value.startswith("#") or token.start_mark is None:
        return
    mark = copy.copy(token.start_mark)
    mark.column = max(0, mark.column + delta)
    token.start_mark = mark


def set_axis(scope: CommentedMap, axis: str, values: CommentedSeq, order: Sequence[str]) -> None:
    if axis in scope:
        scope[axis] = values
        return
    position = sum(1 for a in scope if a in order and order.index(a) < order.index(axis))
    scope.insert(position, axis, values)


def write_file(path: Path, text: str, *, expect: Optional[bytes], create: bool = False) -> None:
    """Replace ``path`` in one rename; refuse when it changed since it was read as ``expect``.

    With ``create`` the file must not exist yet: someone else's new file is never clobbered.
    """
    def unchanged() -> None:
        if expect is not None and path.read_bytes() != expect:
            raise FlagopsError(f"{path.name} changed while it was being edited; nothing was written",
                               hint="run the command again")

    try:
        atomic_write(path, text.encode("utf-8"), exclusive=create, before_replace=unchanged)
    except FileExistsError:
        raise FlagopsError(f"{path.name} was created by someone else meanwhile; nothing was written") from None
