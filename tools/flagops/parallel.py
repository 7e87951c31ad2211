"""Spread CPU-bound work over the machine's cores with fork (no pickling of the big inputs).

:func:`fork_map`: the parent forks one child per extra core; each child runs ``func(i)`` on
inherited memory and sends back a pickled result through a pipe. The parent does share 0
itself. :func:`share`: this process and forked workers take chunks of work from one queue
(for example: hash, render and write the bundles of a range of tenants), so that every core
is busy until the end; results travel through :func:`shared_array` memory or files.
Set ``FLAGOPS_JOBS=1`` to run everything in one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import mmap
import os
import pickle
import select
import signal
import struct
import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence

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


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """No garbage collection of the objects that exist now, while the block runs.

    A compile allocates millions of short-lived containers; each automatic collection would
    walk every loaded tenant and flag again. Frozen objects are also never written by the
    collector, so forked workers share their pages instead of copying them.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def shared_array(shape: "int | tuple[int, ...]", dtype: Any) -> Any:
    """A zeroed numpy array in memory shared with the processes forked after it (by :func:`share`)."""
    import numpy as np

    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(1, size)), dtype=dtype, count=size // np.dtype(dtype).itemsize).reshape(shape)


_CLAIM = struct.Struct("<I")  # one chunk number in the queue


def _queue(count: int) -> Optional[int]:
    """The read end of a pipe holding every chunk number (write end closed), or None if it cannot hold them."""
    r, w = os.pipe()
    try:
        need = count * _CLAIM.size
        capacity = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) if hasattr(fcntl, "F_GETPIPE_SZ") else 65536
        if need > capacity and hasattr(fcntl, "F_SETPIPE_SZ"):
            try:
                capacity = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, need)
            except OSError:
                pass
        if need > capacity:
            os.close(r)
            return None
        data = b"".join(_CLAIM.pack(c) for c in range(count))
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r


def _claims(fd: int) -> Iterator[int]:
    """Chunk numbers taken from the queue; a read of one number is atomic between processes."""
    while True:
        data = os.read(fd, _CLAIM.size)
        if not data:
            return
        yield _CLAIM.unpack(data)[0]


def share(work: Callable[[int], int], count: int, progress: Optional[Callable[[int], None]] = None, *,
          then: Sequence[Callable[[], None]] = (), processes: Optional[int] = None,
          gate: Optional[Callable[[], Any]] = None, prepare: Optional[Callable[[int], None]] = None) -> None:
    """``work(c)`` for every chunk ``c`` in ``range(count)``, exactly once, on every core.

    This process and ``jobs() - 1`` forked workers take chunks from one queue, so whoever is
    free takes the next one and all finish together. ``work`` returns how many items it did;
    ``progress(done)`` is called here with the total done by everyone, after each chunk of this
    process and while it waits for the workers. ``then``: tasks that need every chunk done (a
    document over the whole result, say); they are taken from the same queue once the last
    chunk is done, so they too run side by side. What a worker computes reaches this process
    only through memory made with :func:`shared_array` before the call, or through files.
    ``processes``: at most this many processes in all (default :func:`jobs`; 1: only this one).
    ``gate``: run here once the workers have started (a validation, say); until it returns they
    only ``prepare`` the chunks they take (work that writes nothing), and ``work`` runs on those
    after it. If it raises, no ``work`` and no task runs anywhere.
    A worker's exception is raised here as RuntimeError with its text; an exception here stops
    the workers first.
    """
    workers = min(processes or jobs(), jobs(), count + len(then)) - 1
    claims = _queue(count + len(then)) if workers > 0 and hasattr(os, "fork") else None
    if claims is None:
        if gate is not None:
            gate()
        done = 0
        for c in range(count):
            done += work(c)
            if progress:
                progress(done)
        for task in then:
            task()
        return
    counts = shared_array(workers + 1, "<i8")  # items done, one slot per process (one writer each)
    chunks = shared_array(workers + 1, "<i8")  # chunks done, likewise
    stop = shared_array(1, "<i8")  # set by whichever process fails: the others stop waiting
    opened = shared_array(1, "<i8")  # set once the gate has passed
    opened[0] = gate is None
    parent = os.getpid()

    def run(slot: int, wait: Callable[[], None]) -> None:
        waiting: list[int] = []  # chunks prepared before the gate opened, to finish after it

        def finish(c: int) -> None:
            counts[slot] += work(c)
            chunks[slot] += 1
            if progress and slot == 0:
                progress(int(counts.sum()))

        def through_gate() -> None:
            while not opened[0]:
                wait()
            while waiting:
                finish(waiting.pop(0))

        for c in _claims(claims):
            if c < count and not opened[0]:
                if prepare is not None:
                    prepare(c)
                waiting.append(c)
            elif c < count:
                through_gate()
                finish(c)
            else:
                through_gate()
                while int(chunks.sum()) < count:  # the other processes' last chunks
                    wait()
                then[c - count]()
            if slot and os.getppid() != parent:  # this process's parent is gone: stop
                raise _Stopped
        through_gate()

    def worker_wait() -> None:
        if stop[0] or os.getppid() != parent:
            raise _Stopped
        time.sleep(0.0005)

    pool = _Workers()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for slot in range(1, workers + 1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # a worker: take chunks until the queue is empty, exit without cleanup
                code = 0
                try:
                    os.close(r)
                    run(slot, worker_wait)
                except _Stopped:
                    code = _STOPPED
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    code = 1
                    stop[0] = 1
                    try:
                        _write_all(w, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
                    except OSError:
                        pass
                finally:
                    os._exit(code)
            os.close(w)
            pool.add(pid, r)

        def wait() -> None:  # at the barrier: a worker that failed will never finish its chunk
            pool.poll(0.0005)
            if pool.failure:
                raise _Stopped

        if gate is not None:
            gate()  # the workers prepare meanwhile; on failure they are stopped below
            opened[0] = 1
        try:
            run(0, wait)
        except _Stopped:
            pass
        pool.join(lambda: progress(int(counts.sum())) if progress else None)
    except BaseException:
        stop[0] = 1
        raise
    finally:
        pool.kill()  # whatever is left (this process failed): stop it before anything else
        os.close(claims)
    if pool.failure:
        raise RuntimeError(f"parallel work failed: {pool.failure}")
    if int(chunks.sum()) < count:  # pragma: no cover - a worker exited 0 without its chunks
        raise RuntimeError("parallel work failed: a worker process stopped early")


_STOPPED = 2  # a worker's exit status when it stopped because of another's failure


class _Stopped(Exception):
    """Raised to stop waiting: another process failed, or this worker's parent is gone."""


class _Workers:
    """Forked workers, each with the read end of a pipe it writes its failure to; reaped once."""

    def __init__(self) -> None:
        self.pipes: dict[int, int] = {}  # read fd -> pid, while the worker runs
        self.texts: dict[int, list[bytes]] = {}
        self.failure: Optional[str] = None

    def add(self, pid: int, fd: int) -> None:
        self.pipes[fd] = pid
        self.texts[fd] = []

    def poll(self, timeout: float) -> None:
        """Read what the workers wrote; reap those that ended (the first failure is kept)."""
        if not self.pipes:
            return
        ready, _, _ = select.select(list(self.pipes), [], [], timeout)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                self.texts[fd].append(data)
                continue
            pid = self.pipes.pop(fd)  # end of file: the worker has exited, or is about to
            _, status = os.waitpid(pid, 0)
            os.close(fd)
            stopped = os.WIFEXITED(status) and os.WEXITSTATUS(status) == _STOPPED
            if status != 0 and not stopped and self.failure is None:  # stopped: another one failed
                text = b"".join(self.texts[fd]).decode("utf-8", "replace")
                self.failure = text or f"a worker process died ({_describe(status)})"
            if self.failure:
                self.kill()  # the rest would wait for chunks that never come

    def join(self, tick: Callable[[], None]) -> None:
        while self.pipes:
            self.poll(0.2)
            tick()

    def kill(self) -> None:
        for fd, pid in list(self.pipes.items()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(fd)
            del self.pipes[fd]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
