"""Validation results (``flagops validate``, and every refusal of invalid input): text, github, json."""

from __future__ import annotations

import json

from ..problems import Result
from .base import Reporters, annotation, lines, one_line


def text(result: Result) -> str:
    """``path:line:col: severity: message (rule)``, one problem per line, sorted by file and line."""
    return lines([f"{one_line(p.path)}:{p.line}:{p.col}: {p.severity}: {one_line(p.message)} ({p.rule})"
                  for p in result.sorted()])


def github(result: Result) -> str:
    """Exactly ``::error file=…,line=…,col=…::message (rule)``, as the runner and scripts expect."""
    return lines([annotation("error" if p.severity == "error" else "warning", p.path, f"{p.message} ({p.rule})",
                             line=p.line, col=p.col) for p in result.sorted()])


def json_report(result: Result, *, strict: bool = False) -> str:
    """One document; ``valid`` agrees with the exit code (``strict`` counts warnings)."""
    payload = {
        "valid": result.ok(strict=strict),
        "errors": len(result.errors),
        "warnings": len(result.warnings),
        "problems": [p.to_dict() for p in result.sorted()],
    }
    return json.dumps(payload, indent=2) + "\n"


def summary(result: Result) -> str:
    """The stderr line after a report: counts, or ``all files valid``."""
    e, w = len(result.errors), len(result.warnings)
    if not e and not w:
        return "all files valid"
    return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"


REPORTERS = Reporters(text=text, github=github, json=json_report)
