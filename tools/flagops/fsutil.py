"""Files and directories replaced atomically: one write, one directory swap, one stale sweep.

Every temporary name made here starts with a dot, lives in the directory of what it replaces
(a rename never crosses file systems) and carries the creating process's id, so that
:func:`remove_stale` can tell a leftover of a killed process from the work of a live one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

__all__ = ["STALE_AFTER", "atomic_write", "remove_stale", "staging_directory", "swap_directories",
           "swap_directory", "temp_name"]

PathLike = Union[str, "os.PathLike[str]"]
#: A leftover whose owner cannot be told (a reused pid, an older name) is removed after this long.
STALE_AFTER = 6 * 3600.0
_OWNED = re.compile(r"[.-](?P<pid>\d+)-[0-9a-f]{8}(?:\.tmp)?$")


def temp_name(final: Path, kind: str) -> Path:
    """``.<name>.<kind>.<pid>-<random>`` beside ``final``."""
    return final.with_name(f".{final.name}.{kind}.{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write(path: PathLike, data: bytes, *, durable: bool = True, mode: Optional[int] = None,
                 exclusive: bool = False, parents: bool = False,
                 before_replace: Optional[Callable[[], None]] = None) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old file or the new one.

    ``durable`` fsyncs the data before the rename (the file survives a power cut once this
    returns, as far as the directory entry is flushed by the file system's journal).
    ``mode``: the permission bits; by default those of the file replaced, 0o644 for a new one.
    ``exclusive``: create only, never clobber (FileExistsError if ``path`` exists by then).
    ``before_replace`` runs just before the rename (raise there to abort; nothing is written).
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{temp_name(path, 'tmp')}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        if exclusive:
            os.link(tmp, path)  # fails if the file appeared meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def staging_directory(parent: Path, prefix: str) -> Path:
    """A new empty directory ``<parent>/<prefix><pid>-<random>`` (mode 0o755) to build into."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)  # whatever the umask: the output is read by other users (a web server)
    return path


def swap_directories(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Replace each ``target`` with its ``built`` directory: all of them, or none.

    Each old tree is renamed aside, then the new one into its place; if any rename fails,
    the ones done are undone in reverse and the error re-raised, so every target keeps its
    previous tree. The old trees are deleted only once every new one is in place.
    """
    undo: list[Callable[[], None]] = []
    old_trees: list[Path] = []
    try:
        for built, target in pairs:
            if os.path.lexists(target):
                old = temp_name(target, "old")
                os.replace(target, old)
                undo.append(lambda t=target, o=old: os.replace(o, t))
                old_trees.append(old)
            os.replace(built, target)
            undo.append(lambda b=built, t=target: os.replace(t, b))
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        raise
    for old in old_trees:
        shutil.rmtree(old, ignore_errors=True)


def swap_directory(built: Path, target: Path) -> None:
    """Replace ``target`` with ``built``; the old tree is removed only once the new one is in place."""
    swap_directories([(built, target)])


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _newest_mtime(path: Path) -> float:
    """The newest mtime of ``path`` and the directories right under it (where builds write)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def remove_stale(directory: Path, prefixes: Iterable[str], *, max_age: float = STALE_AFTER,
                 now: Optional[float] = None) -> list[Path]:
    """Delete leftovers of killed processes in ``directory``: names starting with a prefix.

    A leftover is removed when the pid in its name is not a live process, or (a name without
    a pid, or a pid that may have been reused) when nothing in it changed for ``max_age``
    seconds. Returns what was removed.
    """
    now = time.time() if now is None else now
    prefixes = tuple(prefixes)
    removed = []
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return removed
    for name in entries:
        if not name.startswith(prefixes):
            continue
        path = directory / name
        owned = _OWNED.search(name)
        try:
            stale = ((owned is not None and not _alive(int(owned["pid"])))
                     or now - _newest_mtime(path) > max_age)
        except OSError:
            continue
        if not stale:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        if not os.path.lexists(path):
            removed.append(path)
    return removed
