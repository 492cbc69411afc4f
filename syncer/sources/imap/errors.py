"""How the IMAP adapter words its failures: :class:`IMAPWording` for the shared table.

Which library exception is which kind of failure is decided once for every
protocol in :mod:`syncer.protocols.errors`; this module only says, per kind,
which ``SourceError`` subclass the IMAP adapter raises and with what message --
``SourceAuthError`` (do not retry), ``SourceUnavailable`` (transient: retry),
``ProtocolViolation`` and ``SourceError`` -- naming the account, the server and
the folder and saying what to do next.

Public API (private to ``syncer.sources``): :class:`ErrorContext`, :func:`map_errors`.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
from dataclasses import dataclass

from syncer.errors import (
    ProtocolViolation,
    SourceAuthError,
    SourceError,
    SourceThrottled,
    SourceUnavailable,
)
from syncer.protocols.errors import map_exceptions
from syncer.sources.imap.connection import CommandFailed
from syncer.sources.wording import ErrorContext, SourceWording

#: NO answers that mean "later", not "never" (RFC 5530 codes, Dovecot's wording).
TRANSIENT = re.compile(r"\[(?:UNAVAILABLE|INUSE)\]|try again|temporar", re.IGNORECASE)


#: Provider limits in IMAP answers: (pattern, limit, default wait in seconds, meaning).
#: Gmail: https://support.google.com/a/answer/1071518 (about 2.5 GB of IMAP downloads a
#: day, answered with [THROTTLED] or [OVERQUOTA] "Account exceeded command or bandwidth
#: limits"). Microsoft 365 answers NO/BAD "Request is throttled. Suggested Backoff Time:
#: N milliseconds" (and "Server Unavailable" under load).
PROVIDER_LIMITS: tuple[tuple[re.Pattern[str], str, float, str], ...] = (
    (
        re.compile(r"\[THROTTLED\]", re.IGNORECASE),
        "THROTTLED",
        10 * 60.0,
        "the provider throttles this account (Gmail: too many commands or bytes)",
    ),
    (
        re.compile(r"\[OVERQUOTA\]|exceeded command or bandwidth", re.IGNORECASE),
        "OVERQUOTA",
        60 * 60.0,
        "the account's bandwidth allowance is spent (Gmail: about 2.5 GB of IMAP a day)",
    ),
    (
        re.compile(r"request is throttled|suggested backoff time", re.IGNORECASE),
        "microsoft",
        5 * 60.0,
        "Microsoft 365 throttles this mailbox (too many requests or connections)",
    ),
    (
        re.compile(r"\[UNAVAILABLE\]|server unavailable", re.IGNORECASE),
        "UNAVAILABLE",
        5 * 60.0,
        "the server is temporarily unavailable (RFC 5530)",
    ),
)

_BACKOFF_MS = re.compile(r"backoff time:\s*(\d+)\s*milliseconds", re.IGNORECASE)


def provider_limit(answer: str) -> tuple[str, float, str] | None:
    """``(limit, seconds to wait, meaning)`` when ``answer`` is a provider limit, else None.

    Microsoft's suggested backoff is honoured (rounded up to a whole minute).
    """
    for pattern, limit, wait, meaning in PROVIDER_LIMITS:
        if pattern.search(answer):
            hinted = _BACKOFF_MS.search(answer)
            if hinted:
                wait = max(60.0, -(-int(hinted.group(1)) // 60_000) * 60.0)
            return limit, wait, meaning
    return None


def map_errors(
    ctx: ErrorContext, folder: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Translate every library exception raised inside into the most specific
    ``SourceError`` subclass (:func:`syncer.protocols.errors.map_exceptions`)."""
    return map_exceptions(IMAPWording(ctx, folder), ctx.drop)


@dataclass(frozen=True, slots=True)
class IMAPWording(SourceWording):
    """The IMAP adapter's :class:`~syncer.protocols.errors.Wording`: what IMAP answers
    say, and in which folder (the rest: :class:`~syncer.sources.wording.SourceWording`)."""

    protocol = "IMAP"
    folder: str | None

    @property
    def _folder(self) -> str | None:
        return self.folder

    @property
    def _suffix(self) -> str:
        return f" in folder {self.folder!r}" if self.folder is not None else ""

    def not_offered(self, exc: BaseException) -> SourceError:  # STARTTLS
        ctx = self.ctx
        return SourceError(
            f"Account {ctx.label!r}: {ctx.host}:{ctx.port} does not offer STARTTLS.",
            account=ctx.account,
            hint='Use security = "tls" (port 993), or check the port.',
        )

    def login(self, exc: BaseException) -> SourceError:
        ctx = self.ctx
        if TRANSIENT.search(str(exc)):
            return SourceUnavailable(
                f"Account {ctx.label!r}: IMAP login at {self._server} failed for now: {exc}.",
                account=ctx.account,
                hint="syncer will try again later.",
            )
        return SourceAuthError(
            f"Account {ctx.label!r}: IMAP login refused by {self._server}.",
            account=ctx.account,
            hint=f"Check the account's password source. The server said: {exc}",
        )

    def refused(self, exc: BaseException) -> SourceError:
        ctx, folder = self.ctx, self.folder
        if not isinstance(exc, CommandFailed):  # NO/BAD via imaplib, CapabilityError, ...
            message = (
                f"Account {ctx.label!r}: IMAP server {self._server} refused a command"
                f"{self._suffix}: {exc}."
            )
            limited = provider_limit(str(exc))
            if limited is not None:
                return SourceThrottled(
                    message,
                    limit=limited[0],
                    retry_after=limited[1],
                    account=ctx.account,
                    folder=folder,
                )
            if TRANSIENT.search(str(exc)):
                return SourceUnavailable(message, account=ctx.account, folder=folder)
            return SourceError(message, account=ctx.account, folder=folder)
        completion = exc.completion
        code = f"[{completion.code}] " if completion.code else ""
        answer = f"{completion.status} {code}{completion.text}".strip()
        message = (
            f"Account {ctx.label!r}: IMAP server {self._server} answered {exc.command}"
            f"{self._suffix} with {answer!r}."
        )
        limited = provider_limit(answer)
        if limited is not None:
            limit, wait, meaning = limited
            return SourceThrottled(
                message,
                limit=limit,
                retry_after=wait,
                account=ctx.account,
                folder=folder,
                hint=f"That means {meaning}; syncer resumes in {round(wait / 60)} min.",
            )
        if completion.code in ("UNAVAILABLE", "INUSE") or TRANSIENT.search(answer):
            return SourceUnavailable(
                message, account=ctx.account, folder=folder, hint="syncer will try again later."
            )
        hint = None
        if completion.code == "NONEXISTENT" or "exist" in completion.text.lower():
            hint = "The folder may have been renamed or deleted; list the folders again."
        return SourceError(message, account=ctx.account, folder=folder, hint=hint)

    def malformed(self, exc: BaseException) -> SourceError:
        return ProtocolViolation(
            f"Account {self.ctx.label!r}: IMAP server {self._server} sent a malformed "
            f"answer{self._suffix}: {exc}",
            account=self.ctx.account,
            folder=self.folder,
        )

    def out_of_step(self, exc: BaseException) -> SourceError:
        return self.malformed(exc)

    def closed(self, exc: BaseException) -> SourceError:
        if isinstance(exc, imaplib.IMAP4.abort):  # includes readonly and IMAPClientAbortError
            what = f"the IMAP session with {self._server} broke off"
        else:
            what = f"the connection to {self._server} was lost"
        return SourceUnavailable(
            f"Account {self.ctx.label!r}: {what}{self._suffix}: {exc}.",
            account=self.ctx.account,
            folder=self.folder,
        )
