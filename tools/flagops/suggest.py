"""Did-you-mean: the closest known name to a mistyped one, for every "unknown X" message."""

from __future__ import annotations

import difflib
from typing import Iterable, Optional

__all__ = ["closest", "did_you_mean"]


def closest(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate ``word`` most likely meant, or None when none is close."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        # An abbreviation ("prod") is too short for difflib but still unambiguous.
        close = [c for c in pool if c.startswith(word)][:1] if sum(c.startswith(word) for c in pool) == 1 else []
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` for the closest candidate, or an empty string."""
    match = closest(word, candidates)
    return f' (did you mean "{match}"?)' if match else ""
