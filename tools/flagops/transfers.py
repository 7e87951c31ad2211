"""A bounded pool of uploads or deletions with retries, shared by every publish."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Optional

from .storage import Retry, retrying

__all__ = ["Progress", "Transfers"]

Progress = Callable[[int, int, str], None]




class Transfers:
    """A bounded pool running uploads/deletions with retries; the first failure stops the rest.

    ``before`` runs before every attempt (the lock check): a run that lost its lock stops at once.
    """

    def __init__(self, options: Any, label: str, total: int, before: Optional[Callable[[], None]] = None):
        """``options``: anything with ``workers``, ``retry`` (:class:`Retry`) and ``progress``."""
        self.options, self.label, self.total, self.before = options, label, total, before
        self.done = 0
        self.started = 0
        self.bytes = 0
        self._mutex = threading.Lock()

    def run(self, jobs: list[tuple[str, Callable[[], int]]]) -> None:
        if not jobs:
            return
        if self.options.progress:
            self.options.progress(0, self.total, self.label)
        stop = threading.Event()
        first: list[BaseException] = []

        def attempt(fn: Callable[[], int]) -> int:
            if stop.is_set():
                raise _Stopped()
            if self.before:
                self.before()
            return fn()

        def one(name: str, fn: Callable[[], int]) -> None:
            if stop.is_set():
                return
            with self._mutex:
                self.started += 1
            try:
                sent = retrying(lambda: attempt(fn), self.options.retry)
                with self._mutex:
                    self.done += 1
                    self.bytes += sent
                    done = self.done
                if self.options.progress:
                    self.options.progress(done, self.total, self.label)
            except _Stopped:
                raise
            except BaseException as exc:
                with self._mutex:  # the cause, not one of the uploads refused after it
                    first.append(exc)
                raise

        with ThreadPoolExecutor(max_workers=max(1, self.options.workers)) as pool:
            futures: list[Future[None]] = [pool.submit(one, name, fn) for name, fn in jobs]
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # interrupted: let the uploads in flight end, start no more
                stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                raise
            failed = next((f for f in finished if f.exception() is not None), None)
            if failed is not None:
                stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                exc = first[0] if first else failed.exception()
                assert exc is not None
                raise exc


class _Stopped(Exception):
    """Another upload of the pool failed first."""
