"""Reading flag files and inventories: YAML as operators type it, positions, whole-file problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flagops.errors import SourceError
from flagops.loading import (
    MAX_FLAG_BYTES,
    FsSource,
    load_override,
    load_project,
    parse_json,
    parse_yaml,
    read_tenants_source,
)

ENVS = ["development", "staging", "production"]


def rules(problems: list) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.rule) for p in problems]


# --------------------------------------------------------------------------- YAML scalars


@pytest.mark.parametrize("text,value", [
    ("on", "on"), ("off", "off"), ("yes", "yes"), ("no", "no"), ("y", "y"), ("On", "On"),
    ("true", True), ("false", False), ("True", True), ("~", None), ("null", None), ("", None),
    ("2027-03-31", "2027-03-31"), ("12", 12), ("-3", -3), ("0x1f", 31), ("0o17", 15),
    ("1_000", "1_000"), ("1:30", "1:30"), ("012", 12.0), ("1.5", 1.5), ('"on"', "on"), ("'12'", "12"),
])
def test_yaml_12_scalars(text: str, value: object) -> None:
    doc, problems = parse_yaml("f.yaml", f"v: {text}\n".encode())
    assert problems == [] and doc is not None
    assert doc.data == {"v": value}
    assert type(doc.data["v"]) is type(value)


def test_positions_of_values_and_keys() -> None:
    text = b"# c\nkey: a\nscope:\n  plans: [free, starter]\n  environments:\n    - staging\n"
    doc, problems = parse_yaml("f.yaml", text)
    assert problems == [] and doc is not None
    assert doc.locate(("key",)) == (2, 6)
    assert doc.locate(("key",), key=True) == (2, 1)
    assert doc.locate(("scope", "plans", 1)) == (4, 17)
    assert doc.locate(("scope", "environments", 0)) == (6, 7)
    assert doc.locate(("scope", "environments"), key=True) == (5, 3)
    assert doc.locate(()) == (2, 1)
    # an absent path falls back to its nearest parent
    assert doc.locate(("scope", "tenantSlugs", 0)) == (4, 3)


def test_duplicate_key_at_the_duplicate() -> None:
    doc, problems = parse_yaml("f.yaml", b"a: 1\nb: 2\n\na: 3\n")
    assert rules(problems) == [(4, 1, "duplicate-key")]
    assert "first defined on line 1" in problems[0].message
    assert doc is not None and doc.data == {"a": 1, "b": 2}


@pytest.mark.parametrize("text,expected", [
    (b"a: &x 1\n", (1, 4, "yaml-anchor")),
    (b"a: 1\nb: *x\n", (2, 4, "yaml-alias")),
    (b"- &t {id: a}\n", (1, 3, "yaml-anchor")),
])
def test_anchors_and_aliases_are_refused(text: bytes, expected: tuple) -> None:
    doc, problems = parse_yaml("f.yaml", text)
    assert doc is None and rules(problems) == [expected]


def test_anchors_are_refused_on_the_fast_inventory_path_too() -> None:
    text = b"- id: a\n  slug: a\n  plan: free\n- id: b\n  slug: &s b\n  plan: free\n"
    doc, problems = parse_yaml("tenants/staging.yaml", text, max_bytes=2**30, fast=True)
    assert rules(problems) == [(5, 9, "yaml-anchor")]
    # an ampersand inside a name is text, not an anchor
    doc, problems = parse_yaml("t.yaml", b"- id: a\n  name: Smith & Sons\n  slug: a\n  plan: free\n",
                               max_bytes=2**30, fast=True)
    assert problems == [] and doc is not None and doc.data[0]["name"] == "Smith & Sons"


def test_size_limit_is_one_mebibyte() -> None:
    filler = b"# " + b"x" * 100 + b"\n"
    body = b"key: big\ndescription: d\nstate: off\n"
    under = body + filler * ((MAX_FLAG_BYTES - len(body) - 1) // len(filler))
    assert len(under) < MAX_FLAG_BYTES
    doc, problems = parse_yaml("f.yaml", under)
    assert problems == [] and doc is not None
    at_limit = body + b"#" * (MAX_FLAG_BYTES - len(body) - 1) + b"\n"
    assert len(at_limit) == MAX_FLAG_BYTES
    doc, problems = parse_yaml("f.yaml", at_limit)
    assert doc is None and rules(problems) == [(1, 1, "file-too-large")]


def test_not_utf8_names_the_line_and_column() -> None:
    doc, problems = parse_yaml("f.yaml", b"key: k\ndescription: caf\xe9\n")
    assert doc is None and rules(problems) == [(2, 17, "encoding")]
    assert "0xe9" in problems[0].message


def test_bom_and_crlf_are_fine() -> None:
    doc, problems = parse_yaml("f.yaml", b"\xef\xbb\xbfkey: k\r\nstate: on\r\n")
    assert problems == [] and doc is not None
    assert doc.data == {"key": "k", "state": "on"}
    assert doc.locate(("state",)) == (2, 8)


@pytest.mark.parametrize("text,expected", [
    (b"", (1, 1, "empty-file")),
    (b"\n\n# only a comment\n", (1, 1, "empty-file")),
    (b"key: [a\n", (2, 1, "yaml-syntax")),
    (b"a: 1\n  b: 2\n", (2, 4, "yaml-syntax")),
    (b"a: 1\n---\nb: 2\n", (2, 1, "yaml-syntax")),
])
def test_whole_file_problems_name_where_the_parser_stopped(text: bytes, expected: tuple) -> None:
    doc, problems = parse_yaml("f.yaml", text)
    assert doc is None and rules(problems) == [expected]


@pytest.mark.parametrize("fast", [False, True])
def test_control_characters_are_located(fast: bool) -> None:
    doc, problems = parse_yaml("f.yaml", "key: ääää\nstate: o\x07ff\n".encode(), max_bytes=2**30, fast=fast)
    assert doc is None and rules(problems) == [(2, 9, "yaml-syntax")]
    assert "U+0007" in problems[0].message


def test_unsupported_tags_are_problems() -> None:
    doc, problems = parse_yaml("f.yaml", b"a: !!binary aGVsbG8=\nb: !custom x\n")
    assert rules(problems) == [(1, 4, "yaml-tag"), (2, 4, "yaml-tag")]


# --------------------------------------------------------------------------- JSON inventories


def test_json_fast_path_with_lazy_positions() -> None:
    raw = json.dumps([{"id": "a", "slug": "a", "plan": "free"},
                      {"id": "b", "slug": "b", "plan": "free"}], indent=2).encode()
    doc, problems = parse_json("tenants/staging.json", raw)
    assert problems == [] and doc is not None and doc.positions is None
    assert doc.locate((1, "slug")) == (9, 13)


@pytest.mark.parametrize("text,expected", [
    (b"", (1, 1, "empty-file")),
    (b"[\n  {\"id\": \"a\",}\n]", (2, 14, "json-syntax")),
    (b"[{\"id\": \"a\",\n  \"id\": \"b\"}]", (2, 3, "duplicate-key")),
    (b"[\xff]", (1, 2, "encoding")),
])
def test_json_problems(text: bytes, expected: tuple) -> None:
    _, problems = parse_json("t.json", text)
    assert rules(problems) == [expected]


# --------------------------------------------------------------------------- projects


def test_load_project_reports_strays_and_keeps_going(tmp_path: Path) -> None:
    (tmp_path / "flags" / "nested").mkdir(parents=True)
    (tmp_path / "flags" / "ok_flag.yaml").write_text("key: ok_flag\ndescription: d\nstate: off\n")
    (tmp_path / "flags" / "old.yml").write_text("key: old\n")
    (tmp_path / "flags" / "notes.md").write_text("# notes\n")
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "staging.json").write_text("[]")
    (tmp_path / "tenants" / "staging.yaml").write_text("[]")
    (tmp_path / "tenants" / "README").write_text("x")
    project = load_project(FsSource(tmp_path), ENVS)
    assert sorted((p.path, p.rule) for p in project.problems) == [
        ("flags/nested", "stray-file"), ("flags/notes.md", "stray-file"), ("flags/old.yml", "stray-file"),
        ("tenants/README", "stray-file"), ("tenants/staging.yaml", "duplicate-inventory")]
    assert "rename it to old.yaml" in next(p.message for p in project.problems if p.path == "flags/old.yml")
    assert list(project.flags) == ["ok_flag"]
    assert list(project.inventories) == ["staging"]


def test_missing_flags_directory(tmp_path: Path) -> None:
    project = load_project(FsSource(tmp_path), ENVS)
    assert rules(project.problems) == [(1, 1, "missing-directory")]


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    project = load_project(FsSource(tmp_path), ENVS)
    assert rules(project.problems) == [(1, 1, "unreadable")]


def test_read_tenants_source_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "inv.json").write_text("[]")
    assert read_tenants_source("inv.json", cwd=tmp_path) == ("inv.json", b"[]")
    with pytest.raises(SourceError, match="cannot read tenants from missing.json"):
        read_tenants_source("missing.json", cwd=tmp_path)


def test_override_replaces_the_inventory_and_its_problems(tmp_path: Path) -> None:
    (tmp_path / "flags").mkdir()
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "production.yaml").write_text("- id: [broken\n")
    project = load_project(FsSource(tmp_path), ENVS)
    assert [p.path for p in project.problems] == ["tenants/production.yaml"]
    load_override(project, "production", "export.json", b'[{"id":"x","slug":"x","plan":"free"}]')
    assert project.problems == []
    inventory = project.inventories["production"]
    assert inventory.override and inventory.tenants == [{"id": "x", "slug": "x", "plan": "free"}]
    load_override(project, "staging", "export.yaml", b"- id: y\n  slug: y\n  plan: free\n")
    assert project.inventories["staging"].tenants[0]["slug"] == "y"


# --------------------------------------------------------------------------- the fast inventory reader


def _full(text: str) -> object:
    doc, problems = parse_yaml("t.yaml", text.encode(), max_bytes=2**30, fast=False)
    return (doc.data if doc else None, [(p.line, p.col, p.rule) for p in problems])


def _fast(text: str) -> object:
    doc, problems = parse_yaml("t.yaml", text.encode(), max_bytes=2**30, fast=True)
    return (doc.data if doc else None, [(p.line, p.col, p.rule) for p in problems])


NAMES = ["ACME Europe", "Smith & Sons", "O'Brien Ltd", "Kanzlei München", "a[b]{c}", "x,y", "日本 テナント",
         "trailing  spaces kept  inside", "100% Bio", "-dash", "#hash", "a: b", "yes", "no", "on", "12",
         "0x1f", "1e3", "null", "~", "", "with \"dq\"", "with 'sq'", "back\\slash", "C++ & C#",
         "http://x.example", "2027-03-31", "!bang", "&amp", "*star", "?q", "@at", "|pipe", ">gt", "`tick"]


def _render(value: str, rng: "random.Random") -> str:
    style = rng.choice(["plain", "dq", "sq"])
    if style == "dq":
        return json.dumps(value, ensure_ascii=rng.random() < 0.5)
    if style == "sq":
        return "'" + value.replace("'", "''") + "'"
    return value


@pytest.mark.parametrize("seed", range(30))
def test_fast_inventory_reader_equals_the_full_parser(seed: int) -> None:
    import random

    rng = random.Random(seed)
    lines = ["# exported inventory", ""] if rng.random() < 0.5 else []
    for i in range(rng.randint(1, 25)):
        fields = [("id", rng.choice([f"t_{i}", str(i), f"ü-{i}", "true", "0o7"])), ("slug", f"s-{i}"),
                  ("plan", "free")]
        if rng.random() < 0.5:
            fields.append(("name", rng.choice(NAMES)))
        if rng.random() < 0.3:
            fields.append(("partnerSlug", "p"))
        if rng.random() < 0.05:
            fields.append(("slug", "again"))  # a duplicate key
        rng.shuffle(fields)
        for j, (key, value) in enumerate(fields):
            comment = "  # note" if rng.random() < 0.1 else ""
            lines.append(f"{'- ' if j == 0 else '  '}{key}: {_render(value, rng)}{comment}")
        if rng.random() < 0.1:
            lines.append("  # between fields")
    text = "\n".join(lines) + rng.choice(["\n", "", "\n\n"])
    if rng.random() < 0.2:
        text = text.replace("\n", "\r\n")
    assert _fast(text) == _full(text)


@pytest.mark.parametrize("text", [
    "- id: a\n  slug: b\n  plan: free\n",
    "- id: a\n  slug: b\n  plan: free\n  name: x\u2028y\n",
    "- id: a\n  name: \"x\u0085y\"\n",
    "- id: a\n  name: \"bell\x07\"\n",
    "- id: a\n  slug: b\n   plan: free\n",
    "- id: a\n\tslug: b\n",
    "- id: a\n  slug:\n",
    "- id: &x a\n  slug: *x\n",
    "- {id: a, slug: b, plan: free}\n",
    "[]\n",
    "- id: a\r  slug: b\n",
    "---\n- id: a\n",
    "- id: a\n  nested:\n    x: 1\n",
    "- id: 'it''s'\n",
    "- id: \"esc\\tape\"\n",
    "- id: a # c\n  slug: b#c\n",
    "- id: a\n- id: b\n  id: c\n",
])
def test_fast_inventory_reader_edge_cases(text: str) -> None:
    assert _fast(text) == _full(text)


def test_generated_inventories_take_the_fast_reader() -> None:
    """The exported shape (what scripts/sample_tenants.py writes) is read by the fast path."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "sample_tenants.py"
    spec = importlib.util.spec_from_file_location("sample_tenants", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from flagops.fastpath import fast_inventory as _fast_inventory

    for env in module.COUNTS:
        text = module.inventory(env)
        data = _fast_inventory(text)
        assert data is not None, env
        assert data == _full(text)[0]
