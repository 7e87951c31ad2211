"""Shared fixtures: the repository itself, throw-away repositories, and an in-process CLI runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from flagops.cli import main

from testkit import GitRepo, RepoBuilder

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


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    """An empty repository with flags/ and tenants/ (schemas come from the built-in copies)."""
    return RepoBuilder(tmp_path / "repo")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A repository under git with a configured user and no commits yet."""
    return GitRepo(tmp_path / "git")
