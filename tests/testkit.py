"""The shared test kit: throw-away flagops repositories, real git repositories, the CLI runner.

``conftest.py`` turns them into fixtures (``repo``, ``git_repo``, ``flagops``); test modules
that need more than one repository import the classes directly.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Union

#: The author every commit has unless a test names another.
AUTHOR = ("Ops Tester", "ops@example.eu")

#: git reads no configuration of the machine it runs on: no signing, hooks or system settings.
GIT_ISOLATION = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


class RepoBuilder:
    """A minimal flagops repository in a directory (not necessarily under git)."""

    def __init__(self, root: Path):
        self.root = root
        (root / "flags").mkdir(parents=True, exist_ok=True)
        (root / "tenants").mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def flag(self, key: str, body: str, *, name: Optional[str] = None) -> Path:
        return self.write(f"flags/{name or f'{key}.yaml'}", body)

    def tenants(self, env: str, body: str, *, ext: str = "yaml") -> Path:
        return self.write(f"tenants/{env}.{ext}", body)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()


def git_env(author: tuple[str, str] = AUTHOR, date: Union[str, float, None] = None) -> dict[str, str]:
    """The environment of a git command committing as ``author`` at ``date``.

    ``date`` is an ISO-8601 string, a number of days ago, or None for now.
    """
    env = {**os.environ, **GIT_ISOLATION,
           "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
           "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1]}
    if isinstance(date, (int, float)):
        date = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=date)).replace(microsecond=0).isoformat()
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    return env


def run_git(cwd: Path, *args: str, author: tuple[str, str] = AUTHOR, date: Union[str, float, None] = None,
            check: bool = True) -> str:
    """``git ARGS`` in ``cwd`` as ``author``; its stdout."""
    done = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args],
                          cwd=cwd, env=git_env(author, date), check=check, capture_output=True, text=True)
    return done.stdout


def commit_files(top: Path, files: Mapping[str, str], message: str, *, author: tuple[str, str] = AUTHOR,
                 date: Union[str, float, None] = None) -> str:
    """Write ``files`` (paths relative to ``top``), commit everything as ``author`` at ``date``; the sha."""
    for rel, text in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    run_git(top, "add", "-A")
    run_git(top, "commit", "-q", "-m", message, author=author, date=date)
    return run_git(top, "rev-parse", "HEAD").strip()


class GitRepo(RepoBuilder):
    """A flagops repository under git (branch main), whose commits carry a chosen author and date.

    ``top`` is the work tree; the flagops root may sit in a sub-directory of it (``subdir``).
    """

    def __init__(self, top: Path, *, subdir: str = "", user: bool = True):
        top.mkdir(parents=True, exist_ok=True)
        self.top = top
        run_git(top, "init", "-q", "-b", "main")
        if user:  # a local user, for commands that commit as "the configured user"
            run_git(top, "config", "user.name", AUTHOR[0])
            run_git(top, "config", "user.email", AUTHOR[1])
        super().__init__(top / subdir if subdir else top)

    def git(self, *args: str, author: tuple[str, str] = AUTHOR, date: Union[str, float, None] = None,
            cwd: Optional[Path] = None) -> str:
        return run_git(cwd or self.top, *args, author=author, date=date)

    def commit(self, subject: str = "change", *, author: tuple[str, str] = AUTHOR,
               date: Union[str, float, None] = None) -> str:
        """Commit everything in the work tree; the new commit's sha."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", subject, author=author, date=date)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()


# --------------------------------------------------------------------------- running the CLI

#: The installed console script (the one the subprocess smoke tests run).
FLAGOPS = Path(sys.executable).with_name("flagops")


@dataclass
class Completed:
    """What one ``flagops`` run did, in the shape of ``subprocess.CompletedProcess``."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    in_process: bool = field(default=True, repr=False)

    @property
    def code(self) -> int:
        return self.returncode

    @property
    def out(self) -> str:
        return self.stdout

    @property
    def err(self) -> str:
        return self.stderr


def invoke(*args: str, cwd: Optional[Path] = None, env: Optional[Mapping[str, Optional[str]]] = None,
           input: Optional[str] = None) -> Completed:
    """Run ``flagops ARGS`` in this process, through the real error boundary (:func:`flagops.cli.main`).

    click's ``CliRunner`` isolates stdin, stdout, stderr and the environment (``env`` overrides
    it; None removes a variable); ``cwd`` is the working directory for the run. The exit code
    is what the console script would exit with.
    """
    from click.testing import CliRunner

    from flagops.cli import main

    runner = CliRunner()
    before = os.getcwd()
    with runner.isolation(input=input, env=env) as (out, err, _):
        if cwd is not None:
            os.chdir(cwd)
        try:
            code = main(list(args))
        finally:
            os.chdir(before)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return Completed(["flagops", *args], code, stdout, stderr)


def spawn(*args: str, cwd: Optional[Path] = None, env: Optional[Mapping[str, Optional[str]]] = None,
          timeout: float = 120) -> Completed:
    """Run the installed ``flagops`` console script as a subprocess (the smoke tests' way)."""
    merged = {**os.environ}
    merged.pop("FLAGOPS_DEBUG", None)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    done = subprocess.run([str(FLAGOPS), *args], cwd=cwd, env=merged, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)
    return Completed(["flagops", *args], done.returncode, done.stdout, done.stderr, in_process=False)


#: Debian's Chromium (scripts/install-browser.sh); Playwright never downloads a browser here.
CHROMIUM = os.environ.get("FLAGOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright; the test fails (never skips) when it is missing."""
    import pytest
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (Debian package chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """A full-page screenshot as test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
