"""The flagops command line: thin commands over the library, one error boundary, exit codes.

Every module of this package registers its commands on :data:`cli`; they are found here
without a central list.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import traceback
from typing import Optional, Sequence

import click

from ..errors import EXIT_INVALID, EXIT_UNEXPECTED, EXIT_USAGE, FlagopsError, InvalidInputError
from ..formatters import format_text
from ..problems import Result
from ._app import cli

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI and map every outcome to a documented exit code (never a traceback for bad input)."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="flagops", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE
    except InvalidInputError as exc:
        if exc.problems:
            click.echo(format_text(Result(list(exc.problems))), nl=False, err=True)
        click.echo(f"error: {exc}", err=True)
        code = exc.exit_code
    except FlagopsError as exc:
        click.echo(f"error: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # the last boundary: report, never hide
        if os.environ.get("FLAGOPS_DEBUG"):
            traceback.print_exc()
        click.echo(f"unexpected error: {type(exc).__name__}: {exc}\n"
                   "set FLAGOPS_DEBUG=1 for the traceback and report it", err=True)
        code = EXIT_UNEXPECTED
    return code


def run() -> None:
    sys.exit(main())


__all__ = ["cli", "main", "run", "EXIT_INVALID"]
