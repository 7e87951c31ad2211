"""A loading ``Source`` that reads a git revision's tree instead of the working tree.

``GitSource(repo, rev)`` lists directories and reads files of one commit through GitPython's
object database (one persistent ``git cat-file`` process), so any revision can be loaded and
validated exactly like the working tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import git

from .errors import FlagopsError

__all__ = ["GitSource", "resolve_revision"]


def resolve_revision(repo: git.Repo, rev: str) -> git.Commit:
    """The commit ``rev`` names (a branch, tag, sha, ``HEAD~2``, ``origin/main``...)."""
    try:
        commit = repo.commit(rev)
    except (git.BadName, git.BadObject, ValueError) as exc:
        raise FlagopsError(f'"{rev}" is not a commit of this repository',
                           hint="fetch it first (git fetch origin), or check the name with git log") from exc
    return commit


class GitSource:
    """The files of ``rev`` under ``prefix`` (the flagops root inside the repository)."""

    def __init__(self, repo: Union[git.Repo, str, Path], rev: str = "HEAD", *, prefix: str = ""):
        self.repo = repo if isinstance(repo, git.Repo) else git.Repo(repo, search_parent_directories=True)
        self.commit = resolve_revision(self.repo, rev)
        self.prefix = prefix.strip("/")
        self.label = f"{rev} ({self.commit.hexsha[:12]})"

    @property
    def sha(self) -> str:
        return self.commit.hexsha

    def _path(self, rel: str) -> str:
        rel = rel.strip("/")
        return "/".join(p for p in (self.prefix, rel) if p)

    def _object(self, rel: str) -> Optional[Any]:
        path = self._path(rel)
        if not path:
            return self.commit.tree
        try:
            return self.commit.tree / path
        except KeyError:
            return None

    def list_dir(self, rel: str) -> Optional[list[str]]:
        obj = self._object(rel)
        if obj is None or obj.type != "tree":
            return None
        return sorted(e.name + ("/" if e.type == "tree" else "") for e in obj)

    def read(self, rel: str) -> bytes:
        obj = self._object(rel)
        if obj is None or obj.type != "blob":
            raise FileNotFoundError(f"{rel} is not a file at {self.label}")
        return obj.data_stream.read()

    def exists(self, rel: str) -> bool:
        return self._object(rel) is not None
