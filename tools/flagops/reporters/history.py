"""``flagops history``: text (a timeline, one line per change) and json (the contract)."""

from __future__ import annotations

from typing import Any

from ..render import render
from .base import Reporters, json_document


def text(entries: list[dict[str, Any]], *, show_key: bool = False, empty_message: str = "") -> str:
    """``2026-10-09 10:00 UTC  1a2b3c4d5e6f  carol@dezky.eu  [key  ]pct 30 -> 60  "subject"``."""
    return render("history.txt.j2", entries=entries, show_key=show_key, empty_message=empty_message)


def json_report(entries: list[dict[str, Any]], **_: Any) -> str:
    """``[{"commit", "shortCommit", "date", "authorName", "authorEmail", "subject", "key",
    "action", "changes", "unparseable"}]``."""
    return json_document(entries)


REPORTERS = Reporters(text=text, json=json_report)
