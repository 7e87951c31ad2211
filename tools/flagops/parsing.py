"""Parse flag files and tenant inventories into plain data, keeping the line and column of every node.

YAML is read the way operators type it: only ``true``/``false`` are booleans (``on``, ``off``,
``yes`` and ``no`` stay strings), dates stay strings, duplicated keys are errors at the
duplicate, anchors and aliases are refused. Large JSON inventories take a fast path and are
only re-parsed with positions when something in them needs pointing at.

Every parser here is bounded and never raises on hostile bytes: nesting deeper than
:data:`MAX_DEPTH`, integers longer than :data:`MAX_INT_DIGITS` digits and strings no UTF-8 file
can hold (lone surrogates written as escapes) are located problems, so nothing later in the
pipeline meets them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .bounds import (MAX_DEPTH, MAX_INT_DIGITS, depth_exceeds, json_locate, line_col, may_hold_surrogates,
                     too_deep_message, too_large, unencodable)
from .fastpath import fast_inventory
from .problems import Problem

#: A flag file must stay under this size; inventories may be much larger.
MAX_FLAG_BYTES = 1024 * 1024
MAX_INVENTORY_BYTES = 256 * 1024 * 1024
#: Something that may be a YAML anchor or alias; libyaml cannot report them, so such
#: text is re-read by the pure-Python composer, which refuses them at their position.
_ANCHOR_HINT = re.compile(r"(?:^|[\s\[\{,])[&*][^\s\[\]\{\},]", re.MULTILINE)

JsonPath = tuple  # a path of keys and indices into a document
Position = tuple[int, int]  # (line, col), both 1-based


# --------------------------------------------------------------------------- YAML reading


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core-schema scalars: no yes/no/on/off booleans, no sexagesimals, no dates."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _AnchorError(yaml.MarkedYAMLError):
    pass


class _DepthError(yaml.MarkedYAMLError):
    pass


class _Loader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver
):
    """Pure-Python composer that refuses anchors, aliases and deep nesting where they occur."""

    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Node:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _AnchorError(
                None, None, f"alias *{event.anchor} is not allowed (write the value out)",
                event.start_mark,
            )
        if getattr(event, "anchor", None) is not None:
            raise _AnchorError(
                None, None, f"anchor &{event.anchor} is not allowed (write the value out)",
                event.start_mark,
            )
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        # The composer recurses once per level: stop long before Python's recursion limit.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _DepthError(None, None, too_deep_message(), event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - libyaml is present in every supported install
    _CParser = None  # type: ignore[assignment,misc]

if _CParser is not None:

    class _CLoader(_CParser, _Resolver):  # type: ignore[misc,name-defined]
        """libyaml composer for large inventories; aliases are caught by node identity."""

        def __init__(self, stream: str):
            _CParser.__init__(self, stream)  # type: ignore[attr-defined]
            _Resolver.__init__(self)

else:  # pragma: no cover - libyaml is present in every supported install
    _CLoader = None  # type: ignore[assignment,misc]


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _NumberError(ValueError):
    def __init__(self, digits: str):
        super().__init__(f"a number of {len(digits)} characters is too long "
                         f"(at most {MAX_INT_DIGITS} digits); quote it if it is an identifier")


def _scalar_value(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        if len(value) > MAX_INT_DIGITS:
            raise _NumberError(value)
        return int(value, 0)
    if tag == "tag:yaml.org,2002:float":
        low = value.lower()
        if low.endswith(".inf"):
            return float("-inf") if low.startswith("-") else float("inf")
        if low == ".nan":
            return float("nan")
        return float(value)
    if tag == "tag:yaml.org,2002:null":
        return None
    raise ValueError(f"the tag {tag} is not supported (use plain strings, numbers and lists)")


class _Converter:
    """Turns a node tree into plain data plus a position for every value and key."""

    def __init__(self, path: str):
        self.path = path
        self.positions: dict[JsonPath, Position] = {}
        self.key_positions: dict[JsonPath, Position] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()

    def convert(self, node: Node, at: JsonPath = (), depth: int = 0) -> Any:
        if id(node) in self._seen:
            line, col = _pos(node)
            self.problems.append(
                Problem(self.path, line, col, "yaml-alias", "aliases are not allowed (write the value out)")
            )
            return None
        self._seen.add(id(node))
        self.positions[at] = _pos(node)
        if isinstance(node, ScalarNode):
            try:
                return _scalar_value(node)
            except ValueError as exc:
                line, col = _pos(node)
                rule = "number-too-large" if isinstance(exc, _NumberError) else "yaml-tag"
                self.problems.append(Problem(self.path, line, col, rule, str(exc)))
                return None
        depth += 1
        if depth > MAX_DEPTH:  # libyaml composes up to 1,000 levels; keep to the same bound
            line, col = _pos(node)
            self.problems.append(Problem(self.path, line, col, "too-deep", too_deep_message()))
            return None
        if isinstance(node, SequenceNode):
            return [self.convert(child, at + (i,), depth) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    line, col = _pos(key_node)
                    self.problems.append(
                        Problem(self.path, line, col, "yaml-key", "a mapping key must be a plain string")
                    )
                    continue
                key = key_node.value
                if key in out:
                    line, col = _pos(key_node)
                    first = self.key_positions.get(at + (key,), (0, 0))[0]
                    self.problems.append(
                        Problem(
                            self.path, line, col, "duplicate-key",
                            f"duplicate key {json.dumps(key, ensure_ascii=False)} (first defined on line {first}); keep one",
                        )
                    )
                    continue
                self.key_positions[at + (key,)] = _pos(key_node)
                out[key] = self.convert(value_node, at + (key,), depth)
            return out
        raise TypeError(f"unexpected node {node!r}")  # pragma: no cover


# --------------------------------------------------------------------------- documents


@dataclass
class Document:
    """Parsed data of one file, with lazy access to the position of every value."""

    path: str
    data: Any
    text: str = ""
    positions: Optional[dict[JsonPath, Position]] = None
    key_positions: Optional[dict[JsonPath, Position]] = None

    def _ensure_positions(self) -> None:
        if self.positions is not None:
            return
        # Fast-parsed documents (JSON) get positions only when something needs locating.
        self.positions, self.key_positions = {}, {}
        try:
            node = _compose(self.text, fast=True)
        except yaml.YAMLError:
            try:  # libyaml refuses some escapes JSON allows (a lone surrogate)
                node = _compose(self.text, fast=False)
            except yaml.YAMLError:
                return
        if node is not None:
            conv = _Converter(self.path)
            conv.convert(node)
            self.positions, self.key_positions = conv.positions, conv.key_positions

    def locate(self, at: Iterable[Any] = (), *, key: bool = False) -> Position:
        """Position of the value at ``at`` (of its key with ``key=True``), else the nearest parent."""
        self._ensure_positions()
        assert self.positions is not None and self.key_positions is not None
        at = tuple(at)
        if key and at in self.key_positions:
            return self.key_positions[at]
        while True:
            if at in self.positions:
                return self.positions[at]
            if not at:
                return (1, 1)
            at = at[:-1]


#: Text that libyaml and the pure-Python composer read alike, errors and positions included (a
#: differential fuzz test holds them to it): no tab, carriage return, BOM, Unicode line break,
#: escape or control character, and none of the indicators of anchors, aliases, tags, block
#: scalars, directives and complex keys. Ordinary flag files are like this. The reserved ``@``
#: and `` ` `` may stay (an owner's address): both readers refuse them where a token starts.
_READ_ALIKE = re.compile("[^\t\r\ufeff\u0085\u2028\u2029\\\\\x00-\x08\x0b-\x1f\x7f-\x9f&*!|>%?]*")
_DOCUMENT_MARKER = re.compile(r"^(?:---|\.\.\.)", re.MULTILINE)


def read_alike(text: str) -> bool:
    """True when libyaml reads ``text`` exactly as the pure-Python composer does."""
    return _READ_ALIKE.fullmatch(text) is not None and not _DOCUMENT_MARKER.search(text)


def _read_differently(node: Optional[Node]) -> bool:
    """Whether libyaml's tree may be reported differently from the pure-Python composer's: an
    empty value in a flow collection (``{a: }``: libyaml places it at the next token, the pure
    composer right after the colon), or a collection as a key (its depth is checked first there)."""
    stack = [node] if isinstance(node, yaml.CollectionNode) else []
    while stack:
        parent = stack.pop()
        if isinstance(parent, yaml.MappingNode):
            if any(isinstance(key, yaml.CollectionNode) for key, _ in parent.value):
                return True
            items = [n for pair in parent.value for n in pair]
        else:
            items = parent.value
        for child in items:
            if isinstance(child, yaml.CollectionNode):
                stack.append(child)
            elif parent.flow_style and child.value == "" and not child.style:  # plain: None or ""
                return True
    return False


def _compose(text: str, *, fast: bool, exact: bool = False) -> Optional[Node]:
    """The node tree of ``text``; with ``fast``, read by libyaml where it can.

    ``exact``: libyaml's errors are read again by the pure-Python composer, whose messages and
    positions are the documented ones (for text that :func:`read_alike` accepts).
    """
    if fast and _CLoader is not None:
        loader = _CLoader(text)
        try:
            node = loader.get_single_node()
            if not (exact and _read_differently(node)):
                return node
        except yaml.YAMLError as exc:
            if not exact and (not isinstance(exc, yaml.scanner.ScannerError)
                              or ("nesting depth" not in str(exc) and "escape code" not in str(exc))):
                raise
            # libyaml stops at 1,000 levels and refuses surrogate escapes; the pure-Python
            # composer names the level that is too deep, and the reader the surrogate.
        finally:
            loader.dispose()
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _decode(path: str, raw: bytes, max_bytes: int) -> tuple[Optional[str], list[Problem]]:
    """The text of a file under its size limit, or why there is none."""
    if len(raw) >= max_bytes:
        return None, [too_large(path, len(raw), max_bytes)]
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(path, line, col, "encoding",
                    f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8")
        ]


def _yaml_problem(path: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(exc, _AnchorError):
        rule = "yaml-alias" if "alias" in str(exc.problem) else "yaml-anchor"
        return Problem(path, line, col, rule, str(exc.problem))
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and str(what).startswith("but "):  # "expected X" + "but found Y" reads in that order
        message = f"YAML syntax error: {context}, {what}"
    else:
        message = f"YAML syntax error: {what}" + (f" ({context})" if context else "")
    return Problem(path, line, col, "yaml-syntax", message)


def parse_yaml(path: str, raw: bytes, *, max_bytes: int = MAX_FLAG_BYTES, fast: bool = False,
               exact: bool = False) -> tuple[Optional[Document], list[Problem]]:
    """Parse one YAML file with positions. Returns (document or None, problems); never raises.

    ``fast``: an inventory: its regular shape is read without YAML, the rest by libyaml.
    ``exact``: read by libyaml only text :func:`read_alike` accepts, else as by default.
    """
    text, problems = _decode(path, raw, max_bytes)
    if text is None:
        return None, problems
    if fast:
        data = fast_inventory(text)
        if data is not None:
            return Document(path, data, text), []  # positions computed only if needed
        if _ANCHOR_HINT.search(text):
            fast = False
    exact = exact and not fast and read_alike(text)
    try:
        node = _compose(text, fast=fast or exact, exact=exact)
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses (libyaml reports a byte offset, so find it in the text).
        bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
        at = bad.start() if bad else 0
        line, col = line_col(text, at)
        char = text[at] if bad else "\ufffd"
        return None, [Problem(path, line, col, "yaml-syntax",
                              f"the character U+{ord(char):04X} is not allowed in YAML; remove it")]
    except _DepthError as exc:
        mark = exc.problem_mark
        return None, [Problem(path, mark.line + 1, mark.column + 1, "too-deep", str(exc.problem))]
    except yaml.YAMLError as exc:
        return None, [_yaml_problem(path, exc)]
    if node is None:
        return None, [Problem(path, 1, 1, "empty-file", "the file holds no YAML document, only comments or blank lines")]
    conv = _Converter(path)
    data = conv.convert(node)
    if any(p.rule == "too-deep" for p in conv.problems):  # refused whole, as the pure composer does
        return None, [p for p in conv.problems if p.rule == "too-deep"]
    doc = Document(path, data, text, conv.positions, conv.key_positions)
    problems = conv.problems
    if may_hold_surrogates(text):
        problems = problems + unencodable(path, doc)
    return doc, problems


def parse_flag_blob(path: str, raw: bytes) -> tuple[Optional[dict[str, Any]], list[Problem]]:
    """The mapping of one flag file's bytes (an old git blob, say), or None and why not.

    Bounded like every reader here (size, nesting, numbers, encodable strings), so a history
    scan over old commits can show an unparseable version instead of crashing on it.
    """
    doc, problems = parse_yaml(path, raw, max_bytes=MAX_FLAG_BYTES, fast=True)
    if doc is None or any(p.severity == "error" for p in problems) or not isinstance(doc.data, dict):
        if doc is not None and not problems:
            line, col = doc.locate(())
            problems = [Problem(path, line, col, "not-a-mapping",
                                "a flag file must be a YAML mapping (key: value lines)")]
        return None, problems
    return doc.data, problems


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _BigNumber(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # built in C; a repeated key shows as a shorter dict
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


def _json_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise _BigNumber(digits)
    return int(digits)


def parse_json(path: str, raw: bytes, *, max_bytes: int = MAX_INVENTORY_BYTES
               ) -> tuple[Optional[Document], list[Problem]]:
    """Parse one JSON file fast; positions are computed only if a problem needs them."""
    text, problems = _decode(path, raw, max_bytes)
    if text is None:
        return None, problems
    if not text.strip():
        return None, [Problem(path, 1, 1, "empty-file", "the file is empty; it must hold a JSON array")]
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_json_int)
    except _DuplicateKey:
        # Rare: locate the duplicate with the position-keeping reader.
        doc, problems = parse_yaml(path, raw, max_bytes=max_bytes, fast=True)
        dup = [p for p in problems if p.rule == "duplicate-key"]
        return doc, dup or [Problem(path, 1, 1, "duplicate-key", "a JSON object repeats a key")]
    except _BigNumber as exc:
        line, col = json_locate(text, number=True)
        return None, [Problem(path, line, col, "number-too-large", str(_NumberError(exc.args[0])))]
    except RecursionError:  # nested beyond what the decoder recurses into
        data, deep = None, True
    except json.JSONDecodeError as exc:
        return None, [Problem(path, exc.lineno, exc.colno, "json-syntax", f"JSON syntax error: {exc.msg}")]
    else:
        deep = depth_exceeds(data)
    if deep:
        line, col = json_locate(text, number=False)
        return None, [Problem(path, line, col, "too-deep", too_deep_message())]
    doc = Document(path, data, text)
    if may_hold_surrogates(text):
        return doc, unencodable(path, doc)
    return doc, []


def parse_file(path: str, raw: bytes, *, max_bytes: int) -> tuple[Optional[Document], list[Problem]]:
    if path.endswith(".json"):
        return parse_json(path, raw, max_bytes=max_bytes)
    if max_bytes > MAX_FLAG_BYTES:
        return parse_yaml(path, raw, max_bytes=max_bytes, fast=True)
    return parse_yaml(path, raw, max_bytes=max_bytes, exact=True)  # a flag file: small, read exactly
