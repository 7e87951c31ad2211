"""Every git question flagops asks, in one place.

- :func:`open_repository` finds the repository holding a flagops root (which may be a
  sub-directory of it) and knows the root's prefix inside the work tree.
- :func:`resolve_revision` turns a revision the operator typed into a commit; anything git
  cannot resolve here is a :class:`~flagops.errors.RevisionError` (a usage error, exit 2).
- :func:`flags_revision` is the revision a compile is made from (``<sha>-dirty`` with
  uncommitted changes under ``flags/`` or ``schema/``).
- :func:`worktree` is a temporary detached checkout of one revision.
- :func:`stream_log` and :func:`run_git` run git commands; :class:`GitSource` reads one
  revision's files like the working tree.
- :func:`require_user`, :func:`commit_paths` and :func:`author` make commits as the configured user.

GitPython is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from .errors import FlagopsError, GitUserError, NotAGitRepositoryError, RevisionError

__all__ = ["TRACKED_PATHS", "GitSource", "Repository", "author", "commit_paths", "flags_revision",
           "may_be_in_git", "open_repository", "require_repository", "require_user", "resolve_revision", "run_git",
           "stream_log", "worktree"]

#: The paths whose uncommitted changes make a revision "-dirty".
TRACKED_PATHS = ("flags", "schema")


@dataclass
class Repository:
    """A git repository and where the flagops root sits inside its work tree."""

    repo: Any  # git.Repo
    #: The root relative to the top of the work tree: "" or "sub/dir/" (always with a slash).
    prefix: str

    @property
    def top(self) -> Path:
        """The top of the work tree."""
        return Path(self.repo.working_tree_dir).resolve()

    @property
    def flags_prefix(self) -> str:
        return f"{self.prefix}flags/"

    def path(self, rel: str) -> str:
        """``rel`` (relative to the flagops root) as a path from the top of the work tree."""
        return f"{self.prefix}{rel}"

    def rel(self, path: Path) -> str:
        """A file of the work tree as a path from its top (what git commands take)."""
        return os.path.relpath(Path(path).resolve(), self.top)

    def head(self) -> Optional[str]:
        """HEAD's commit, or None in a repository without commits."""
        try:
            return str(self.repo.head.commit.hexsha)
        except ValueError:
            return None

    def status(self, *paths: str) -> str:
        """``git status --porcelain`` of ``paths`` (relative to the top), untracked files included."""
        return str(self.repo.git.status("--porcelain", "--untracked-files=all", "--", *paths))

    def shallow_commits(self) -> set[str]:
        """The boundary commits of a shallow clone (their parents are not in the repository)."""
        path = Path(getattr(self.repo, "common_dir", None) or self.repo.git_dir) / "shallow"
        try:
            return {line.strip() for line in path.read_text().splitlines() if line.strip()}
        except OSError:
            return set()

    def close(self) -> None:
        """End the persistent ``git cat-file`` processes."""
        self.repo.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_repository(root: Union[str, Path]) -> Optional[Repository]:
    """The git repository holding ``root``, or None outside git (or without a work tree)."""
    if not may_be_in_git(Path(root)):
        return None
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.working_tree_dir is None:  # a bare repository has no flags to read
        repo.close()
        return None
    top = Path(repo.working_tree_dir).resolve()
    try:
        rel = Path(root).resolve().relative_to(top).as_posix()
    except ValueError:
        rel = "."
    return Repository(repo, "" if rel == "." else rel + "/")


def may_be_in_git(root: Path) -> bool:
    """False when no ``.git`` is at or above ``root`` (and git is not pointed elsewhere): no GitPython then."""
    if os.environ.get("GIT_DIR"):
        return True
    try:
        here = root.resolve()
    except OSError:
        return True
    return any((folder / ".git").exists() for folder in (here, *here.parents))


def require_repository(root: Union[str, Path], why: str, *, hint: Optional[str] = None) -> Repository:
    """Like :func:`open_repository`, but outside git refuse: ``why`` says what needs git."""
    found = open_repository(root)
    if found is None:
        raise NotAGitRepositoryError(f"{root} is not inside a git repository; {why}", hint=hint)
    return found


def resolve_revision(repo: Union[Repository, Any], rev: str) -> Any:
    """The commit ``rev`` names (a branch, tag, sha, ``HEAD~2``, ``origin/main``...).

    Every failure is one :class:`RevisionError`, including the forms GitPython does not
    implement (``HEAD@{10 years ago}``) and names of objects that are not commits.
    """
    import git

    raw = repo.repo if isinstance(repo, Repository) else repo
    hint = "fetch it first (git fetch origin), or check the name with git log"
    if not rev or rev.startswith("-"):
        raise RevisionError(f'"{rev}" is not a revision', hint="name a branch, tag or commit")
    try:
        commit = raw.commit(rev)
    except NotImplementedError as exc:
        raise RevisionError(f'"{rev}" uses a revision form flagops cannot read ({exc})',
                            hint="name a branch, tag, commit or HEAD~N (see git log)") from exc
    except (git.BadName, git.BadObject, ValueError, IndexError, KeyError) as exc:
        raise RevisionError(f'"{rev}" is not a commit of this repository', hint=hint) from exc
    return commit


def flags_revision(root: Path) -> Optional[str]:
    """HEAD's commit when flags/ and schema/ are clean, ``<sha>-dirty`` when not, None outside git."""
    found = open_repository(root)
    if found is None:
        return None
    with found:
        sha = found.head()
        if sha is None:
            return None
        status = found.status(*(found.path(p) for p in TRACKED_PATHS))
    return f"{sha}-dirty" if status.strip() else sha


@contextlib.contextmanager
def worktree(repo: Repository, rev: str, *, label: str = "checkout") -> Iterator[tuple[Path, Path]]:
    """A detached worktree of ``rev``: its files exactly, with git metadata (so its revision is REV's sha).

    Yields (the flagops root inside the checkout, a scratch directory beside it); both are
    removed afterwards.
    """
    commit = resolve_revision(repo, rev)
    with tempfile.TemporaryDirectory(prefix=f"flagops-{label}-") as tmp:
        checkout = Path(tmp) / "tree"
        repo.repo.git.worktree("add", "--detach", str(checkout), commit.hexsha)
        try:
            yield checkout / repo.prefix, Path(tmp)
        finally:
            repo.repo.git.worktree("remove", "--force", str(checkout))


def run_git(root: Union[str, Path], *args: str) -> Optional[str]:
    """Output of ``git ARGS`` run in ``root``; None outside a repository, on failure or without git."""
    import git

    try:
        return str(git.Git(str(root)).execute(["git", *args], strip_newline_in_stdout=False))
    except (git.GitCommandError, git.GitCommandNotFound, OSError):
        return None


def stream_log(repo: Repository, args: Sequence[str], paths: Sequence[str]) -> Iterator[str]:
    """The lines of ``git log ARGS -- PATHS`` (paths from the top of the work tree), as they come.

    One process; stopping early kills it. A failing log raises :class:`FlagopsError`.
    """
    specs = [f":(top,literal){p}" for p in paths]
    proc = repo.repo.git.log(*args, "--", *specs, as_process=True)
    finished = False
    try:
        for raw in proc.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\n")
        finished = True
    finally:
        if not finished and proc.proc.poll() is None:
            proc.proc.kill()  # the caller stopped early: no need to read the rest
        code = proc.proc.wait()
        err = proc.proc.stderr.read().decode("utf-8", "replace").strip() if proc.proc.stderr else ""
    if finished and code != 0:
        raise FlagopsError(f"git log failed: {err or f'exit {code}'}")


# --------------------------------------------------------------------------- commits


def author(root: Path) -> str:
    """Who makes a change: the git user's e-mail (else name), else the login name."""
    try:
        import git

        reader = git.Repo(root, search_parent_directories=True).config_reader()
        who = str(reader.get_value("user", "email", default="") or reader.get_value("user", "name", default=""))
    except Exception:  # noqa: BLE001 - outside git, or git missing: the login name still says who
        who = ""
    return who or getpass.getuser()


def require_user(root: Path) -> Repository:
    """The repository at ``root`` when a commit can be made there (a configured user), else refuse.

    Call it before writing anything, so a refused commit leaves no change behind.
    """
    found = open_repository(root)
    if found is None:
        raise NotAGitRepositoryError(f"{root} is not in a git repository; cannot commit")
    reader = found.repo.config_reader()
    name = reader.get_value("user", "name", default="")
    email = reader.get_value("user", "email", default="")
    if not name or not email:
        raise GitUserError("git has no user configured, so the commit would have no author",
                           hint='git config --global user.name "Your Name"; '
                                "git config --global user.email you@example.eu")
    return found


def commit_paths(root: Path, paths: Sequence[Path], message: str) -> str:
    """Commit exactly ``paths`` (other staged changes stay staged) as the configured user; the new sha."""
    import git

    found = require_user(root)
    rels = [found.rel(p) for p in paths]
    try:
        found.repo.git.add("--all", "--", *rels)  # --all: a deleted file is staged as deleted
        found.repo.git.commit("--only", "-m", message, "--", *rels)
    except git.GitCommandError as exc:
        raise FlagopsError(f"git commit failed: {(exc.stderr or '').strip() or exc}") from None
    return str(found.repo.head.commit.hexsha)


# --------------------------------------------------------------------------- a revision as a Source


class GitSource:
    """A loading ``Source`` over the files of ``rev`` under ``prefix`` (the flagops root).

    Reads through GitPython's object database (one persistent ``git cat-file`` process), so
    any revision is loaded and validated exactly like the working tree.
    """

    def __init__(self, repo: Union[Repository, Any, str, Path], rev: str = "HEAD", *, prefix: str = ""):
        if isinstance(repo, Repository):
            self.repo = repo.repo
            prefix = prefix or repo.prefix
        elif isinstance(repo, (str, Path)):
            import git

            self.repo = git.Repo(repo, search_parent_directories=True)
        else:
            self.repo = repo
        self.commit = resolve_revision(self.repo, rev)
        self.prefix = prefix.strip("/")
        self.label = f"{rev} ({self.commit.hexsha[:12]})"

    @property
    def sha(self) -> str:
        return str(self.commit.hexsha)

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
        data: bytes = obj.data_stream.read()
        return data

    def exists(self, rel: str) -> bool:
        return self._object(rel) is not None
