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


class RiskyChangeError(FlagopsError):
    """A risky edit (see ``flagops plan``'s risk checks) was not confirmed; nothing was written."""


# --- object storage and publishing -----------------------------------------------------------


class StorageError(FlagopsError):
    """The object store failed (after retries) or refused an operation."""


class PreconditionFailed(StorageError):
    """A conditional write lost: the object changed since its ETag was read."""


class ConditionalWritesUnsupported(StorageError):
    """The store rejects conditional requests (If-Match / If-None-Match on PUT)."""


class TransientError(StorageError):
    """A failure worth retrying: throttling, a 5xx, a dropped connection."""


class PublishError(FlagopsError):
    """A publish was refused or could not complete; the message says what the store holds."""


class RaceLostError(PublishError):
    """Another publish moved the manifest (or the head) first."""


class PublishInProgress(PublishError):
    """Another, live publish of the same environment holds the lock."""


class LockLost(PublishError):
    """This run no longer holds the publish lock (taken over, or not renewed in time): it stopped."""


class PublishIncomplete(PublishError):
    """Uploads failed or the run was interrupted part-way; the next publish completes the work."""


class RollbackRefused(PublishError):
    """Publishing this revision would roll the published one back (or cannot be checked)."""


class CompiledOutputInvalid(InvalidInputError):
    """A compiled output directory (``publish --from``) fails its schemas or its digests."""
