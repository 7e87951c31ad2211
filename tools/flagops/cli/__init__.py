"""The flagops command line: thin commands over the library, one error boundary, exit codes.

:mod:`.app` holds the click group, :mod:`.registry` the table of commands, and each command
is a module of :mod:`.commands`, imported only when that command runs. :func:`main` is the one
place where outcomes become exit codes: 0 ok, 1 invalid input or a refused operation, 2 usage,
3 unexpected.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import click

from ..errors import EXIT_INVALID, EXIT_UNEXPECTED, EXIT_USAGE, FlagopsError, InvalidInputError
from .app import cli


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
            from ..problems import Result
            from .app import report_problems

            report_problems(Result(list(exc.problems)), "text", stream_summary=False, err_stream=True)
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
            import traceback

            traceback.print_exc()
        click.echo(f"unexpected error: {type(exc).__name__}: {exc}\n"
                   "set FLAGOPS_DEBUG=1 for the traceback and report it", err=True)
        code = EXIT_UNEXPECTED
    return code


def run() -> None:
    code = main()
    # The process ends now: no collection at exit needs to walk what a compile loaded.
    import gc

    gc.freeze()
    sys.exit(code)


__all__ = ["cli", "main", "run", "EXIT_INVALID"]
