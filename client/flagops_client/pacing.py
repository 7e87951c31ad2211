"""A steady pace for bursts of requests: at most ``rate`` per second, never all at once."""

from __future__ import annotations

import threading
import time
from typing import Optional


class Pacer:
    """``wait()`` before each request; the pace carries over from one round to the next."""

    def __init__(self, rate: float, stop: threading.Event) -> None:
        self.interval = 1.0 / rate
        self._stop = stop
        self._next = 0.0

    def wait(self, until: Optional[float] = None) -> bool:
        """Sleep until the next slot; False when ``stop`` was set or the slot is after ``until``."""
        now = time.monotonic()
        slot = max(now, self._next)
        if until is not None and slot > until:
            return False
        self._next = slot + self.interval
        if slot > now:
            return not self._stop.wait(slot - now)
        return not self._stop.is_set()
