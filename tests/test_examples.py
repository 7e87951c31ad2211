"""Example files: every positive one validates cleanly, every negative one fails exactly where it says.

A negative example starts with ``# expect: LINE:COL RULE [warning]`` (one line per expected
problem); an inventory example may add ``# as: NAME`` to be stored under another file name.
Each example is validated alone in a fresh repository, with
``tests/examples/tenants/positive/development.yaml`` as the inventory flags are checked against.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from flagops.loading import FsSource, load_flags
from flagops.loading import Project as LoadedProject
from flagops.validation import load_and_validate

EXAMPLES = Path(__file__).resolve().parent / "examples"
TODAY = dt.date(2026, 6, 1)
EXPECT = re.compile(rb"^# expect: (\d+):(\d+) ([a-z-]+)(?: (warning))?$", re.MULTILINE)
AS = re.compile(rb"^# as: (\S+)", re.MULTILINE)


def _examples(kind: str, polarity: str) -> list[Path]:
    return sorted(p for p in (EXAMPLES / kind / polarity).iterdir() if p.is_file())


def _expectations(path: Path) -> set[tuple[int, int, str, str]]:
    raw = path.read_bytes()
    found = {(int(m[1]), int(m[2]), m[3].decode(), (m[4] or b"error").decode()) for m in EXPECT.finditer(raw)}
    assert found, f"{path.name} has no '# expect: LINE:COL RULE' line"
    return found


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "flags").mkdir(parents=True)
    (root / "tenants").mkdir()
    return root


def _problems(root: Path) -> set[tuple[str, int, int, str, str]]:
    result = load_and_validate(root, today=TODAY)[2]
    return {(p.path, p.line, p.col, p.rule, p.severity) for p in result.problems}


@pytest.mark.parametrize("example", _examples("flags", "negative"), ids=lambda p: p.name)
def test_negative_flag_example(example: Path, tmp_path: Path) -> None:
    root = _repo(tmp_path)
    shutil.copy(EXAMPLES / "tenants" / "positive" / "development.yaml", root / "tenants" / "development.yaml")
    shutil.copy(example, root / "flags" / example.name)
    rel = f"flags/{example.name}"
    assert _problems(root) == {(rel, *e) for e in _expectations(example)}


@pytest.mark.parametrize("example", _examples("flags", "positive"), ids=lambda p: p.name)
def test_positive_flag_example(example: Path, tmp_path: Path) -> None:
    root = _repo(tmp_path)
    shutil.copy(EXAMPLES / "tenants" / "positive" / "development.yaml", root / "tenants" / "development.yaml")
    shutil.copy(example, root / "flags" / example.name)
    assert _problems(root) == set()


@pytest.mark.parametrize("example", _examples("tenants", "negative"), ids=lambda p: p.name)
def test_negative_inventory_example(example: Path, tmp_path: Path) -> None:
    root = _repo(tmp_path)
    named = AS.search(example.read_bytes())
    name = named[1].decode() if named else f"development{example.suffix}"
    shutil.copy(example, root / "tenants" / name)
    assert _problems(root) == {(f"tenants/{name}", *e) for e in _expectations(example)}


@pytest.mark.parametrize("example", _examples("tenants", "positive"), ids=lambda p: p.name)
def test_positive_inventory_example(example: Path, tmp_path: Path) -> None:
    root = _repo(tmp_path)
    shutil.copy(example, root / "tenants" / f"staging{example.suffix}")
    assert _problems(root) == set()


def test_every_flag_rule_has_an_example() -> None:
    rules = {e[2] for p in _examples("flags", "negative") for e in _expectations(p)}
    assert rules >= {"schema", "duplicate-key", "yaml-anchor", "yaml-alias", "encoding", "empty-file",
                     "not-a-mapping", "yaml-syntax", "key-filename", "unknown-tenant", "unknown-partner",
                     "stray-file", "targeted-empty-scope", "ignored-scope", "ignored-pct", "expired",
                     "too-deep", "number-too-large", "unencodable-string"}
    inventory_rules = {e[2] for p in _examples("tenants", "negative") for e in _expectations(p)}
    assert inventory_rules >= {"schema", "duplicate-tenant-id", "duplicate-tenant-slug", "duplicate-key",
                               "unknown-environment", "yaml-syntax", "empty-file", "too-deep",
                               "number-too-large", "unencodable-string", "not-nfc"}


def test_all_negative_flag_examples_in_one_directory(tmp_path: Path) -> None:
    """Together in one flags/ directory every example reports exactly its own problems."""
    root = _repo(tmp_path)
    shutil.copy(EXAMPLES / "tenants" / "positive" / "development.yaml", root / "tenants" / "development.yaml")
    expected = set()
    for example in _examples("flags", "negative") + _examples("flags", "positive"):
        shutil.copy(example, root / "flags" / example.name)
        if example.parent.name == "negative":
            expected |= {(f"flags/{example.name}", *e) for e in _expectations(example)}
    assert _problems(root) == expected


def test_unquoted_on_and_off_are_strings(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    for example in _examples("flags", "positive"):
        shutil.copy(example, root / "flags" / example.name)
    project = LoadedProject(FsSource(root))
    load_flags(FsSource(root), project)
    flags = project.flag_data()
    assert flags["state_on_unquoted"]["state"] == "on"
    assert flags["minimal"]["state"] == "off"
    assert flags["full"]["expires"] == "2099-03-31"  # dates stay strings
    assert flags["block_scalar"]["description"] == "A folded description over two lines"
