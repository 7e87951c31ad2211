"""Shared fixtures: the repository itself, throw-away repositories, and an in-process CLI runner."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from flagops.cli import main

ROOT = Path(__file__).resolve().parent.parent

# The real local S3 server: s3_server, s3_client, s3_bucket, s3_env (see tests/s3fixtures.py).
pytest_plugins = ["s3fixtures"]


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def flagops(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run the CLI in-process: ``flagops("validate", root=path)`` -> Run(code, out, err)."""

    def run(*args: str, root: Optional[Path] = None, cwd: Optional[Path] = None) -> Run:
        capsys.readouterr()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        argv = (["--root", str(root)] if root is not None else []) + list(args)
        code = main(argv)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


class RepoBuilder:
    """A minimal flagops repository in a temporary directory."""

    def __init__(self, root: Path):
        self.root = root
        (root / "flags").mkdir(parents=True, exist_ok=True)
        (root / "tenants").mkdir(parents=True, exist_ok=True)

    def flag(self, key: str, body: str, *, name: Optional[str] = None) -> Path:
        path = self.root / "flags" / (name or f"{key}.yaml")
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
        return path

    def tenants(self, env: str, body: str, *, ext: str = "yaml") -> Path:
        path = self.root / "tenants" / f"{env}.{ext}"
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
        return path


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    """An empty repository with flags/ and tenants/ (schemas come from the built-in copies)."""
    return RepoBuilder(tmp_path / "repo")
