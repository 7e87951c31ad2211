"""Fuzzing the readers and the inventory fast paths (hypothesis, a few seconds in all).

The readers must never raise on any bytes, and what they return must be safe for everything
after them (JSON-encodable as UTF-8, nested within the bound). The fast inventory paths must
agree exactly with what they shortcut: the full YAML parser, and jsonschema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flagops.loading import MAX_DEPTH, parse_flag_blob, parse_json, parse_yaml
from flagops.fastpath import fast_inventory as _fast_inventory
from flagops.problems import Problem
from flagops.schemas import Schemas
from flagops.fastpath import tenants_fast_ok as _tenants_fast_ok
from flagops.validation import load_and_validate, schema_problems
from flagops.loading import Document

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Schemas.load(ROOT / "schema")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Pieces operators (and attackers) type: YAML and JSON syntax, escapes, deep brackets, numbers.
PIECES = st.sampled_from([
    "key: ", "description: ", "state: ", "pct: ", "scope:", "  plans: ", "  tenantSlugs: ", "- ", "  ",
    "on", "off", "rollout", "targeted", "[", "]", "{", "}", ", ", ": ", "\n", "#", "&a ", "*a", "!!str ",
    '"', "'", "\\ud800", "\\U0001F600", "\\x41", "5.0", "1e2", "012", "0x1F", "9" * 120, "-", "?", "|",
    ">", "\t", "\r\n", "\u2028", "\x00", "é", "e\u0301", "[" * 40, "]" * 40, "acme", "null", "~",
])
TEXT = st.lists(PIECES, max_size=40).map("".join)


def _depth(value: Any) -> int:
    level, depth = [value], 0
    while level:
        level = [v for c in level if isinstance(c, (dict, list)) for v in (c.values() if isinstance(c, dict) else c)]
        depth += 1
    return depth - 1


def _safe(doc: Any, problems: list[Problem]) -> None:
    assert all(isinstance(p, Problem) and p.line >= 1 and p.col >= 1 for p in problems)
    for p in problems:
        p.message.encode("utf-8")
    if doc is not None:
        json.dumps(doc.data, ensure_ascii=False).encode("utf-8")  # what compile and show do
        assert _depth(doc.data) <= MAX_DEPTH


@FAST
@given(st.one_of(TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
def test_the_yaml_reader_never_raises(raw: bytes) -> None:
    for fast in (False, True):
        _safe(*parse_yaml("flags/x.yaml", raw, fast=fast))
    data, problems = parse_flag_blob("flags/x.yaml", raw)
    assert data is None or isinstance(data, dict)


JSON_PIECES = st.sampled_from(['[', ']', '{', '}', ',', ':', '"id"', '"a"', '"\\ud800"', '"\\udc00x"',
                               '"\\ud83d\\ude00"', '1', '-0', '1e999', '9' * 5000, 'null', 'true', 'NaN',
                               ' ', '\n', '"', '\\', '[' * 2000])


@FAST
@given(st.lists(JSON_PIECES, max_size=30).map("".join))
def test_the_json_reader_never_raises(text: str) -> None:
    _safe(*parse_json("tenants/production.json", text.encode("utf-8")))


# --------------------------------------------------------------------------- fast paths

SLUGS = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9-]{0,6}", fullmatch=True),
                  st.sampled_from(["", "Acme", "acme\n", "-acme", "a" * 64, "é", "a b"]))
VALUES = st.one_of(SLUGS, st.sampled_from(SCHEMAS.plans), st.integers(-3, 3), st.none(), st.booleans(),
                   st.just([]), st.just({}), st.floats(allow_nan=False))
KEYS = st.sampled_from(["id", "slug", "plan", "partnerSlug", "name", "extra"])


def _tenant(draw: Any) -> Any:
    tenant = {"id": draw(st.one_of(st.text(max_size=4), VALUES)), "slug": draw(SLUGS),
              "plan": draw(st.sampled_from(SCHEMAS.plans))}
    for key in draw(st.lists(KEYS, max_size=3)):
        tenant[key] = draw(st.one_of(SLUGS, VALUES))
    for key in draw(st.lists(st.sampled_from(["id", "slug", "plan"]), max_size=1)):
        tenant.pop(key, None)
    return tenant


INVENTORIES = st.one_of(st.lists(st.composite(lambda draw: _tenant(draw))(), max_size=6),
                        VALUES, st.lists(VALUES, max_size=3))


@FAST
@given(INVENTORIES)
def test_the_fast_inventory_check_agrees_with_jsonschema(data: Any) -> None:
    assert SCHEMAS.fast_tenants_check
    pattern = re.compile(SCHEMAS.slug_pattern.lstrip("^").rstrip("$"))
    fast = _tenants_fast_ok(data, set(SCHEMAS.plans), pattern)
    full = not list(SCHEMAS.tenants_validator.iter_errors(data))
    assert fast == full, data


FLAG_VALUES = st.one_of(SLUGS, st.sampled_from(["off", "on", "targeted", "rollout", "On", "a_flag", "x", " ",
                                                  "\u2003", "2026-02-30", "2026-02-28", "2026-1-01", "ops@dezky.eu",
                                                  "2026-02-28\n", "\uff12026-01-01"]),
                        st.integers(-2, 102), st.none(), st.booleans(), st.floats(0, 100), st.just([]),
                        st.just({}), st.text(max_size=3))
AXIS_VALUES = st.one_of(st.lists(st.one_of(SLUGS, st.sampled_from([*SCHEMAS.plans, *SCHEMAS.environments, "gold"]),
                                           st.integers(0, 2), st.none()), max_size=4), FLAG_VALUES)


@st.composite
def _flags(draw: Any) -> Any:
    flag: dict[Any, Any] = {"key": draw(st.one_of(st.just("a_flag"), FLAG_VALUES)),
                            "description": draw(st.one_of(st.just("Gates it"), FLAG_VALUES)),
                            "state": draw(st.one_of(st.sampled_from(["off", "on", "targeted", "rollout"]), FLAG_VALUES))}
    for field in draw(st.lists(st.sampled_from(["owner", "expires", "pct", "scope", "killed", "extra", 1]),
                               max_size=4)):
        if field == "scope":
            flag[field] = draw(st.one_of(
                st.dictionaries(st.sampled_from(["plans", "tenantSlugs", "partnerSlugs", "environments", "other"]),
                                AXIS_VALUES, max_size=4), FLAG_VALUES))
        elif field == "killed":
            flag[field] = {"at": "2026-01-01T00:00:00Z", "by": "ops@dezky.eu", "state": "on"}
        else:
            flag[field] = draw(FLAG_VALUES)
    for field in draw(st.lists(st.sampled_from(["key", "description", "state"]), max_size=1)):
        flag.pop(field, None)
    return flag


@FAST
@given(st.one_of(_flags(), FLAG_VALUES))
@example({"key": "a_flag", "description": "Gates it", "state": "rollout", "pct": 5,
          "scope": {"plans": ["business"], "tenantSlugs": ["acme"]}, "expires": "2026-02-28"})
def test_the_fast_flag_check_never_passes_what_jsonschema_refuses(flag: Any) -> None:
    from flagops.fastpath import flag_fast_ok

    vocabulary = SCHEMAS.fast_flag_check
    assert vocabulary is not None
    full = not list(SCHEMAS.flag_validator.iter_errors(flag))
    if flag_fast_ok(flag, vocabulary):
        assert full, flag
    elif full:  # what it leaves to jsonschema: a killed block only
        assert isinstance(flag, dict) and "killed" in flag, flag


LINE_VALUES = st.one_of(SLUGS, st.sampled_from(['"quoted"', "'single'", '"a\\"b"', "x # note", "1", "on",
                                                "null", "a: b", "[x]", "-", "é", "e\u0301"]))


@FAST
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["id", "slug", "plan", "name", "id"]), LINE_VALUES),
                max_size=8))
def test_the_fast_yaml_reader_agrees_with_the_parser(lines: list[tuple[bool, str, str]]) -> None:
    text = "".join(f"{'- ' if first else '  '}{key}: {value}\n" for first, key, value in lines)
    fast = _fast_inventory(text)
    if fast is not None:  # it may decline anything; what it accepts must be exactly right
        doc, problems = parse_yaml("tenants/x.yaml", text.encode("utf-8"))
        assert problems == [] and doc is not None and doc.data == fast


# --------------------------------------------------------------------------- the whole loader


@FEW
@given(TEXT)
def test_validation_of_any_flag_file_never_raises(tmp_path_factory: Any, text: str) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "flags").mkdir()
    (root / "tenants").mkdir()
    (root / "tenants" / "production.yaml").write_text("- id: t_1\n  slug: acme\n  plan: free\n")
    (root / "flags" / "x.yaml").write_bytes(text.encode("utf-8", "surrogatepass"))
    project, _, result = load_and_validate(root)
    for p in result.problems:
        f"{p.path}:{p.line}:{p.col}: {p.message}".encode("utf-8")
    if not result.errors:
        for flag in project.flag_models().values():
            json.dumps(flag.to_dict(), ensure_ascii=False).encode("utf-8")


def test_schema_problems_locate_within_the_document() -> None:
    doc = Document("tenants/x.json", [{"id": 1, "slug": "A", "plan": "gold", "x": []}], "")
    for p in schema_problems(doc, SCHEMAS.tenants_validator):
        assert (p.line, p.col) >= (1, 1)


# What flag files hold, plus what libyaml reads differently (tabs, CR, BOM, escapes, markers).
FLAG_PIECES = st.sampled_from([
    "key: ", "description: ", "state: ", "pct: ", "scope:\n", "  plans: ", "  tenantSlugs:\n", "    - ", "- ",
    "  ", " ", "\n", ": ", ":", "on", "off", "rollout", "5", "-1", "1.5e3", "0x1F", "0o7", "012", ".inf", "~",
    "null", "true", "2026-01-01", "acme", "Grüße, 日本", "é", "[", "]", "{", "}", ", ", "# c", " # c\n", "'",
    '"', "''", "it''s", "\t", "\r", "\r\n", "\ufeff", "\u00a0", "\u2028", "\\", "\\u00e9", "---", "...",
    "&a ", "*a", "!!str ", "!x ", "?", "|", ">", "%YAML 1.2\n", "@", "`", "ops@dezky.eu", "@ops", "`x`",
    "[" * 34, "]" * 34,
])


@FAST
@given(st.lists(FLAG_PIECES, max_size=24).map("".join))
@example("[key: ]")  # an empty value in a flow collection: libyaml places it elsewhere
@example("[" * 34 + "a" + "]" * 34 + ": x\n")  # a collection as a key: its depth is reported first
@example("owner: ops@dezky.eu\nscope: {plans: [business], tenantSlugs: }\n")
def test_flag_files_read_by_libyaml_equal_the_pure_reader(text: str) -> None:
    """A flag file is read by libyaml only where that changes nothing: data, positions, problems."""
    from flagops.parsing import MAX_FLAG_BYTES, parse_file

    raw = text.encode("utf-8")
    pure, pure_problems = parse_yaml("flags/f.yaml", raw, max_bytes=MAX_FLAG_BYTES)
    read, problems = parse_file("flags/f.yaml", raw, max_bytes=MAX_FLAG_BYTES)
    assert problems == pure_problems
    assert (read is None) == (pure is None)
    if read is not None and pure is not None:
        assert read.data == pure.data
        read._ensure_positions()
        pure._ensure_positions()
        assert (read.positions, read.key_positions) == (pure.positions, pure.key_positions)
