"""The error tree every layer raises, and the CLI turns into exit codes.

Only ``syncer.cli.app`` decides how an error reaches the user: a ``SyncerError`` is
printed as one line (its message, then its hint), a ``ConfigError`` exits 2,
anything else exits 1. Messages name the object (account, folder, key path)
and say what to do next; they never contain a secret.
"""

from __future__ import annotations

from typing import ClassVar


class SyncerError(Exception):
    """Base of every error syncer raises on purpose.

    :param message: what happened, to which object.
    :param hint: what the user should do next (optional).
    """

    exit_code: ClassVar[int] = 1
    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ConfigError(SyncerError):
    """The configuration (file, key, value or secret source) is wrong: exit 2.

    ``problems`` holds every problem found, so one run of ``syncer config check``
    reports them all rather than one per attempt.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems), hint=hint)


class UsageError(SyncerError):
    """A command was called with arguments that cannot work: exit 2."""

    exit_code: ClassVar[int] = 2


class SourceError(SyncerError):
    """A mail server (IMAP, POP3) did not give us what we asked for."""

    def __init__(
        self,
        message: str,
        *,
        account: str | None = None,
        folder: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.account = account
        self.folder = folder


class SourceAuthError(SourceError):
    """The server refused our credentials; retrying will not help."""


class SourceUnavailable(SourceError):
    """Network trouble, timeouts, dropped connections, 'try again later'."""

    transient: ClassVar[bool] = True


class SourceThrottled(SourceUnavailable):
    """A provider limit: Gmail's ``[THROTTLED]``/``[OVERQUOTA]``, RFC 5530 ``[UNAVAILABLE]``,
    Microsoft 365's "Request is throttled"; or a daily byte budget spent.

    Transient, but not for the seconds-long retries of a dropped connection: the
    run stops after its last committed batch and the next one starts no earlier
    than ``retry_after`` seconds later (recorded as the run's ``resume_at``).

    :ivar limit: which limit (``THROTTLED``, ``OVERQUOTA``, ``UNAVAILABLE``, ``microsoft``).
    :ivar retry_after: seconds to wait, from the server's hint or a provider default.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        retry_after: float,
        account: str | None = None,
        folder: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, account=account, folder=folder, hint=hint)
        self.limit = limit
        self.retry_after = retry_after


class ProtocolViolation(SourceError):
    """The server answered something the protocol does not allow."""


class UIDValidityChanged(SourceError):
    """A folder's UIDVALIDITY changed under us in the middle of a sync."""


class ArchiveError(SyncerError):
    """The archive (database or blob store) failed or holds something wrong."""


class MigrationRequired(ArchiveError):
    """The database schema is older than this version of syncer."""


class LeaseHeld(ArchiveError):
    """Another process holds the lease on an account."""


class BlobCorrupt(ArchiveError):
    """A stored blob no longer hashes to its address."""


class RelayError(SyncerError):
    """Sending through SMTP failed."""


class RelayRejected(RelayError):
    """The SMTP server refused for good (5xx)."""


class RelayUnavailable(RelayError):
    """The SMTP server is unreachable or answered 4xx; try again later."""

    transient: ClassVar[bool] = True


#: What a stopped run records and logs.
STOPPED = "stopped on request after the last committed batch; the next run resumes there"


class Stopped(Exception):
    """A job stopped on request (the daemon is shutting down) right after a committed batch.

    Deliberately not a ``SyncerError``: no per-folder or per-message handler catches it
    on the way up; the job records that it stopped, and the next run resumes after the
    last committed batch. Raised by :meth:`syncer.archive.leases.Lease.heartbeat`.
    """

    def __init__(self, message: str = STOPPED) -> None:
        super().__init__(message)
