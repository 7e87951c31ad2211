"""The :class:`Reporters` table and what every reporter needs: JSON, one-line text, GitHub annotations."""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from ..errors import UsageError

Reporter = Callable[..., str]


class Reporters:
    """Format name -> reporter for one subject; the first format is the default."""

    def __init__(self, **reporters: Reporter):
        self._reporters = dict(reporters)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._reporters)

    def __getitem__(self, fmt: str) -> Reporter:
        try:
            return self._reporters[fmt]
        except KeyError:
            raise UsageError(f'unknown format "{fmt}"; choose one of {", ".join(self._reporters)}') from None

    def render(self, fmt: str, value: Any, **options: Any) -> str:
        return self[fmt](value, **options)


def json_document(value: Any) -> str:
    """One JSON document, indented, non-ASCII kept, with a final newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def lines(items: list[str]) -> str:
    """Lines joined, with a final newline unless there are none."""
    return "\n".join(items) + ("\n" if items else "")


def one_line(value: str) -> str:
    """One entry per line, whatever a file name or value holds."""
    return value.replace("\r", "\\r").replace("\n", "\\n")


def github_escape(value: str, *, prop: bool = False) -> str:
    """Workflow-command escaping, as the GitHub runner expects it (``prop`` for a property value)."""
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def annotation(kind: str, file: str, message: str, *, line: Optional[int] = None, col: Optional[int] = None,
               title: Optional[str] = None) -> str:
    """``::kind file=…,line=…[,col=…][,title=…]::message``, every part escaped."""
    props = [f"file={github_escape(file, prop=True)}"]
    if line is not None:
        props.append(f"line={line}")
    if col is not None:
        props.append(f"col={col}")
    if title is not None:
        props.append(f"title={github_escape(title, prop=True)}")
    return f"::{kind} {','.join(props)}::{github_escape(message)}"
