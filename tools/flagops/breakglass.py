"""Break-glass: kill a flag, commit it, compile and publish every environment at once.

Every environment with an inventory (or those named) is compiled from the committed tree in
one compile, then published concurrently; each publish names the kill in its environment's
head before uploading any bundle (the fast path), so readers everywhere apply it within one
poll. It sits at the top of the layering: it imports the edits, compile and publish.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .edit import EditResult, _schemas, flag_rel, kill_flag, kill_message
from .git import commit_paths, require_user
from .errors import FlagopsError, UsageError, require_environment
from .loading import FLAGS_DIR


@dataclass
class BreakGlassResult:
    """What the emergency kill did: the edit, the commit, the publishes, and how long each took."""

    edit: EditResult
    environments: list[str]
    target: str
    commit: Optional[str]  # the kill commit (None when the flag was already off at HEAD)
    revision: Optional[str]  # the revision published
    publish: dict[str, Any]  # environment -> publish.PublishResult
    push: list[str]  # the commands that bring the kill commit to the shared history
    seconds: dict[str, float] = field(default_factory=dict)

    def report_lines(self) -> list[str]:
        lines = []
        for env in self.environments:
            p = self.publish[env]
            fast = f"; the head named {', '.join(p.killed)} off before any bundle" if p.killed else ""
            lines.append(f"published {env} revision {self.revision} to {self.target}: {len(p.uploaded)} bundle(s) "
                         f"uploaded, {p.unchanged} unchanged{fast}")
        s = self.seconds
        lines.append(f"in {s.get('total', 0.0):.2f}s (commit {s.get('commit', 0.0):.2f}s, compile "
                     f"{s.get('compile', 0.0):.2f}s, publish {s.get('publish', 0.0):.2f}s)")
        if self.commit:
            lines += [f"the kill is commit {self.commit[:12]}; push it now:"]
            lines += [f"  {command}" for command in self.push]
            lines += ["until it is merged into the branch CI publishes from, the scheduled publish of "
                      f"{', '.join(self.environments)} is refused (it does not contain revision "
                      f"{self.commit[:12]}) instead of turning the flag back on"]
        return lines


def _push_commands(repo: Any, key: str) -> list[str]:
    try:
        branch = repo.active_branch
    except TypeError:  # detached HEAD
        return [f"git push origin HEAD:refs/heads/kill-{key}   # then merge it into main"]
    tracking = branch.tracking_branch()
    if tracking is not None:
        return [f"git push {tracking.remote_name} {branch.name}:{tracking.remote_head}",
                f"(if {tracking.remote_head} is protected: git push {tracking.remote_name} "
                f"{branch.name}:kill-{key}, and merge that pull request first)"]
    remote = repo.remotes[0].name if repo.remotes else "origin"
    return [f"git push {remote} {branch.name}"]


def _unreviewed_commits(repo: Any) -> list[tuple[str, str]]:
    """Commits of HEAD missing from its upstream branch, other than earlier kill commits.

    Break-glass publishes HEAD; it must hold only reviewed history (what the upstream branch
    has) plus kill commits, each changing one flag file (a rerun after a failed publish).
    """
    try:
        upstream = repo.active_branch.tracking_branch()
    except TypeError:  # detached HEAD
        upstream = None
    if upstream is None or not upstream.is_valid():
        raise FlagopsError("nothing was changed: break-glass publishes your branch, which must track the "
                           "shared main branch (it has no upstream)",
                           hint="git switch main && git pull, then run the kill again")
    out = []
    for commit in repo.iter_commits(f"{upstream.path}..HEAD"):
        files = list(commit.stats.files)
        is_kill = (commit.summary.startswith("Kill ") and len(files) == 1
                   and f"/{FLAGS_DIR}/" in f"/{files[0]}" and len(commit.parents) == 1)
        if not is_kill:
            out.append((commit.hexsha, commit.summary))
    return out


def _environments(root: Path, schemas: Any, named: Sequence[str]) -> list[str]:
    """The environments to publish: those named, else every one with an inventory (checked before any change)."""
    from .loading import INVENTORY_SUFFIXES, TENANTS_DIR

    def has_inventory(env: str) -> bool:
        return any((root / TENANTS_DIR / f"{env}{suffix}").is_file() for suffix in INVENTORY_SUFFIXES)

    for env in named:
        require_environment(env, schemas.environments)
        if not has_inventory(env):
            raise UsageError(f'nothing was changed: no tenant inventory for "{env}"',
                             hint=f"add {TENANTS_DIR}/{env}.yaml, or leave --env out to publish every environment "
                                  "that has one")
    chosen = list(dict.fromkeys(named)) or [env for env in schemas.environments if has_inventory(env)]
    if not chosen:
        raise UsageError(f"nothing was changed: no tenant inventories under {TENANTS_DIR}/")
    return chosen


def break_glass(root: Path, key: str, *, reason: str, target: str, environments: Sequence[str] = (),
                endpoint_url: Optional[str] = None, progress: Optional[Any] = None,
                warn: Optional[Any] = None, today: Optional[_dt.date] = None,
                confirm: Optional[Any] = None) -> BreakGlassResult:
    """Kill a flag, commit it, compile the committed tree and publish every chosen environment now.

    Checks first (before changing anything) that each environment's published revision is part
    of the local history: otherwise the publish would be refused after the commit, so the
    operator is told to pull first. The compile uses a clean checkout of the new HEAD, so
    uncommitted work in the working tree is never published.
    """
    from .compile import compile_project
    from .layout import MANIFEST
    from .publish import PublishOptions, check_revision, publish_environment
    from .git import open_repository, require_repository, worktree
    from .storage import join_key, open_target

    started = time.monotonic()
    schemas = _schemas(root)
    chosen = _environments(root, schemas, environments)
    found = open_repository(root)
    head = found.head() if found is not None else None
    if found is None or head is None:
        raise FlagopsError(f"{root} is not a git repository with commits; break-glass commits the kill")
    repo = found.repo
    require_user(root)  # the commit must have an author: refuse before changing anything
    store, prefix = open_target(target, endpoint_url=endpoint_url, max_connections=8 * len(chosen) + 2)
    for environment in chosen:
        current = store.get(join_key(prefix, environment, MANIFEST))
        published: Optional[str] = None
        if current is not None:
            try:
                published = json.loads(current[0]).get("revision")
            except (ValueError, AttributeError):
                published = None
        try:
            check_revision(root, head, published, environment=environment, target=target)
        except FlagopsError as exc:
            raise FlagopsError(f"nothing was changed: the published {environment} revision is not in this "
                               f"branch ({exc.message})",
                               hint="git pull (fetch the published revision), then run the kill again") from None
    unreviewed = _unreviewed_commits(repo)
    if unreviewed:
        shown = "; ".join(f"{sha[:12]} {subject}" for sha, subject in unreviewed[:5])
        raise FlagopsError(f"nothing was changed: this branch has {len(unreviewed)} commit(s) that are not on its "
                           f"upstream and would be published unreviewed with the kill ({shown})",
                           hint="git switch main && git pull, then run the kill again")

    path = root / flag_rel(key)
    rel = os.path.relpath(path.resolve(), Path(repo.working_tree_dir or root).resolve())
    if path.is_file() and repo.git.status("--porcelain", "--", rel).strip():
        raise FlagopsError(f"nothing was changed: {rel} has uncommitted changes, which the kill commit would "
                           "publish unreviewed", hint=f"git diff {rel}; commit or stash them, then run the kill again")
    edit = kill_flag(root, key, reason=reason, today=today, confirm=confirm)  # a risky kill asks first
    dirty = bool(repo.git.status("--porcelain", "--", rel).strip())
    commit = commit_paths(root, [path], kill_message(key, reason)) if dirty else None
    committed = time.monotonic()

    sha = repo.head.commit.hexsha
    results: dict[str, Any] = {}
    failures: dict[str, FlagopsError] = {}
    try:
        # The committed tree exactly: other uncommitted edits in the working tree stay out.
        with require_repository(root, "break-glass commits the kill") as found, \
                worktree(found, sha, label="breakglass") as (checkout, tmp):
            out = tmp / "out"
            compiled = compile_project(checkout, environments=chosen, out=out)
            revision = compiled.environments[0].revision
            compile_done = time.monotonic()
            one = len(chosen) == 1

            def publish(environment: str) -> None:
                options = PublishOptions(progress=progress if one else None, warn=warn)
                try:
                    results[environment] = publish_environment(out, environment, store, prefix, root=root,
                                                               options=options, target=target)
                except FlagopsError as exc:
                    failures[environment] = exc

            threads = [threading.Thread(target=publish, args=(env,)) for env in chosen]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    except FlagopsError as exc:
        exc.message = (f"{exc.message}\nthe kill is committed locally ({sha[:12]}) but NOT published; "
                       "run the same command again to publish it")
        raise
    if failures:
        done = ", ".join(results) or "none"
        detail = "; ".join(f"{env}: {exc.message}" for env, exc in failures.items())
        raise FlagopsError(f"the kill is committed locally ({sha[:12]}) but NOT published to "
                           f"{', '.join(failures)} (published: {done}): {detail}",
                           hint="run the same command again to publish it")
    done_at = time.monotonic()
    return BreakGlassResult(edit, chosen, target, commit, revision, results, _push_commands(repo, key),
                            {"commit": committed - started, "compile": compile_done - committed,
                             "publish": done_at - compile_done, "total": done_at - started})
