"""Read flag files and tenant inventories, keeping the line and column of every node.

YAML is read the way operators type it: only ``true``/``false`` are booleans (``on``, ``off``,
``yes`` and ``no`` stay strings), dates stay strings, duplicated keys are errors at the
duplicate, anchors and aliases are refused. Large JSON inventories take a fast path and are
only re-parsed with positions when something in them needs pointing at.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import SourceError
from .model import Flag, Tenant
from .problems import Problem

FLAGS_DIR = "flags"
TENANTS_DIR = "tenants"
SCHEMA_DIR = "schema"
FLAG_SUFFIX = ".yaml"
INVENTORY_SUFFIXES = (".yaml", ".json")
#: A flag file must stay under this size; inventories may be much larger.
MAX_FLAG_BYTES = 1024 * 1024
MAX_INVENTORY_BYTES = 1024 * 1024 * 1024
TENANTS_TOKEN_ENV = "FLAGOPS_TENANTS_TOKEN"
#: Seconds to wait for an inventory URL; FLAGOPS_TENANTS_TIMEOUT overrides it.
TENANTS_TIMEOUT_ENV = "FLAGOPS_TENANTS_TIMEOUT"
DEFAULT_URL_TIMEOUT = 30.0
#: Something that may be a YAML anchor or alias; libyaml cannot report them, so such
#: text is re-read by the pure-Python composer, which refuses them at their position.
_ANCHOR_HINT = re.compile(r"(?:^|[\s\[\{,])[&*][^\s\[\]\{\},]", re.MULTILINE)

JsonPath = tuple  # a path of keys and indices into a document
Position = tuple[int, int]  # (line, col), both 1-based


# --------------------------------------------------------------------------- YAML reading


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core-schema scalars: no yes/no/on/off booleans, no sexagesimals, no dates."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _AnchorError(yaml.MarkedYAMLError):
    pass


class _Loader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver
):
    """Pure-Python composer that refuses anchors and aliases where they occur."""

    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)

    def compose_node(self, parent: Any, index: Any) -> Node:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _AnchorError(
                None, None, f"alias *{event.anchor} is not allowed (write the value out)",
                event.start_mark,
            )
        if getattr(event, "anchor", None) is not None:
            raise _AnchorError(
                None, None, f"anchor &{event.anchor} is not allowed (write the value out)",
                event.start_mark,
            )
        return super().compose_node(parent, index)


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - libyaml is present in every supported install
    _CParser = None  # type: ignore[assignment,misc]

if _CParser is not None:

    class _CLoader(_CParser, _Resolver):  # type: ignore[misc,name-defined]
        """libyaml composer for large inventories; aliases are caught by node identity."""

        def __init__(self, stream: str):
            _CParser.__init__(self, stream)  # type: ignore[attr-defined]
            _Resolver.__init__(self)

else:  # pragma: no cover - libyaml is present in every supported install
    _CLoader = None  # type: ignore[assignment,misc]


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar_value(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        return int(value, 0)
    if tag == "tag:yaml.org,2002:float":
        low = value.lower()
        if low.endswith(".inf"):
            return float("-inf") if low.startswith("-") else float("inf")
        if low == ".nan":
            return float("nan")
        return float(value)
    if tag == "tag:yaml.org,2002:null":
        return None
    raise ValueError(f"the tag {tag} is not supported (use plain strings, numbers and lists)")


class _Converter:
    """Turns a node tree into plain data plus a position for every value and key."""

    def __init__(self, path: str):
        self.path = path
        self.positions: dict[JsonPath, Position] = {}
        self.key_positions: dict[JsonPath, Position] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()

    def convert(self, node: Node, at: JsonPath = ()) -> Any:
        if id(node) in self._seen:
            line, col = _pos(node)
            self.problems.append(
                Problem(self.path, line, col, "yaml-alias", "aliases are not allowed (write the value out)")
            )
            return None
        self._seen.add(id(node))
        self.positions[at] = _pos(node)
        if isinstance(node, ScalarNode):
            try:
                return _scalar_value(node)
            except ValueError as exc:
                line, col = _pos(node)
                self.problems.append(Problem(self.path, line, col, "yaml-tag", str(exc)))
                return None
        if isinstance(node, SequenceNode):
            return [self.convert(child, at + (i,)) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    line, col = _pos(key_node)
                    self.problems.append(
                        Problem(self.path, line, col, "yaml-key", "a mapping key must be a plain string")
                    )
                    continue
                key = key_node.value
                if key in out:
                    line, col = _pos(key_node)
                    first = self.key_positions.get(at + (key,), (0, 0))[0]
                    self.problems.append(
                        Problem(
                            self.path, line, col, "duplicate-key",
                            f"duplicate key {json.dumps(key, ensure_ascii=False)} (first defined on line {first}); keep one",
                        )
                    )
                    continue
                self.key_positions[at + (key,)] = _pos(key_node)
                out[key] = self.convert(value_node, at + (key,))
            return out
        raise TypeError(f"unexpected node {node!r}")  # pragma: no cover


# --------------------------------------------------------------------------- documents


@dataclass
class Document:
    """Parsed data of one file, with lazy access to the position of every value."""

    path: str
    data: Any
    text: str = ""
    positions: Optional[dict[JsonPath, Position]] = None
    key_positions: Optional[dict[JsonPath, Position]] = None

    def _ensure_positions(self) -> None:
        if self.positions is not None:
            return
        # Fast-parsed documents (JSON) get positions only when something needs locating.
        self.positions, self.key_positions = {}, {}
        try:
            node = _compose(self.text, fast=True)
        except yaml.YAMLError:
            return
        if node is not None:
            conv = _Converter(self.path)
            conv.convert(node)
            self.positions, self.key_positions = conv.positions, conv.key_positions

    def locate(self, at: Iterable[Any] = (), *, key: bool = False) -> Position:
        """Position of the value at ``at`` (of its key with ``key=True``), else the nearest parent."""
        self._ensure_positions()
        assert self.positions is not None and self.key_positions is not None
        at = tuple(at)
        if key and at in self.key_positions:
            return self.key_positions[at]
        while True:
            if at in self.positions:
                return self.positions[at]
            if not at:
                return (1, 1)
            at = at[:-1]


def _compose(text: str, *, fast: bool) -> Optional[Node]:
    if fast and _CLoader is not None:
        loader = _CLoader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _decode(path: str, raw: bytes) -> tuple[Optional[str], list[Problem]]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(path, line, col, "encoding",
                    f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8")
        ]


def _yaml_problem(path: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(exc, _AnchorError):
        rule = "yaml-alias" if "alias" in str(exc.problem) else "yaml-anchor"
        return Problem(path, line, col, rule, str(exc.problem))
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and str(what).startswith("but "):  # "expected X" + "but found Y" reads in that order
        message = f"YAML syntax error: {context}, {what}"
    else:
        message = f"YAML syntax error: {what}" + (f" ({context})" if context else "")
    return Problem(path, line, col, "yaml-syntax", message)


# One line of the regular shape platform exports have: ``- key: value`` starting a tenant,
# ``  key: value`` continuing it; values plain (one line, no indicator first), or quoted
# without escapes; an optional trailing comment.
_FAST_LINE = re.compile(
    r"(- |  )([A-Za-z][A-Za-z0-9_]*):[ ]+"
    r"(?:\"([^\"\\]*)\"|'([^']*)'|([^\s\-?:,\[\]{}#&*!|>'\"%@`][^\s#:]*(?:[ ]+[^\s#:]+)*))"
    r"(?:[ ]+#.*)?[ ]*"
)
# Plain scalars the YAML 1.2 core schema does not read as strings (see _Resolver).
_NOT_A_STRING = re.compile(
    r"true|True|TRUE|false|False|FALSE|~|null|Null|NULL"
    r"|[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


def _fast_inventory(text: str) -> Optional[list[dict[str, Any]]]:
    """Read an inventory of the regular exported shape without building a YAML node tree.

    Returns None as soon as anything is outside that shape (flow style, anchors, escapes,
    numbers, nesting, duplicate keys, ...): the full parser then reads the file and reports
    its problems with positions. For what it accepts the result equals the full parser's.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # Other line breaks YAML knows, and characters it refuses: the full parser decides.
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text \
            or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    items: list[dict[str, Any]] = []
    current: Optional[dict[str, Any]] = None
    match = _FAST_LINE.fullmatch
    not_a_string = _NOT_A_STRING.fullmatch
    for line in text.split("\n"):
        m = match(line)
        if m is None:
            stripped = line.strip(" ")
            if not stripped or stripped.startswith("#"):
                continue
            return None
        lead, key, dq, sq, plain = m.groups()
        if plain is not None:
            if plain[0] in "-+.0123456789tTfFnN~" and not_a_string(plain):
                return None
            value = plain
        else:
            value = dq if dq is not None else sq
        if lead == "- ":
            current = {key: value}
            items.append(current)
        elif current is None or key in current:
            return None
        else:
            current[key] = value
    return items or None


def parse_yaml(path: str, raw: bytes, *, max_bytes: int = MAX_FLAG_BYTES, fast: bool = False
               ) -> tuple[Optional[Document], list[Problem]]:
    """Parse one YAML file with positions. Returns (document or None, problems)."""
    if len(raw) >= max_bytes:
        return None, [Problem(path, 1, 1, "file-too-large",
                              f"the file is {len(raw)} bytes; it must stay under {max_bytes} bytes")]
    text, problems = _decode(path, raw)
    if text is None:
        return None, problems
    if fast:
        data = _fast_inventory(text)
        if data is not None:
            return Document(path, data, text), []  # positions computed only if needed
        if _ANCHOR_HINT.search(text):
            fast = False
    try:
        node = _compose(text, fast=fast)
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses (libyaml reports a byte offset, so find it in the text).
        bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
        at = bad.start() if bad else 0
        line = text.count("\n", 0, at) + 1
        col = at - (text.rfind("\n", 0, at) + 1) + 1
        char = text[at] if bad else "\ufffd"
        return None, [Problem(path, line, col, "yaml-syntax",
                              f"the character U+{ord(char):04X} is not allowed in YAML; remove it")]
    except yaml.YAMLError as exc:
        return None, [_yaml_problem(path, exc)]
    if node is None:
        return None, [Problem(path, 1, 1, "empty-file", "the file holds no YAML document, only comments or blank lines")]
    conv = _Converter(path)
    data = conv.convert(node)
    return Document(path, data, text, conv.positions, conv.key_positions), conv.problems


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def parse_json(path: str, raw: bytes, *, max_bytes: int = MAX_INVENTORY_BYTES
               ) -> tuple[Optional[Document], list[Problem]]:
    """Parse one JSON file fast; positions are computed only if a problem needs them."""
    if len(raw) >= max_bytes:
        return None, [Problem(path, 1, 1, "file-too-large",
                              f"the file is {len(raw)} bytes; it must stay under {max_bytes} bytes")]
    text, problems = _decode(path, raw)
    if text is None:
        return None, problems
    if not text.strip():
        return None, [Problem(path, 1, 1, "empty-file", "the file is empty; it must hold a JSON array")]
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        # Rare: locate the duplicate with the position-keeping reader.
        doc, problems = parse_yaml(path, raw, max_bytes=max_bytes, fast=True)
        dup = [p for p in problems if p.rule == "duplicate-key"]
        return doc, dup or [Problem(path, 1, 1, "duplicate-key", "a JSON object repeats a key")]
    except json.JSONDecodeError as exc:
        return None, [Problem(path, exc.lineno, exc.colno, "json-syntax", f"JSON syntax error: {exc.msg}")]
    return Document(path, data, text), []


def parse_file(path: str, raw: bytes, *, max_bytes: int) -> tuple[Optional[Document], list[Problem]]:
    if path.endswith(".json"):
        return parse_json(path, raw, max_bytes=max_bytes)
    return parse_yaml(path, raw, max_bytes=max_bytes, fast=max_bytes > MAX_FLAG_BYTES)


# --------------------------------------------------------------------------- sources


class Source(Protocol):
    """Where a repository's files come from: the working tree, or a git revision."""

    label: str

    def list_dir(self, rel: str) -> Optional[list[str]]:
        """Names of the entries of a directory (directories end with '/'), None if absent."""

    def read(self, rel: str) -> bytes:
        """The bytes of one file."""


@dataclass
class FsSource:
    """The working tree under ``root``."""

    root: Path
    label: str = "worktree"

    def list_dir(self, rel: str) -> Optional[list[str]]:
        base = self.root / rel
        if not base.is_dir():
            return None
        return sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(base))

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()


# --------------------------------------------------------------------------- project


@dataclass
class Inventory:
    """The tenants of one environment."""

    environment: str
    document: Optional[Document]
    path: str
    override: bool = False  # given with --tenants rather than read from the repository
    _models: Optional[tuple[Tenant, ...]] = field(default=None, repr=False, compare=False)

    @property
    def tenants(self) -> list[dict[str, Any]]:
        data = self.document.data if self.document else None
        return data if isinstance(data, list) else []

    def tenant_models(self) -> tuple[Tenant, ...]:
        """The tenants as :class:`Tenant` values (built once); for a validated inventory."""
        if self._models is None:
            self._models = Tenant.many(self.tenants)
        return self._models


@dataclass
class Project:
    """Everything read from one repository (or revision), before validation."""

    source: Any
    flags: dict[str, Document] = field(default_factory=dict)  # file stem -> document
    inventories: dict[str, Inventory] = field(default_factory=dict)  # environment -> inventory
    problems: list[Problem] = field(default_factory=list)
    #: Set by validation: the flags whose files have no error, keyed by file stem.
    models: Optional[dict[str, Flag]] = None

    def flag_data(self) -> dict[str, dict[str, Any]]:
        """Flag definitions keyed by file stem, for documents that parsed to a mapping."""
        return {k: d.data for k, d in sorted(self.flags.items()) if isinstance(d.data, dict)}

    def flag_models(self) -> dict[str, Flag]:
        """The flags as :class:`Flag` values, keyed by file stem, sorted.

        After validation, the flags whose files have no error; before it, every definition
        that parses as a flag (one that does not is left out).
        """
        if self.models is not None:
            return self.models
        out: dict[str, Flag] = {}
        for stem, data in self.flag_data().items():
            try:
                out[stem] = Flag.from_mapping(data, key=stem)
            except ValueError:
                continue
        return out


def load_flags(source: Source, project: Project) -> None:
    names = source.list_dir(FLAGS_DIR)
    if names is None:
        project.problems.append(Problem(FLAGS_DIR, 1, 1, "missing-directory",
                                        "there is no flags/ directory; create it with one <key>.yaml per flag"))
        return
    for name in names:
        rel = f"{FLAGS_DIR}/{name}"
        if name.endswith("/"):
            project.problems.append(Problem(rel.rstrip("/"), 1, 1, "stray-file",
                                            "flags/ holds one <key>.yaml file per flag; move this directory out"))
            continue
        if not name.endswith(FLAG_SUFFIX):
            hint = (f"rename it to {name.rsplit('.', 1)[0]}.yaml" if name.endswith(".yml")
                    else "only <key>.yaml files belong in flags/; move or delete it")
            project.problems.append(Problem(rel, 1, 1, "stray-file", f"not a .yaml flag file: {hint}"))
            continue
        try:
            raw = source.read(rel)
        except OSError as exc:
            project.problems.append(Problem(rel, 1, 1, "unreadable", f"cannot read the file: {exc.strerror or exc}"))
            continue
        doc, problems = parse_yaml(rel, raw, max_bytes=MAX_FLAG_BYTES)
        project.problems.extend(problems)
        if doc is not None:
            if not isinstance(doc.data, dict):
                line, col = doc.locate(())
                project.problems.append(Problem(rel, line, col, "not-a-mapping",
                                                "a flag file must be a YAML mapping (key: value lines)"))
            project.flags[name[: -len(FLAG_SUFFIX)]] = doc


def load_inventories(source: Source, project: Project, environments: Iterable[str]) -> None:
    names = source.list_dir(TENANTS_DIR)
    if names is None:
        return
    known = set(environments)
    for name in names:
        rel = f"{TENANTS_DIR}/{name}"
        stem, dot, ext = name.rpartition(".")
        if name.endswith("/") or not dot or f".{ext}" not in INVENTORY_SUFFIXES:
            project.problems.append(Problem(rel.rstrip("/"), 1, 1, "stray-file",
                                            "tenants/ holds <environment>.yaml or <environment>.json files only"))
            continue
        if stem not in known:
            project.problems.append(Problem(
                rel, 1, 1, "unknown-environment",
                f'"{stem}" is not an environment of the schema ({", ".join(sorted(known))}); '
                "rename the file or add the environment to schema/flag.schema.json"))
            continue
        if stem in project.inventories:
            project.problems.append(Problem(rel, 1, 1, "duplicate-inventory",
                                            f"{project.inventories[stem].path} already holds the {stem} inventory; keep one"))
            continue
        try:
            raw = source.read(rel)
        except OSError as exc:
            project.problems.append(Problem(rel, 1, 1, "unreadable", f"cannot read the file: {exc.strerror or exc}"))
            continue
        doc, problems = parse_file(rel, raw, max_bytes=MAX_INVENTORY_BYTES)
        project.problems.extend(problems)
        project.inventories[stem] = Inventory(stem, doc, rel)


def _url_timeout() -> float:
    value = os.environ.get(TENANTS_TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_URL_TIMEOUT
    except ValueError:
        raise SourceError(f"{TENANTS_TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def read_tenants_source(source: str, *, timeout: Optional[float] = None,
                        cwd: Optional[Path] = None) -> tuple[str, bytes]:
    """Fetch an inventory given with ``--tenants``: a local file or an http(s) URL.

    Returns (display path, bytes). URLs send ``Authorization: Bearer $FLAGOPS_TENANTS_TOKEN``
    when that variable is set.
    """
    if source.startswith(("http://", "https://")):
        timeout = timeout if timeout is not None else _url_timeout()
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        token = os.environ.get(TENANTS_TOKEN_ENV)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return source, response.read()
        except urllib.error.HTTPError as exc:
            hint = (f"set {TENANTS_TOKEN_ENV} to a valid token" if exc.code in (401, 403)
                    else "check the URL and that the platform API is up")
            raise SourceError(f"fetching tenants from {source} failed: HTTP {exc.code} {exc.reason}",
                              hint=hint) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
                reason = f"no answer within {timeout:g}s"
            raise SourceError(f"fetching tenants from {source} failed: {reason}",
                              hint=f"check the URL and that the platform API is up; "
                                   f"{TENANTS_TIMEOUT_ENV} sets the timeout (now {timeout:g}s)") from exc
    path = Path(source)
    if cwd is not None and not path.is_absolute():
        path = cwd / path
    try:
        return source, path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read tenants from {source}: {exc.strerror or exc}",
                          hint="pass a YAML or JSON file, or an http(s) URL") from exc


def load_override(project: Project, environment: str, display: str, raw: bytes) -> None:
    """Replace one environment's inventory with one given on the command line."""
    is_json = display.endswith(".json") or raw.lstrip()[:1] in (b"[", b"{")
    if is_json:
        doc, problems = parse_json(display, raw)
    else:
        doc, problems = parse_yaml(display, raw, max_bytes=MAX_INVENTORY_BYTES, fast=True)
    # Problems of the replaced repository file no longer matter for this run.
    replaced = project.inventories.get(environment)
    if replaced is not None:
        project.problems = [p for p in project.problems if p.path != replaced.path]
    project.problems.extend(problems)
    project.inventories[environment] = Inventory(environment, doc, display, override=True)


def load_project(source: Source, environments: Iterable[str],
                 progress: Optional[Callable[[str], None]] = None) -> Project:
    """Read every flag file and every inventory of a repository."""
    project = Project(source)
    load_flags(source, project)
    if progress:
        progress(f"read {len(project.flags)} flag files")
    load_inventories(source, project, environments)
    return project
