"""The one exception base of flagops, and the documented exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 3


class FlagopsError(Exception):
    """A fatal condition the operator can act on; the CLI prints it without a traceback.

    ``exit_code`` is 1 (invalid input or a refused operation) unless a subclass says otherwise.
    ``hint`` tells the operator how to fix it.
    """

    exit_code: int = EXIT_INVALID

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(FlagopsError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = EXIT_USAGE


class InvalidInputError(FlagopsError):
    """Input failed validation; carries the problems so callers can report them."""

    def __init__(self, message: str, problems: list | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.problems = problems or []


class SourceError(FlagopsError):
    """A tenant inventory or other input could not be fetched or read."""
