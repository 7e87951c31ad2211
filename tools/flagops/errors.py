"""Every exception flagops raises, one class per condition, and the documented exit codes.

Problems in the input are data (:class:`~flagops.problems.Problem`); these exceptions are for
fatal conditions only. The CLI's one error boundary (:func:`flagops.cli.main`) prints them
without a traceback and exits with their ``exit_code``: 1 invalid input or a refused
operation, 2 a usage error; anything else is unexpected (3).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from .suggest import did_you_mean

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


class UnknownFlagError(FlagopsError):
    """No flag has this key; the message offers the closest key."""

    def __init__(self, key: str, known: Iterable[str] = (), *, where: str = "flags/",
                 message: Optional[str] = None, hint: Optional[str] = None):
        super().__init__(message or f'no flag "{key}" in {where}{did_you_mean(key, known)}', hint=hint)
        self.key = key


class UnknownEnvironmentError(UsageError):
    """An environment the schema does not know (exit 2); the message offers the closest one."""

    def __init__(self, environment: str, known: Sequence[str], *, hint: Optional[str] = None):
        super().__init__(f'unknown environment "{environment}"{did_you_mean(environment, known)}; '
                         f'known: {", ".join(known)}', hint=hint)
        self.environment = environment


def require_environment(environment: str, known: Sequence[str]) -> None:
    """Refuse an environment that is not one of ``known`` (the schema's), with a did-you-mean."""
    if environment not in known:
        raise UnknownEnvironmentError(environment, known)


class UnknownTenantError(FlagopsError):
    """A tenant slug that is not in the inventory; the message offers the closest slug."""

    def __init__(self, slug: str, environment: str, known: Iterable[str]):
        super().__init__(f'tenant "{slug}" is not in the {environment} inventory{did_you_mean(slug, known)}')
        self.slug = slug


# --- git -------------------------------------------------------------------------------------


class RevisionError(UsageError):
    """A git revision named on the command line cannot be resolved to a commit (exit 2)."""


class NotAGitRepositoryError(FlagopsError):
    """The operation needs git, and the root is not inside a git repository (with a work tree)."""


class GitUserError(FlagopsError):
    """A commit is asked for, but git has no user configured to author it."""


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
