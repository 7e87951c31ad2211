"""Spread CPU-bound work over the machine's cores with fork (no pickling of the big inputs).

The parent forks one child per extra core; each child runs ``func(i)`` on inherited memory
and sends back a pickled result through a pipe. The parent does share 0 itself. Set
``FLAGOPS_JOBS=1`` to run everything in one process.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any, Callable

JOBS_ENV = "FLAGOPS_JOBS"


def jobs() -> int:
    """Worker processes to use: FLAGOPS_JOBS, else the cores this process may run on."""
    value = os.environ.get(JOBS_ENV)
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def fork_map(func: Callable[[int], Any], shares: int) -> list[Any]:
    """``[func(0), ..., func(shares - 1)]``, shares 1.. computed in forked children.

    An exception in a child is re-raised in the parent (as RuntimeError with its text).
    """
    if shares <= 1 or not hasattr(os, "fork"):
        return [func(i) for i in range(shares)]
    children: list[tuple[int, int, int]] = []  # (share, pid, read fd)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for share in range(1, shares):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: compute, send, exit without running the parent's cleanup
                code = 0
                try:
                    os.close(r)
                    try:
                        payload = pickle.dumps((True, func(share)), protocol=pickle.HIGHEST_PROTOCOL)
                    except BaseException as exc:  # noqa: BLE001 - reported to the parent
                        payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(w, view):]
                finally:
                    os._exit(code)
            os.close(w)
            children.append((share, pid, r))
        results: list[Any] = [func(0)]
    except BaseException:
        for _, pid, r in children:
            os.close(r)
            os.waitpid(pid, 0)
        raise
    failure = None
    for _, pid, r in children:
        try:
            data = _read_all(r)
        finally:
            os.close(r)
            os.waitpid(pid, 0)
        if not data:
            failure = failure or "a worker process died"
            continue
        ok, value = pickle.loads(data)
        if not ok:
            failure = failure or value
        results.append(value)
    if failure:
        raise RuntimeError(f"parallel work failed: {failure}")
    return results
