"""Shared fixtures: the repository itself, throw-away repositories, and an in-process CLI runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import pytest

from testkit import Completed, GitRepo, RepoBuilder, invoke

ROOT = Path(__file__).resolve().parent.parent

# The real local S3 server: s3_server, s3_client, s3_bucket, s3_env (see tests/s3fixtures.py).
pytest_plugins = ["s3fixtures"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A worker's temporary directories under ``<basetemp>/gwN``, not ``popen-gwN``: the private S3
    servers' unix sockets live in them, and a socket path must stay under 108 bytes."""
    base, worker = config.option.basetemp, os.environ.get("PYTEST_XDIST_WORKER")
    if base and worker and Path(base).name == f"popen-{worker}":
        config.option.basetemp = str(Path(base).with_name(worker))


Run = Completed  # the in-process runner's result: code, out, err (and returncode, stdout, stderr)


@pytest.fixture
def flagops(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Completed]:
    """Run the CLI in-process (click's CliRunner, the real error boundary):
    ``flagops("validate", root=path)`` -> Completed(code, out, err). ``cwd`` stays for the test."""

    def run(*args: str, root: Optional[Path] = None, cwd: Optional[Path] = None,
            env: Optional[dict[str, Optional[str]]] = None, input: Optional[str] = None) -> Completed:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        argv = (["--root", str(root)] if root is not None else []) + list(args)
        return invoke(*argv, env=env, input=input)

    return run


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    """An empty repository with flags/ and tenants/ (schemas come from the built-in copies)."""
    return RepoBuilder(tmp_path / "repo")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A repository under git with a configured user and no commits yet."""
    return GitRepo(tmp_path / "git")
