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
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from ..errors import FlagopsError, InvalidInputError
from ..history import open_repo, semantic_changes
from ..loading import FLAG_SUFFIX, FLAGS_DIR, parse_yaml
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


def _run(top: Path, *args: str, env: Optional[dict[str, str]] = None, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(top), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise FlagopsError(f"git {args[0]} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def _status(top: Path) -> list[tuple[str, str]]:
    """(XY status, path relative to the top) of every change, untracked files included."""
    out = _run(top, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    return [(item[:2], item[3:]) for item in out.split("\0") if item]


def _repo(root: Path) -> tuple[Path, str]:
    r = open_repo(root)
    if r is None:
        raise FlagopsError(f"{root} is not inside a git repository; proposing needs a clone",
                           hint="run flagops ui in a clone of the flags repository")
    try:
        top = Path(r.repo.working_tree_dir or root)
    finally:
        r.repo.close()
    return top, r.prefix


def changed_paths(root: Path) -> list[str]:
    """Paths (relative to ``root``) with uncommitted changes, untracked files included."""
    top, prefix = _repo(Path(root))
    return [path[len(prefix):] for _, path in _status(top) if path.startswith(prefix)]


def github_repository(url: str) -> Optional[tuple[str, str]]:
    """(owner, name) of a GitHub remote URL, else None."""
    match = _GITHUB.match(url.strip())
    return (match["owner"], match["name"]) if match else None


def _config(top: Path, name: str) -> str:
    return _run(top, "config", "--get", name, check=False).strip()


def _remote_for(top: Path, branch: str) -> str:
    remotes = _run(top, "remote").split()
    configured = _config(top, f"branch.{branch}.remote") if branch else ""
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


def _describe(top: Path, prefix: str, paths: list[str]) -> tuple[str, str]:
    """A commit subject and body naming each flag and its field changes."""
    verbs: dict[str, list[str]] = {"Add": [], "Change": [], "Delete": []}
    lines: list[str] = []
    for path in paths:
        key = Path(path).stem
        old = _run(top, "show", f"HEAD:{path}", check=False) if _in_head(top, path) else None
        file = top / path
        new = file.read_text(encoding="utf-8") if file.is_file() else None
        before, after = _flag_data(old, path[len(prefix):]), _flag_data(new, path[len(prefix):])
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


def _in_head(top: Path, path: str) -> bool:
    return subprocess.run(["git", "-C", str(top), "cat-file", "-e", f"HEAD:{path}"],
                          capture_output=True).returncode == 0


def _branch_name(top: Path, keys: list[str]) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    label = keys[0] if len(keys) == 1 else f"{len(keys)}-flags"
    name = f"flags/{label}-{stamp}"
    n = 1
    while _run(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False).strip():
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


def propose(root: Path, *, title: Optional[str] = None) -> Proposal:
    """Commit the changed flag files on a new branch (or the current proposal branch) and push it."""
    root = Path(root).resolve()
    top, prefix = _repo(root)
    flags_prefix = f"{prefix}{FLAGS_DIR}/"
    status = _status(top)
    unrelated = [path for xy, path in status
                 if not (path.startswith(flags_prefix) and path.endswith(FLAG_SUFFIX)) and xy != "??"]
    if unrelated:
        shown = ", ".join(unrelated[:5]) + (f" and {len(unrelated) - 5} more" if len(unrelated) > 5 else "")
        raise FlagopsError(f"the working tree holds changes that are not flag edits ({shown}); "
                           "nothing was committed",
                           hint="commit, stash or revert them in git first, then propose again")
    paths = sorted(path for _, path in status if path.startswith(flags_prefix) and path.endswith(FLAG_SUFFIX))
    if not paths:
        raise FlagopsError("there is nothing to propose: no flag file differs from the checked-out commit",
                           hint="save a change first")
    _, _, result = load_and_validate(root)
    if result.errors:
        raise InvalidInputError(f"{len(result.errors)} error(s) in the working tree; fix them before proposing",
                                result.problems)
    if not _config(top, "user.name") or not _config(top, "user.email"):
        raise FlagopsError("git has no user configured, so the commit would have no author; nothing was committed",
                           hint='git config --global user.name "Your Name"; '
                                "git config --global user.email you@example.eu")
    current = _run(top, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if not current:
        raise FlagopsError("the clone is not on a branch (detached HEAD); switch to one first",
                           hint="git switch main")
    remote = _remote_for(top, current)
    recorded_base = _config(top, f"branch.{current}.{BASE_CONFIG}")
    keys = [Path(p).stem for p in paths]
    subject, body = _describe(top, prefix, paths)
    if title and title.strip():
        subject = title.strip().splitlines()[0]
    add_to_current = bool(recorded_base) and bool(_config(top, f"branch.{current}.remote"))
    if add_to_current:
        branch, base = current, recorded_base
    else:
        merge = _config(top, f"branch.{current}.merge")
        branch, base = _branch_name(top, keys), (merge.removeprefix("refs/heads/") or current)

    head = _run(top, "rev-parse", "HEAD").strip()
    with tempfile.TemporaryDirectory(prefix="flagops-propose-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _run(top, "read-tree", head, env=env)
        _run(top, "add", "--all", "--", *paths, env=env)
        tree = _run(top, "write-tree", env=env).strip()
        message = Path(tmp) / "message"
        message.write_text(f"{subject}\n\n{body}\n", encoding="utf-8")
        commit = _run(top, "commit-tree", tree, "-p", head, "-F", str(message)).strip()
    old = head if add_to_current else ""
    _run(top, "update-ref", f"refs/heads/{branch}", commit, old)
    # No terminal prompt: the console's terminal is not where the operator looks; a credential
    # helper still answers, and a push that needs a password fails with git's message instead.
    push = subprocess.run(["git", "-C", str(top), "push", "--porcelain", remote,
                           f"refs/heads/{branch}:refs/heads/{branch}"], capture_output=True, text=True,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if push.returncode != 0:
        if add_to_current:
            _run(top, "update-ref", f"refs/heads/{branch}", head, commit)
        else:
            _run(top, "update-ref", "-d", f"refs/heads/{branch}", commit)
        raise FlagopsError(f"git push to {remote} failed; nothing was committed: "
                           f"{(push.stderr or push.stdout).strip()}",
                           hint="check that you can push to the remote (git push), then propose again")
    if not add_to_current:
        _run(top, "config", f"branch.{branch}.remote", remote)
        _run(top, "config", f"branch.{branch}.merge", f"refs/heads/{branch}")
        _run(top, "config", f"branch.{branch}.{BASE_CONFIG}", base)
        # Switch without touching a file: the work tree already holds the commit's content.
        _run(top, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    _run(top, "reset", "--quiet")  # the index follows HEAD; no file is touched
    proposal = Proposal(branch, base, remote, commit, [p[len(prefix):] for p in paths], subject,
                        "branch", added=add_to_current)
    github = github_repository(_config(top, f"remote.{remote}.url"))
    if github is not None:
        made = None if add_to_current else _gh_pull_request(top, branch, base, subject, body)
        if made:
            proposal.kind, proposal.url = "pull-request", made
        else:
            owner, name = github
            proposal.kind = "compare"
            proposal.url = (f"https://github.com/{owner}/{name}/compare/"
                            f"{quote(base, safe='/')}...{quote(branch, safe='/')}?expand=1")
    return proposal
