"""The rollback guard: a publish never replaces the published revision with an older or unrelated one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import RollbackRefused

__all__ = ["check_revision"]


def _base(revision: str) -> str:
    return revision[:-len("-dirty")] if revision.endswith("-dirty") else revision


def check_revision(root: Path, local: Optional[str], remote: Optional[str], *, environment: str,
                   target: str) -> None:
    """Refuse a publish that would replace ``remote`` with an older, unrelated or unknown revision."""
    if not remote:
        return
    rollback_hint = (f"to go back on purpose: flagops rollback --env {environment} --target {target} --to REV, "
                     "or pass --allow-rollback")
    if not local:
        raise RollbackRefused(f"cannot tell whether this publish rolls back the published revision {remote}: "
                              "the compiled output has no git revision", hint=rollback_hint)
    lb, rb = _base(local), _base(remote)
    if lb == rb:
        return
    import git

    from .git import open_repository

    found = open_repository(root)
    if found is None:
        raise RollbackRefused(f"cannot check the published revision {remote}: {root} is not a git repository",
                              hint=rollback_hint)
    repo = found.repo
    try:
        repo.commit(rb)
    except (ValueError, git.BadName, git.BadObject) as exc:
        raise RollbackRefused(
            f"the published revision {remote} is not in the local history; publishing might roll it back",
            hint="fetch it (git fetch origin; a shallow CI clone needs the full history), "
                 "or pass --allow-rollback to replace it anyway") from exc
    try:
        repo.commit(lb)
    except (ValueError, git.BadName, git.BadObject) as exc:
        raise RollbackRefused(
            f"the compiled revision {local} is not in the local history of {root}, so it cannot be checked "
            f"against the published revision {remote}",
            hint="publish from the checkout that compiled it (--root), fetch that commit here, "
                 "or pass --allow-rollback") from exc
    try:
        older = repo.is_ancestor(lb, rb)
        newer = repo.is_ancestor(rb, lb)
    except git.GitCommandError as exc:
        raise RollbackRefused(f"cannot compare {local} with the published revision {remote}: "
                              f"{(exc.stderr or str(exc)).strip()}", hint=rollback_hint) from exc
    if older:
        raise RollbackRefused(f"{local} is an ancestor of the published revision {remote}: "
                              "publishing it would roll the environment back", hint=rollback_hint)
    if not newer:
        raise RollbackRefused(f"{local} does not contain the published revision {remote} (the histories "
                              "diverged): publishing it would drop the changes published since",
                              hint="merge or rebase onto the published revision, or pass --allow-rollback")


