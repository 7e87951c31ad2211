"""Propose: the saved flag changes as a commit on a new branch, pushed, with its pull-request link.

Nothing in the clone moves until the push succeeded: the commit is built in a temporary
index from the checked-out commit plus the changed flag files, the branch ref is created, and
it is pushed. Only then is the clone switched to the new branch (its files already hold the
commit's content, so the switch touches no file). A failed push deletes the new ref again.
Proposing from a branch made this way adds a commit to it, so the pull request grows.

Refused, before anything happens: changes outside ``flags/`` (they would not be part of the
proposal, and reviewing a different tree than the operator sees is how mistakes merge), no
change at all, an invalid working tree, no git user, or no remote to push to.
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from ..errors import FlagopsError, InvalidInputError
from ..git import Repository, require_repository, require_user, run_git
from ..history import semantic_changes
from ..loading import FLAG_SUFFIX, parse_yaml
from ..render import show_value
from ..validation import load_and_validate

__all__ = ["Proposal", "changed_paths", "github_repository", "propose"]

#: Set on a branch the console created: the branch its pull request merges into.
BASE_CONFIG = "flagopsBase"
_GITHUB = re.compile(r"^(?:https?://(?:[^@/]+@)?github\.com/|ssh://git@github\.com/|git@github\.com:)"
                     r"(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$")


@dataclass
class Proposal:
    branch: str
    base: str
    remote: str
    commit: str
    files: list[str]
    subject: str
    kind: str  # "pull-request" (made with gh), "compare" (a GitHub link to open one) or "branch"
    url: Optional[str] = None
    added: bool = False  # True when the commit went onto an existing proposal branch
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _git(repo: Repository, *args: str, env: Optional[dict[str, str]] = None) -> str:
    """Output of ``git ARGS`` in the work tree; a failure is refused with git's own message."""
    import git

    try:
        return str(repo.repo.git.execute(["git", *args], env=env, strip_newline_in_stdout=False))
    except git.GitCommandError as exc:
        raise FlagopsError(f"git {args[0]} failed: {(exc.stderr or exc.stdout or '').strip() or exc}") from None


def _ask(repo: Repository, *args: str) -> str:
    """Output of a git question whose failure means "no" (an unset config, a missing ref): ''."""
    return (run_git(repo.top, *args) or "").strip()


def _status(repo: Repository) -> list[tuple[str, str]]:
    """(XY status, path from the top) of every change, untracked files included (NUL-separated)."""
    out = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    return [(item[:2], item[3:]) for item in out.split("\0") if item]


def changed_paths(root: Path) -> list[str]:
    """Paths (relative to ``root``) with uncommitted changes, untracked files included."""
    with _open(Path(root)) as repo:
        return [path[len(repo.prefix):] for _, path in _status(repo) if path.startswith(repo.prefix)]


def _open(root: Path) -> Repository:
    return require_repository(root, "proposing needs a clone",
                              hint="run flagops ui in a clone of the flags repository")


def github_repository(url: str) -> Optional[tuple[str, str]]:
    """(owner, name) of a GitHub remote URL, else None."""
    match = _GITHUB.match(url.strip())
    return (match["owner"], match["name"]) if match else None


def _config(repo: Repository, name: str) -> str:
    return _ask(repo, "config", "--get", name)


def _remote_for(repo: Repository, branch: str) -> str:
    remotes = _git(repo, "remote").split()
    configured = _config(repo, f"branch.{branch}.remote") if branch else ""
    if configured in remotes:
        return configured
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return remotes[0]
    if not remotes:
        raise FlagopsError("this clone has no remote to push the proposal to; nothing was committed",
                           hint="git remote add origin <url of the flags repository>")
    raise FlagopsError(f"this clone has several remotes ({', '.join(remotes)}) and none is origin; "
                       "nothing was committed", hint=f"git branch --set-upstream-to {remotes[0]}/<branch>")


def _flag_data(text: Optional[str], rel: str) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    doc, _ = parse_yaml(rel, text.encode("utf-8"))
    return doc.data if doc is not None and isinstance(doc.data, dict) else None


def _describe(repo: Repository, paths: list[str]) -> tuple[str, str]:
    """A commit subject and body naming each flag and its field changes."""
    verbs: dict[str, list[str]] = {"Add": [], "Change": [], "Delete": []}
    lines: list[str] = []
    for path in paths:
        key = Path(path).stem
        old = _git(repo, "show", f"HEAD:{path}") if _ask(repo, "ls-tree", "--name-only", "HEAD", "--", path) else None
        file = repo.top / path
        new = file.read_text(encoding="utf-8") if file.is_file() else None
        rel = path[len(repo.prefix):]
        before, after = _flag_data(old, rel), _flag_data(new, rel)
        verb = "Add" if old is None else "Delete" if new is None else "Change"
        verbs[verb].append(key)
        changes = semantic_changes(before, after)
        lines.append(f"{key}: " + ("; ".join(f"{c['field']} {show_value(c['before'])} -> {show_value(c['after'])}"
                                             for c in changes) or "formatting only"))
    parts = [f"{verb} {', '.join(keys)}" for verb, keys in verbs.items() if keys]
    subject = "; ".join(parts)
    if len(subject) > 72:
        subject = f"Change {len(paths)} flags"
    return subject, "\n".join(lines)


def _branch_name(repo: Repository, keys: list[str]) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    label = keys[0] if len(keys) == 1 else f"{len(keys)}-flags"
    name = f"flags/{label}-{stamp}"
    n = 1
    while _ask(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"):
        n += 1
        name = f"flags/{label}-{stamp}-{n}"
    return name


def _gh_pull_request(top: Path, branch: str, base: str, subject: str, body: str) -> Optional[str]:
    """The pull request made with ``gh`` when it is installed and logged in; None otherwise."""
    gh = shutil.which("gh")
    if gh is None:
        return None
    if subprocess.run([gh, "auth", "status"], capture_output=True, cwd=top).returncode != 0:
        return None
    proc = subprocess.run([gh, "pr", "create", "--head", branch, "--base", base, "--title", subject,
                           "--body", body], capture_output=True, text=True, cwd=top)
    urls = re.findall(r"https://\S+", proc.stdout)
    return urls[-1] if proc.returncode == 0 and urls else None


def _flag_changes(repo: Repository) -> list[str]:
    """The changed flag files (from the top), refusing when anything tracked outside them changed."""
    flags_prefix = repo.flags_prefix
    status = _status(repo)
    mine = [path for _, path in status if path.startswith(flags_prefix) and path.endswith(FLAG_SUFFIX)]
    # Untracked files elsewhere are never part of a proposal and change nothing reviewed.
    unrelated = [path for xy, path in status if path not in mine and xy != "??"]
    if unrelated:
        shown = ", ".join(unrelated[:5]) + (f" and {len(unrelated) - 5} more" if len(unrelated) > 5 else "")
        raise FlagopsError(f"the working tree holds changes that are not flag edits ({shown}); "
                           "nothing was committed",
                           hint="commit, stash or revert them in git first, then propose again")
    if not mine:
        raise FlagopsError("there is nothing to propose: no flag file differs from the checked-out commit",
                           hint="save a change first")
    return sorted(mine)


def _commit(repo: Repository, head: str, paths: list[str], message: str) -> str:
    """A commit of HEAD plus the work tree's ``paths``, built in a temporary index (the real
    index and the work tree are not touched)."""
    with tempfile.TemporaryDirectory(prefix="flagops-propose-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "read-tree", head, env=env)
        _git(repo, "add", "--all", "--", *paths, env=env)  # --all: a deleted flag is staged as deleted
        tree = _git(repo, "write-tree", env=env).strip()
        file = Path(tmp) / "message"
        file.write_text(message, encoding="utf-8")
        return _git(repo, "commit-tree", tree, "-p", head, "-F", str(file)).strip()


def _push(repo: Repository, remote: str, branch: str) -> None:
    # No terminal prompt: the console's terminal is not where the operator looks; a credential
    # helper still answers, and a push that needs a password fails with git's message instead.
    _git(repo, "push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}",
         env={"GIT_TERMINAL_PROMPT": "0"})


def _link(proposal: Proposal, repo: Repository, body: str) -> None:
    github = github_repository(_config(repo, f"remote.{proposal.remote}.url"))
    if github is None:
        return
    made = None if proposal.added else _gh_pull_request(repo.top, proposal.branch, proposal.base,
                                                        proposal.subject, body)
    if made:
        proposal.kind, proposal.url = "pull-request", made
        return
    owner, name = github
    proposal.kind = "compare"
    proposal.url = (f"https://github.com/{owner}/{name}/compare/"
                    f"{quote(proposal.base, safe='/')}...{quote(proposal.branch, safe='/')}?expand=1")


def propose(root: Path, *, title: Optional[str] = None) -> Proposal:
    """Commit the changed flag files on a new branch (or the current proposal branch) and push it."""
    root = Path(root).resolve()
    with _open(root) as repo:
        paths = _flag_changes(repo)
        _, _, result = load_and_validate(root)
        if result.errors:
            raise InvalidInputError(f"{len(result.errors)} error(s) in the working tree; fix them before "
                                    "proposing (nothing was committed)", result.problems)
        require_user(root).close()
        current = _ask(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
        if not current:
            raise FlagopsError("the clone is not on a branch (detached HEAD); switch to one first",
                               hint="git switch main")
        remote = _remote_for(repo, current)
        subject, body = _describe(repo, paths)
        if title and title.strip():
            subject = title.strip().splitlines()[0]
        recorded_base = _config(repo, f"branch.{current}.{BASE_CONFIG}")
        added = bool(recorded_base) and bool(_config(repo, f"branch.{current}.remote"))
        if added:
            branch, base = current, recorded_base
        else:
            merge = _config(repo, f"branch.{current}.merge")
            branch, base = _branch_name(repo, [Path(p).stem for p in paths]), (merge.removeprefix("refs/heads/")
                                                                                or current)
        head = _git(repo, "rev-parse", "HEAD").strip()
        commit = _commit(repo, head, paths, f"{subject}\n\n{body}\n")
        _git(repo, "update-ref", f"refs/heads/{branch}", commit, head if added else "")
        try:
            _push(repo, remote, branch)
        except FlagopsError as exc:
            if added:
                _git(repo, "update-ref", f"refs/heads/{branch}", head, commit)
            else:
                _git(repo, "update-ref", "-d", f"refs/heads/{branch}", commit)
            raise FlagopsError(f"{exc.message}; nothing was committed",
                               hint="check that you can push to the remote (git push), then propose again") from None
        if not added:
            _git(repo, "config", f"branch.{branch}.remote", remote)
            _git(repo, "config", f"branch.{branch}.merge", f"refs/heads/{branch}")
            _git(repo, "config", f"branch.{branch}.{BASE_CONFIG}", base)
            # Switch without touching a file: the work tree already holds the commit's content.
            _git(repo, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
        _git(repo, "reset", "--quiet")  # the index follows HEAD; no file is touched
        proposal = Proposal(branch, base, remote, commit, [p[len(repo.prefix):] for p in paths], subject,
                            "branch", added=added)
        _link(proposal, repo, body)
        return proposal
