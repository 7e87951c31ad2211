"""The top-level click group and what every command module shares: the Env, output helpers, options.

Command modules (``flagops/cli/commands/``) import from here; this module imports only click
and the standard library, so ``flagops --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import click

from .registry import LazyGroup

if TYPE_CHECKING:
    from ..problems import Result


@dataclass
class Env:
    """What every command needs: the repository root and the caller's directory."""

    root: Path
    cwd: Path

    def path(self, value: str | Path) -> Path:
        """A path from the command line: relative to the current directory, as usual."""
        p = Path(value)
        return p if p.is_absolute() else self.cwd / p


pass_env = click.make_pass_decorator(Env)

HELP = """Feature flags as code.

Flags live in flags/<key>.yaml, tenant inventories in tenants/<environment>.yaml. flagops
validates them, compiles one bundle per tenant and environment, shows what a change turns
on and off, and publishes the bundles to object storage.

\b
Typical use:
  flagops validate                 check every flag and inventory
  flagops compile                  render dist/<env>/tenants/<slug>.json
  flagops eval acme --env production
  flagops list

\b
Exit codes: 0 ok, 1 invalid input or refused operation, 2 usage error, 3 unexpected error.
"""


@click.group(cls=LazyGroup, help=HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".",
              show_default=True,
              help="Repository root holding flags/, tenants/ and schema/.")
@click.version_option(package_name="flagops", prog_name="flagops")
@click.pass_context
def cli(ctx: click.Context, root: Path) -> None:
    cwd = Path.cwd()
    ctx.obj = Env(root=(root if root.is_absolute() else cwd / root).resolve(), cwd=cwd)


def err(message: str) -> None:
    """Warnings, progress and summaries go to stderr; stdout carries only the requested output."""
    click.echo(message, err=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))


def report(subject: str, fmt: str, value: Any, **options: Any) -> None:
    """The requested output on stdout, through the named reporter (:mod:`flagops.reporters`)."""
    from .. import reporters

    out = reporters.render(subject, fmt, value, **options)
    if out:
        click.echo(out, nl=False)


def report_problems(result: Result, fmt: str, *, stream_summary: bool = True, err_stream: bool = False,
                    **options: Any) -> None:
    """Problems in the chosen format (stdout, or stderr with ``err_stream``); the summary on stderr."""
    from ..reporters.validation import REPORTERS, summary

    out = REPORTERS.render(fmt, result, **options)
    if out:
        click.echo(out, nl=False, err=err_stream)
    if stream_summary and fmt != "json":
        err(summary(result))


def terminal_progress(label: str) -> Optional[Callable[[int, int, str], None]]:
    """A progress line on stderr when it is a terminal, else None (no noise in CI logs)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, what: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r{label} {what}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True, help="Output format.")

TENANTS_HELP = ("Replace the inventory of the --env environment with this YAML/JSON file or http(s) URL "
                "(bearer token from FLAGOPS_TENANTS_TOKEN).")


def only_inventory(root: Path) -> Optional[str]:
    """The environment of the repository's one inventory, if it has exactly one.

    ``--tenants`` replaces one environment's inventory; when the repository holds only one,
    that is the environment meant, and ``--env`` may be left out.
    """
    from ..loading import INVENTORY_SUFFIXES, TENANTS_DIR

    directory = root / TENANTS_DIR
    if not directory.is_dir():
        return None
    stems = {p.stem for p in directory.iterdir() if p.is_file() and p.suffix in INVENTORY_SUFFIXES}
    return next(iter(stems)) if len(stems) == 1 else None
