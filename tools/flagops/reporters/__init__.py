"""Named reporters: every command's output in the formats it offers (text, github, json...).

One module per subject (``validation``, ``stale``, ``refs``, ``compile``; others add theirs),
each defining ``REPORTERS``, a :class:`~flagops.reporters.base.Reporters` of format name to
function. A subject's module is imported only when that output is asked for::

    from flagops import reporters
    out = reporters.render("stale", "github", found)      # a str, "" when there is nothing
    reporters.formats("stale")                            # ("text", "github", "json")

Reporters return text and never print: the CLI decides the stream (stdout for the requested
output, stderr for summaries).
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Reporters

__all__ = ["Reporters", "formats", "get", "render"]


def get(subject: str) -> Reporters:
    """The reporters of ``subject`` (the module ``flagops.reporters.<subject>``)."""
    module = importlib.import_module(f"{__name__}.{subject}")
    found: Reporters = module.REPORTERS
    return found


def formats(subject: str) -> tuple[str, ...]:
    """The format names ``subject`` offers, the default first."""
    return get(subject).names


def render(subject: str, fmt: str, value: Any, **options: Any) -> str:
    """``value`` reported as ``fmt`` by the reporters of ``subject``."""
    return get(subject).render(fmt, value, **options)
