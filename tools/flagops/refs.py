"""Code references: which flags the code uses, which it never uses, and which keys it misspells.

Source files (TypeScript, JavaScript, Vue, Python) are read as bytes and scanned with
precompiled regexes for key-shaped string literals (``'x'``, ``"x"`` or ```x``` whose content
matches the flag key pattern), literals in flag calls, and ``flags.x`` attribute reads. A first
pass in C collects a file's distinct literals; only files holding a flag key, a near miss or a
flag call are walked again for line numbers. Each hit is:

1. a **reference** when it is exactly a flag key;
2. an **unknown key** when it is not a flag key but stands where flags are read (the flag-call
   rule): the first argument of a call whose callee name contains ``flag``, ``feature``,
   ``toggle`` or ``enabled`` (``isEnabled('x')``, ``is_enabled("x")``, ``useFlag('x')``,
   ``client.getFeatureFlag('x')``), a subscript of a name containing ``flag`` or ``feature``
   (``flags['x']``), or an attribute holding an underscore of a name ending in ``flags`` that
   is not a method call (``flags.new_x``, ``this.flags.new_x``; not ``flags.length``);
3. an **unknown key** anywhere else only when it looks like a typo of a flag key (the
   near-miss rule): it contains an underscore and is within edit distance 1 of a flag key
   (2 for keys of 10 characters or more, a transposition counting as 1);
4. ignored otherwise, so ordinary snake_case strings never flood the report.

Comments are not told apart from code: a key named in a comment counts as a reference.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from .validation import did_you_mean

#: File types scanned, by suffix.
SOURCE_SUFFIXES = frozenset({".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".vue",
                             ".py", ".pyi"})
#: Directories never entered (dependencies, build output, caches); hidden directories neither.
SKIP_DIRS = frozenset({"node_modules", "bower_components", "dist", "build", "out", "target",
                       "coverage", "venv", "site-packages", "__pycache__", "vendor"})
#: A directory holding this file is a Python virtualenv, whatever its name.
VENV_MARKER = "pyvenv.cfg"
#: Below this many files a process pool costs more than it saves.
PARALLEL_MIN_FILES = 2000

_KEY = rb"[a-z][a-z0-9_]{1,63}"
# A quoted key-shaped literal: 'x', "x" or `x`.
_LITERAL = re.compile(rb"(['\"`])(" + _KEY + rb")\1")
# The same, loosely (any quote on either side), for the first pass: findall returns the words
# themselves, so the distinct words of a file are one set() away.
_WORDS = re.compile(rb"['\"`](" + _KEY + rb")(?=['\"`])")
# A literal right after "...word...(" or "...word...[" where word is a flag word; which word
# allows which bracket is checked afterwards. Spelled with a one-letter prefix class because
# that lets the regex engine skip ahead quickly.
_CONTEXT = re.compile(rb"[FfEeTt](?:lag|LAG|eature|EATURE|oggle|nabled)[\w$]*\s*([(\[])\s*(['\"`])("
                      + _KEY + rb")\2")
_CALL_WORDS = (b"flag", b"feature", b"toggle", b"enabled")
_SUBSCRIPT_WORDS = (b"flag", b"feature")
# The attribute after a name ending in "flags" (flags.x, this.flags.x, $flags.x, flags?.x); not a
# method call (flags.get(...)) and not followed by more identifier characters.
_ATTRIBUTE = re.compile(rb"(?<![\w$])[\w$]*[Ff]lags\??\.(" + _KEY + rb")\b(?![\w$]|\s*\()")


@dataclass(frozen=True, order=True)
class Location:
    path: str
    line: int

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line}


@dataclass(frozen=True, order=True)
class Unknown:
    """A key-shaped literal that is not a flag, with the closest flag key (or None)."""

    path: str
    line: int
    key: str
    suggestion: Optional[str]

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "path": self.path, "line": self.line, "suggestion": self.suggestion}


@dataclass
class RefsReport:
    """The outcome of a scan, in the shape of ``flagops refs --format json``."""

    references: dict[str, list[Location]] = field(default_factory=dict)
    unreferenced: list[str] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)
    files: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "references": {k: [loc.to_dict() for loc in v] for k, v in sorted(self.references.items())},
            "unreferenced": list(self.unreferenced),
            "unknown": [u.to_dict() for u in self.unknown],
        }


# --------------------------------------------------------------------------- near misses


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance, giving up (returning limit + 1) once past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> set[str]:
    """``word`` with up to ``depth`` characters deleted (the near-miss index)."""
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class _Matcher:
    """Classifies literals against the known keys, caching the answer per distinct literal.

    Near misses are found through a deletion index (two strings within edit distance k share a
    string reachable from both by at most k deletions), so the cost per distinct literal does
    not grow with the number of flags; candidates are then checked with the exact distance.
    """

    def __init__(self, keys: Iterable[str]):
        self.keys = frozenset(keys)
        self.key_bytes = frozenset(k.encode("ascii") for k in self.keys)
        self._sorted = sorted(self.keys)
        self._index: dict[str, set[str]] = {}
        for key in self._sorted:
            for variant in _deletes(key, self._limit(key)):
                self._index.setdefault(variant, set()).add(key)
        self.seen: set[bytes] = set()  # every literal classified so far
        self.wanted: set[bytes] = set(self.key_bytes)  # keys and near misses among them
        self._near: dict[bytes, str] = {}

    @staticmethod
    def _limit(key: str) -> int:
        return 2 if len(key) >= 10 else 1

    def classify(self, words: set[bytes]) -> set[bytes]:
        """The words worth locating: flag keys and near misses (set operations, cached)."""
        new = words - self.seen
        if new:
            for word in new:
                if self._find_near(word):
                    self.wanted.add(word)
            self.seen |= new
        return words & self.wanted

    def _find_near(self, word: bytes) -> Optional[str]:
        if b"_" not in word or word in self.key_bytes:
            return None
        text = word.decode("ascii")
        candidates: set[str] = set()
        for variant in _deletes(text, 2):
            found = self._index.get(variant)
            if found:
                candidates |= found
        best: Optional[tuple[int, str]] = None
        for key in sorted(candidates):
            limit = self._limit(key)
            d = _distance(text, key, limit)
            if d <= limit and (best is None or d < best[0]):
                best = (d, key)
        if best:
            self._near[word] = best[1]
        return best[1] if best else None

    def near_miss(self, word: bytes) -> Optional[str]:
        """The flag key ``word`` is a likely typo of (the near-miss rule), or None."""
        if word not in self.seen:
            self.classify({word})
        return self._near.get(word)

    def suggestion(self, word: bytes) -> Optional[str]:
        near = self.near_miss(word)
        if near:
            return near
        hint = did_you_mean(word.decode("ascii"), self._sorted)
        return hint.split('"')[1] if hint else None


# --------------------------------------------------------------------------- scanning


def scan_bytes(path: str, data: bytes, matcher: _Matcher) -> tuple[list[tuple[str, int]], list[Unknown]]:
    """References ``[(key, line)]`` and unknown keys of one file's content.

    A first pass in C collects the distinct literals; only files holding a key, a near miss or a
    flag-call context are walked again for line numbers.
    """
    keys = matcher.key_bytes
    wanted = matcher.classify(set(_WORDS.findall(data)))
    hits: list[tuple[int, bytes, bool]] = []  # (offset, word, in a flag-read context)
    if wanted:
        hits += [(m.start(), m.group(2), False) for m in _LITERAL.finditer(data) if m.group(2) in wanted]
    if b"lag" in data or b"eature" in data or b"nabled" in data or b"oggle" in data or b"LAG" in data \
            or b"EATURE" in data:
        for m in _CONTEXT.finditer(data):
            word = m.group(3)
            if word in keys:
                continue
            head = m.group(0)[:7].lower()
            if not head.startswith(_CALL_WORDS if m.group(1) == b"(" else _SUBSCRIPT_WORDS):
                continue
            hits.append((m.start(2), word, True))
    if b"lags" in data:
        # Attributes without an underscore are left to the near-miss rule: flags.length is no flag.
        hits += [(m.start(), m.group(1), b"_" in m.group(1)) for m in _ATTRIBUTE.finditer(data)]
    refs: list[tuple[str, int]] = []
    unknown: list[Unknown] = []
    line, pos = 1, 0
    for start, word, context in sorted(hits):
        line += data.count(b"\n", pos, start)
        pos = start
        text = word.decode("ascii")
        if word in keys:
            refs.append((text, line))
        elif context:
            unknown.append(Unknown(path, line, text, matcher.suggestion(word)))
        else:
            near = matcher.near_miss(word)
            if near:
                unknown.append(Unknown(path, line, text, near))
    return refs, unknown


def _might_hold(data: bytes) -> bool:
    # Cheap pre-checks in C: no quote and no "...flags." read means nothing to find.
    return b'"' in data or b"'" in data or b"`" in data or b"lags" in data


def scan_file(path: str, matcher: _Matcher) -> tuple[list[tuple[str, int]], list[Unknown]]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return [], []
    if not _might_hold(data):
        return [], []
    return scan_bytes(path, data, matcher)


def iter_source_files(paths: Sequence[str]) -> Iterator[str]:
    """Source files under ``paths`` (files given directly are scanned whatever their suffix)."""
    for top in paths:
        if os.path.isfile(top):
            yield top
            continue
        stack = [top]
        while stack:
            current = stack.pop()
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except OSError:
                continue
            if current != top and any(e.name == VENV_MARKER for e in entries):
                continue
            subdirs = []
            for entry in entries:
                name = entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if name not in SKIP_DIRS and not name.startswith("."):
                        subdirs.append(entry.path)
                elif os.path.splitext(name)[1] in SOURCE_SUFFIXES and entry.is_file():
                    yield entry.path
            stack.extend(reversed(subdirs))


_worker_matcher: Optional[_Matcher] = None


def _init_worker(keys: list[str]) -> None:
    global _worker_matcher
    _worker_matcher = _Matcher(keys)


def _scan_chunk(paths: list[str]) -> list[tuple[str, list[tuple[str, int]], list[Unknown]]]:
    assert _worker_matcher is not None
    out = []
    for p in paths:
        refs, unknown = scan_file(p, _worker_matcher)
        if refs or unknown:
            out.append((p, refs, unknown))
    return out


def scan(paths: Sequence[str | Path], keys: Iterable[str], *, jobs: Optional[int] = None) -> RefsReport:
    """Scan source trees for the flag ``keys``; ``jobs`` processes (default: one per CPU when large)."""
    keys = sorted(set(keys))
    files = list(iter_source_files([str(p) for p in paths]))
    if jobs is None:
        jobs = (os.cpu_count() or 1) if len(files) >= PARALLEL_MIN_FILES else 1
    results: list[tuple[str, list[tuple[str, int]], list[Unknown]]] = []
    if jobs > 1 and len(files) > 1:
        size = max(64, len(files) // (jobs * 8))
        chunks = [files[i:i + size] for i in range(0, len(files), size)]
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(keys,)) as pool:
            for part in pool.map(_scan_chunk, chunks):
                results.extend(part)
    else:
        matcher = _Matcher(keys)
        for p in files:
            refs, unknown = scan_file(p, matcher)
            if refs or unknown:
                results.append((p, refs, unknown))

    report = RefsReport(files=len(files))
    seen: dict[str, set[Location]] = {}
    unknown_all: set[Unknown] = set()
    for path, refs, unknown in results:
        for key, line in refs:
            seen.setdefault(key, set()).add(Location(path, line))
        unknown_all.update(unknown)
    report.references = {k: sorted(v) for k, v in sorted(seen.items())}
    report.unreferenced = [k for k in keys if k not in seen]
    report.unknown = sorted(unknown_all)
    return report


__all__ = ["Location", "RefsReport", "SKIP_DIRS", "SOURCE_SUFFIXES", "Unknown",
           "iter_source_files", "scan", "scan_bytes"]
