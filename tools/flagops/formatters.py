"""Named formatters for validation results: ``text``, ``github`` and ``json``."""

from __future__ import annotations

import json
from typing import Callable

from .problems import Problem, Result


def _escape_github(value: str, *, prop: bool = False) -> str:
    # Workflow-command escaping, as the GitHub runner expects it.
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def _one_line(value: str) -> str:
    # One problem per line, whatever a file name or value holds.
    return value.replace("\r", "\\r").replace("\n", "\\n")


def format_text(result: Result) -> str:
    lines = [f"{_one_line(p.path)}:{p.line}:{p.col}: {p.severity}: {_one_line(p.message)} ({p.rule})"
             for p in result.sorted()]
    return "\n".join(lines) + ("\n" if lines else "")


def format_github(result: Result) -> str:
    lines = []
    for p in result.sorted():
        kind = "error" if p.severity == "error" else "warning"
        # Exactly ::error file=…,line=…,col=…::message (rule), as the runner and scripts expect.
        lines.append(
            f"::{kind} file={_escape_github(p.path, prop=True)},line={p.line},col={p.col}"
            f"::{_escape_github(f'{p.message} ({p.rule})')}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def format_json(result: Result, *, strict: bool = False) -> str:
    payload = {
        "valid": result.ok(strict=strict),
        "errors": len(result.errors),
        "warnings": len(result.warnings),
        "problems": [p.to_dict() for p in result.sorted()],
    }
    return json.dumps(payload, indent=2) + "\n"


FORMATTERS: dict[str, Callable[[Result], str]] = {
    "text": format_text,
    "github": format_github,
    "json": format_json,
}


def summary(result: Result) -> str:
    e, w = len(result.errors), len(result.warnings)
    if not e and not w:
        return "all files valid"
    return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"


__all__ = ["FORMATTERS", "Problem", "format_github", "format_json", "format_text", "summary"]
