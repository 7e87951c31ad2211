"""The git revision a compile is made from."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

#: The paths whose uncommitted changes make a revision "-dirty".
TRACKED_PATHS = ("flags", "schema")


def flags_revision(root: Path) -> Optional[str]:
    """HEAD's commit when flags/ and schema/ are clean, ``<sha>-dirty`` when not, None outside git."""
    try:
        import git
    except ImportError:  # pragma: no cover - gitpython is a core dependency
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        sha = repo.head.commit.hexsha
    except ValueError:  # a repository without commits
        return None
    try:
        rel = Path(root).resolve().relative_to(Path(repo.working_tree_dir or root).resolve())
    except ValueError:
        rel = Path(".")
    paths = [str(rel / p) if str(rel) != "." else p for p in TRACKED_PATHS]
    status = repo.git.status("--porcelain", "--untracked-files=all", "--", *paths)
    return f"{sha}-dirty" if status.strip() else sha
