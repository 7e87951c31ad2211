"""``flagops stale``: text (one entry per flag), github (annotations) and json (the contract)."""

from __future__ import annotations

from ..loading import FLAG_SUFFIX, FLAGS_DIR
from ..stale import StaleFlag
from .base import Reporters, annotation, json_document, lines


def text(flags: list[StaleFlag]) -> str:
    return lines([f"{f.key}: {f.reason} (owner: {f.owner or 'no owner'}; since {f.since or '-'})\n"
                  f"  -> {f.action}" for f in flags])


def github(flags: list[StaleFlag]) -> str:
    return lines([annotation("warning", f"{FLAGS_DIR}/{f.key}{FLAG_SUFFIX}",
                             f"{f.reason} (owner: {f.owner or 'no owner'}); {f.action}",
                             line=1, title=f"flagops stale {f.key}") for f in flags])


def json_report(flags: list[StaleFlag]) -> str:
    """``[{"key","reason","since","owner","action"}]``."""
    return json_document([f.to_dict() for f in flags])


def summary(flags: list[StaleFlag]) -> str:
    return f"{len(flags)} stale flag{'s' * (len(flags) != 1)}"


REPORTERS = Reporters(text=text, github=github, json=json_report)
