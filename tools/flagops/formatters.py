"""Moved to :mod:`flagops.reporters.validation`; these names stay for existing importers."""

from __future__ import annotations

from .problems import Problem
from .reporters.validation import REPORTERS, github as format_github, json_report as format_json, summary
from .reporters.validation import text as format_text

FORMATTERS = {name: REPORTERS[name] for name in REPORTERS.names}

__all__ = ["FORMATTERS", "Problem", "format_github", "format_json", "format_text", "summary"]
