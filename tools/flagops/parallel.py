"""Spread CPU-bound work over the machine's cores with fork (no pickling of the big inputs).

:func:`fork_map`: the parent forks one child per extra core; each child runs ``func(i)`` on
inherited memory and sends back a pickled result through a pipe. The parent does share 0
itself. :func:`overlap`: a child computes pieces of work while the parent consumes them (for
example, writes files), and the parent computes pieces too whenever it would otherwise wait.
Set ``FLAGOPS_JOBS=1`` to run everything in one process.
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import struct
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


_FRAME = struct.Struct("<qQ")  # chunk (or _DONE / _FAILED), payload length
_DONE, _FAILED = -1, -2


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, chunk: int, payload: bytes) -> None:
    view = memoryview(_FRAME.pack(chunk, len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def overlap(compute: Callable[[int], bytes], count: int, consume: Callable[[int, bytes], None]) -> None:
    """``consume(c, compute(c))`` in this process for every chunk ``c`` in ``range(count)``.

    A forked child computes chunks from the front and streams each result back while this
    process consumes them; whenever no result is waiting, this process computes the last
    chunk nobody took yet. So consuming (file writes) overlaps computing (hashing), and
    neither process idles while work remains. Chunks are consumed in no particular order;
    ``compute`` must not change state the parent relies on (the child's changes are lost).
    """
    if count <= 1 or jobs() < 2 or not hasattr(os, "fork"):
        for c in range(count):
            consume(c, compute(c))
        return
    # Two shared integers: the first chunk the child must leave alone (set by this process)
    # and the chunk the child is computing (set by the child).
    shared = mmap.mmap(-1, 16)
    shared[:16] = struct.pack("<qq", count, -1)
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: compute from the front until the parent's limit
        try:
            os.close(r)
            try:
                c = 0
                while c < struct.unpack("<q", shared[:8])[0]:
                    shared[8:16] = struct.pack("<q", c)
                    _send(w, c, compute(c))
                    c += 1
                _send(w, _DONE, b"")
            except BrokenPipeError:
                pass  # the parent stopped listening: it has every result it needs
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                try:
                    _send(w, _FAILED, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
                except OSError:
                    pass
        finally:
            os._exit(0)
    os.close(w)
    remaining = set(range(count))
    limit = count
    child_running = True
    try:
        while remaining:
            if not child_running:  # the child stopped early: whatever is left is ours
                c = remaining.pop()
                consume(c, compute(c))
                continue
            if not select.select([r], [], [], 0)[0]:
                started = struct.unpack("<q", shared[8:16])[0]
                if limit - 1 > started:  # nothing waiting: take the last chunk the child has not reached
                    limit -= 1
                    shared[:8] = struct.pack("<q", limit)
                    remaining.discard(limit)
                    consume(limit, compute(limit))
                    continue
            chunk, size = _FRAME.unpack(_read_exactly(r, _FRAME.size))
            payload = _read_exactly(r, size)
            if chunk == _FAILED:
                raise RuntimeError(f"parallel work failed: {payload.decode('utf-8', 'replace')}")
            if chunk == _DONE:
                child_running = False
            elif chunk in remaining:
                remaining.discard(chunk)
                consume(chunk, payload)
    except EOFError:
        raise RuntimeError("parallel work failed: a worker process died") from None
    finally:
        os.close(r)
        os.waitpid(pid, 0)
        shared.close()
