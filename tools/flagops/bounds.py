"""The limits every reader enforces, and how a breach is located.

Nesting deeper than :data:`MAX_DEPTH`, integers longer than :data:`MAX_INT_DIGITS` digits and
strings no UTF-8 file can hold (a lone surrogate, written as an escape) never get past the
readers: each becomes a problem at its line and column.
"""

from __future__ import annotations

import re
from itertools import chain, compress
from typing import Any, Iterator

from .problems import Problem

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "depth_exceeds", "json_locate", "line_col", "may_hold_surrogates",
           "too_deep_message", "too_large", "unencodable"]

#: Lists and mappings nested deeper than this are refused (a flag needs 3, an inventory 2).
MAX_DEPTH = 32
#: Integers with more digits are refused (a pct has at most 3).
MAX_INT_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")

Position = tuple[int, int]  # (line, col), both 1-based


def too_deep_message(at: str = "") -> str:
    return (f"lists and mappings are nested more than {MAX_DEPTH} levels deep{at}; "
            "a flag needs three, an inventory two")


def too_large(path: str, size: int, limit: int) -> Problem:
    """The problem of a file of ``size`` bytes or more against a limit of ``limit``."""
    return Problem(path, 1, 1, "file-too-large", f"the file is {size} bytes; it must stay under {limit} bytes")


def line_col(text: str, at: int) -> Position:
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


def unencodable(path: str, doc: Any) -> list[Problem]:
    """Strings no UTF-8 file can hold (a lone surrogate, written as an escape) become problems.

    The offending strings are replaced by their escaped form, so a caller that prints the
    document anyway (``show``) cannot crash on them.
    """
    found: list[tuple[JsonPath, bool, str]] = []
    stack: list[tuple[JsonPath, Any]] = [((), doc.data)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, dict):
            for key in list(value):
                item = value[key]
                if isinstance(key, str) and _SURROGATE.search(key):
                    found.append((at + (key,), True, key))
                    del value[key]
                    key = _escaped(key)
                    value[key] = item
                if isinstance(item, str) and _SURROGATE.search(item):
                    found.append((at + (key,), False, item))
                    value[key] = _escaped(item)
                elif isinstance(item, (dict, list)):
                    stack.append((at + (key,), item))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str) and _SURROGATE.search(item):
                    found.append((at + (i,), False, item))
                    value[i] = _escaped(item)
                elif isinstance(item, (dict, list)):
                    stack.append((at + (i,), item))
        elif isinstance(value, str) and _SURROGATE.search(value):
            found.append(((), False, value))
            doc.data = _escaped(value)
    problems = []
    for at, key, value in found:
        char = _SURROGATE.search(value).group()  # type: ignore[union-attr]
        line, col = doc.locate(at, key=key)
        problems.append(Problem(
            path, line, col, "unencodable-string",
            f"{'the key' if key else 'the string'} \"{_escaped(value)}\" holds the lone surrogate "
            f"U+{ord(char):04X}, which UTF-8 cannot encode; write the character itself "
            "(or \\U0001F600 for one outside the BMP), not half of a UTF-16 pair"))
    return sorted(problems)


def _escaped(value: str) -> str:
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def may_hold_surrogates(text: str) -> bool:
    # Decoded UTF-8 never holds one; only a \u escape can make one. (A lone backslash is
    # found by memchr; the pair costs a slower search, done only when there is one.)
    return "\\" in text and ("\\u" in text or "\\U" in text)


# JSON tokens that matter for locating: strings (skipped whole), brackets, long digit runs.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9]{%d,}' % (MAX_INT_DIGITS + 1))


def json_locate(text: str, *, number: bool) -> Position:
    """Where JSON text first nests too deep (or, with ``number``, holds a too long integer)."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token[0] == '"':
            continue
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH and not number:
                return line_col(text, m.start())
        elif token in "]}":
            depth -= 1
        elif number:
            return line_col(text, m.start())
    return 1, 1


def depth_exceeds(data: Any) -> bool:
    """True when ``data`` nests lists and mappings deeper than MAX_DEPTH (one level at a time)."""
    level = [data] if isinstance(data, (dict, list)) else []
    container = {dict, list}.__contains__

    def children() -> Iterator[Any]:
        return chain(chain.from_iterable(map(dict.values, filter(dict.__instancecheck__, level))),
                     chain.from_iterable(filter(list.__instancecheck__, level)))

    for _ in range(MAX_DEPTH):
        # The next level, with C-level loops only: an inventory's 100,000 tenants add up. The
        # last level (the tenants' fields) is only looked at, never copied.
        if not level or not any(map(container, set(map(type, children())))):
            return False
        everything = list(children())
        level = list(compress(everything, map(container, map(type, everything))))
    return bool(level)