"""Flag history read from git: every commit that changed a flag file, as semantic changes.

Git is the history: uncapped and trustworthy. One ``git log --raw`` over ``flags/`` lists every
commit with the blob ids before and after each flag file; the blobs are then read through
one persistent ``git cat-file`` process, parsed once per distinct blob and compared field by
field. So a long history costs one log pass, never one git process per commit.

An entry is ``{"commit", "shortCommit", "date", "authorName", "authorEmail", "subject", "key",
"action", "changes": [{"field", "before", "after"}], "unparseable"}``, newest first in git log
order (children before parents). ``changes`` is empty for a pure formatting change (comments,
order, quoting). ``unparseable`` names the sides (``"before"``, ``"after"``) whose file did not
parse as a flag at that commit (a broken commit, a hostile one): such a side has no fields, and
is never read as "every field removed".
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

from flagops_client.evaluation import AXES

from .errors import FlagopsError, UnknownFlagError, UsageError
from .git import Repository, open_repository, require_repository, stream_log
from .loading import FLAG_SUFFIX, FLAGS_DIR, MAX_FLAG_BYTES, parse_yaml

__all__ = ["FIELDS", "SCOPE_FIELDS", "SHORT", "HistoryScan", "flag_history", "last_deletion", "open_repo", "scan_history",
           "semantic_changes", "parse_since", "when"]

#: The plain fields compared, in report order; then one field per scope axis.
FIELDS = ("state", "pct", "description", "owner", "expires")
SCOPE_FIELDS = tuple(f"scope.{axis}" for axis in AXES)

_RECORD = "\x1e"  # starts each commit header in the log output
_UNIT = "\x1f"  # separates the header fields
_LOG_FORMAT = f"--format={_RECORD}%H{_UNIT}%aI{_UNIT}%an{_UNIT}%ae{_UNIT}%s"
_NULL_SHA = "0" * 40
_ACTIONS = {"A": "created", "D": "deleted", "M": "updated", "T": "updated"}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

SinceLike = Union[_dt.date, _dt.datetime, str, None]
#: Hex digits of a short commit hash, everywhere flagops shows one.
SHORT = 12


def when(iso: str) -> str:
    """``2026-11-27 17:20 UTC`` from a git ISO-8601 date: the operators' one clock."""
    try:
        value = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- semantic difference


def _scope(flag: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    scope = flag.get("scope") if flag else None
    return scope if isinstance(scope, Mapping) else {}


def _same_list(a: Any, b: Any) -> bool:
    """Scope axes are sets: order and repetition do not change what a flag does."""
    if isinstance(a, list) and isinstance(b, list):
        try:
            return set(a) == set(b)
        except TypeError:  # unhashable items in an invalid file: compare as written
            return a == b
    return a == b


def semantic_changes(before: Optional[Mapping[str, Any]], after: Optional[Mapping[str, Any]]
                     ) -> list[dict[str, Any]]:
    """The field-by-field difference of two parsed flags; None stands for "no such flag".

    Fields are ``state``, ``pct``, ``description``, ``owner``, ``expires`` and one
    ``scope.<axis>`` per axis. A created (deleted) flag lists each field it sets against null;
    between two versions an absent scope axis counts as an empty list, and reordering an axis
    is no change.
    """
    changes: list[dict[str, Any]] = []
    if before is None and after is None:
        return changes
    if before is None or after is None:
        present = after if before is None else before
        assert present is not None
        scope = _scope(present)
        for name in FIELDS:
            value = present.get(name)
            if value is not None:
                changes.append({"field": name, "before": None if before is None else value,
                                "after": value if before is None else None})
        for axis in AXES:
            value = scope.get(axis)
            if value is not None:
                changes.append({"field": f"scope.{axis}", "before": None if before is None else value,
                                "after": value if before is None else None})
        return changes
    for name in FIELDS:
        a, b = before.get(name), after.get(name)
        if a != b or type(a) is not type(b):
            changes.append({"field": name, "before": a, "after": b})
    sa, sb = _scope(before), _scope(after)
    for axis in AXES:
        a, b = sa.get(axis), sb.get(axis)
        a = [] if a is None else a
        b = [] if b is None else b
        if not _same_list(a, b):
            changes.append({"field": f"scope.{axis}", "before": a, "after": b})
    return changes


# --------------------------------------------------------------------------- git access


#: The repository holding a flagops root (kept under this name for its callers).
open_repo = open_repository


def _has_commits(repo: Any) -> bool:
    try:
        repo.head.commit
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- since


def parse_since(since: SinceLike) -> Union[_dt.date, _dt.datetime, None]:
    """``--since``: a date (compared with each commit's own calendar date, as the timeline
    shows it), an ISO-8601 datetime (an instant; naive means UTC), or None."""
    if since is None or since == "":
        return None
    if isinstance(since, _dt.datetime):
        value = since
    elif isinstance(since, _dt.date):
        return since
    else:
        text = str(since).strip()
        try:
            if len(text) == 10:
                return _dt.date.fromisoformat(text)
            value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f'--since "{since}" is not a date',
                             hint="use YYYY-MM-DD or an ISO-8601 time such as 2026-10-09T12:00:00+02:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value


def _git_since(since: Union[_dt.date, _dt.datetime]) -> str:
    """A cut for git that keeps every commit ``since`` may keep (a day's margin covers offsets)."""
    if not isinstance(since, _dt.datetime):
        since = _dt.datetime(since.year, since.month, since.day, tzinfo=_dt.timezone.utc)
    return (since - _dt.timedelta(days=1)).isoformat()


# --------------------------------------------------------------------------- the scan


@dataclass
class _Change:
    commit: str
    date: str
    author_name: str
    author_email: str
    subject: str
    key: str
    status: str
    old_blob: str
    new_blob: str


@dataclass
class HistoryScan:
    """Entries found, and whether a shallow clone cut the history short."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    #: The shallow boundary commits met while scanning: what they changed is unknown.
    truncated_at: list[str] = field(default_factory=list)
    #: True when ``limit`` stopped the scan before the end of the history.
    limited: bool = False


def _iter_changes(r: Repository, key: Optional[str], since: Union[_dt.date, _dt.datetime, None]
                  ) -> Iterator[_Change]:
    """Stream (commit, flag file) changes from one ``git log --raw`` process."""
    pathspec = f"{r.flags_prefix}{key}{FLAG_SUFFIX}" if key else r.flags_prefix
    args = ["--date-order", "--raw", "--no-abbrev", "--no-renames", "--no-color", _LOG_FORMAT]
    if since is not None:
        # git filters on the committer date, which is never earlier than the author date of a
        # commit made normally. The exact cut, on the author date, happens below.
        args.append(f"--since={_git_since(since)}")
    header: Optional[list[str]] = None
    plen = len(r.flags_prefix)
    for line in stream_log(r, args, [pathspec]):
        if line.startswith(_RECORD):
            header = line[1:].split(_UNIT, 4)
            continue
        if not line.startswith(":") or header is None:
            continue
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) < 5 or not path.startswith(r.flags_prefix):
            continue
        name = path[plen:]
        if "/" in name or not name.endswith(FLAG_SUFFIX):
            continue  # stray files are the validator's business, not history
        status = parts[4][:1]
        if status not in _ACTIONS:
            continue
        commit, date, author_name, author_email, subject = (header + [""] * 5)[:5]
        yield _Change(commit, date, author_name, author_email, subject,
                      name[: -len(FLAG_SUFFIX)], status, parts[2], parts[3])


class _Unparseable:
    """A flag file that did not parse at some commit: no fields, and not an absent file either."""


UNPARSEABLE = _Unparseable()


class _Blobs:
    """Parsed flag files by blob id, read through one persistent ``git cat-file`` process."""

    def __init__(self, repo: Any):
        self.repo = repo
        self.cache: dict[str, Union[dict[str, Any], _Unparseable]] = {}

    def get(self, sha: str, path: str) -> Union[dict[str, Any], _Unparseable, None]:
        if sha == _NULL_SHA:
            return None
        if sha not in self.cache:
            _, _, _, raw = self.repo.git.get_object_data(sha)
            # The bounded reader of validate: a hostile old blob is a problem, never an exception.
            doc, _ = parse_yaml(path, raw, max_bytes=MAX_FLAG_BYTES, fast=True)
            self.cache[sha] = doc.data if doc is not None and isinstance(doc.data, dict) else UNPARSEABLE
        return self.cache[sha]


def _after_since(date: str, since: Union[_dt.date, _dt.datetime, None]) -> bool:
    if since is None:
        return True
    try:
        when = _dt.datetime.fromisoformat(date)
    except ValueError:
        return True
    if isinstance(since, _dt.datetime):
        return when >= since
    return when.date() >= since


def scan_history(r: Repository, key: Optional[str] = None, *, limit: Optional[int] = None,
                 since: Union[_dt.date, _dt.datetime, None] = None) -> HistoryScan:
    """One pass over the log; entries of shallow boundary commits are left out and reported."""
    scan = HistoryScan()
    if not _has_commits(r.repo):
        return scan
    shallow = r.shallow_commits()
    blobs = _Blobs(r.repo)
    for change in _iter_changes(r, key, since):
        if not _after_since(change.date, since):
            continue
        if limit is not None and len(scan.entries) >= limit:
            scan.limited = True
            break
        if change.commit in shallow:
            # Its parent is missing, so git reports every file as created: unknown, not true.
            if change.commit not in scan.truncated_at:
                scan.truncated_at.append(change.commit)
            continue
        path = f"{r.flags_prefix}{change.key}{FLAG_SUFFIX}"
        before = blobs.get(change.old_blob, path)
        after = blobs.get(change.new_blob, path)
        action = _ACTIONS[change.status]
        unparseable = [side for side, v in (("before", before), ("after", after)) if v is UNPARSEABLE]
        before = None if isinstance(before, _Unparseable) else before
        after = None if isinstance(after, _Unparseable) else after
        if "after" in unparseable or ("before" in unparseable and after is None):
            changes: list[dict[str, Any]] = []  # nothing to compare a broken file with
        else:
            changes = semantic_changes(None if action == "created" else before,
                                       None if action == "deleted" else after)
        scan.entries.append({
            "commit": change.commit,
            "shortCommit": change.commit[:SHORT],
            "date": change.date,
            "authorName": change.author_name,
            "authorEmail": change.author_email,
            "subject": change.subject,
            "key": change.key,
            "action": action,
            "changes": changes,
            "unparseable": unparseable,
        })
    return scan


def _known_keys(root: Path, r: Repository) -> set[str]:
    """Every flag key in the work tree or anywhere in the history (for did-you-mean)."""
    keys = {p.name[: -len(FLAG_SUFFIX)] for p in (root / FLAGS_DIR).glob(f"*{FLAG_SUFFIX}")}
    if _has_commits(r.repo):
        out = r.repo.git.log("--format=", "--name-only", "--no-renames", "--",
                             f":(top,literal){r.flags_prefix}")
        plen = len(r.flags_prefix)
        for line in out.splitlines():
            name = line.strip()[plen:]
            if name.endswith(FLAG_SUFFIX) and "/" not in name:
                keys.add(name[: -len(FLAG_SUFFIX)])
    return keys


def _ever_existed(r: Repository, key: str) -> bool:
    if not _has_commits(r.repo):
        return False
    return bool(r.repo.git.log("-1", "--format=%H", "--",
                               f":(top,literal){r.flags_prefix}{key}{FLAG_SUFFIX}").strip())


def last_deletion(root: Path, key: str) -> Optional[dict[str, str]]:
    """``{"commit", "date", "authorEmail"}`` of the commit that last deleted ``flags/KEY.yaml``,
    or None (never deleted, not in git, or an unsafe key)."""
    if _SAFE_KEY.match(key) is None:
        return None
    r = open_repo(Path(root))
    if r is None:
        return None
    try:
        if not _has_commits(r.repo):
            return None
        out = r.repo.git.log("-1", "--diff-filter=D", f"--format=%H{_UNIT}%aI{_UNIT}%ae", "--",
                             f":(top,literal){r.flags_prefix}{key}{FLAG_SUFFIX}").strip()
    finally:
        r.repo.close()
    if not out:
        return None
    commit, date, email = (out.split(_UNIT) + ["", ""])[:3]
    return {"commit": commit, "date": date, "authorEmail": email}


def _shallow_error(r: Repository, scan: HistoryScan, key: Optional[str]) -> FlagopsError:
    boundary = scan.truncated_at[0]
    try:
        commit = r.repo.commit(boundary)
        when = commit.authored_datetime.date().isoformat()
        what = f"{boundary[:12]} ({when})"
    except Exception:  # noqa: BLE001 - describing the boundary is best effort
        what = boundary[:12]
    subject = f'the history of "{key}"' if key else "the flag history"
    return FlagopsError(
        f"this is a shallow clone: {subject} reaches past its oldest commit {what}, whose "
        f"parents are not fetched, so what that commit and every earlier one changed is missing",
        hint="run `git fetch --unshallow` (in GitHub Actions: actions/checkout with fetch-depth: 0), "
             "or narrow the question with --limit or --since")


def flag_history(root: Path, key: Optional[str] = None, *, limit: Optional[int] = None,
                 since: SinceLike = None, on_shallow: Optional[Callable[[FlagopsError], None]] = None
                 ) -> list[dict[str, Any]]:
    """Every commit that changed ``flags/KEY.yaml`` (every flag when ``key`` is None), newest first.

    Raises :class:`FlagopsError` outside git and for a key that never existed (with a
    did-you-mean). On a shallow clone whose missing commits the answer would need, it raises
    too, unless ``on_shallow`` is given: then that callback receives the error (what is
    missing, and how to fetch it) and the entries the clone holds are returned.
    """
    root = Path(root)
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    when = parse_since(since)
    r = require_repository(root, "the history lives in git", hint="run flagops from a clone of the flags repository")
    if key is not None:
        exists = _SAFE_KEY.match(key) is not None and (root / FLAGS_DIR / f"{key}{FLAG_SUFFIX}").is_file()
        if not exists and (_SAFE_KEY.match(key) is None or not _ever_existed(r, key)):
            hint = None
            if r.shallow_commits():
                hint = "this is a shallow clone; a flag deleted before its oldest commit is not seen"
            raise UnknownFlagError(key, _known_keys(root, r), where="flags/ or in its git history", hint=hint)
    if limit == 0:
        return []
    try:
        scan = scan_history(r, key, limit=limit, since=when)
        if scan.truncated_at and not scan.limited:
            problem = _shallow_error(r, scan, key)
            if on_shallow is None:
                raise problem
            on_shallow(problem)
    finally:
        r.repo.close()  # ends the persistent git cat-file processes
    return scan.entries
