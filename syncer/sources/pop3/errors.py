"""How the POP3 adapter words its failures: :class:`POP3Wording` for the shared table.

Which library exception is which kind of failure is decided once for every
protocol in :mod:`syncer.protocols.errors` (poplib signals everything -- a
server's ``-ERR`` line, a closed connection, an over-long line -- with one
class, ``poplib.error_proto``; the table tells them apart by its argument).
This module only says, per kind, which ``SourceError`` subclass the POP3
adapter raises and with what message, naming the account and the server and
saying what to do next.

Public API (private to ``syncer.sources``): :class:`ErrorContext`, :func:`map_errors`.
"""

from __future__ import annotations

import contextlib
import poplib
from dataclasses import dataclass

from syncer.errors import (
    ProtocolViolation,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
)
from syncer.protocols.errors import map_exceptions
from syncer.sources.pop3.wire import TRANSIENT, NotOffered, Truncated
from syncer.sources.wording import ErrorContext, SourceWording


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def map_errors(
    ctx: ErrorContext, command: str | None = None, *, login: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Translate every library exception raised inside into the most specific
    ``SourceError`` subclass (:func:`syncer.protocols.errors.map_exceptions`).

    :param command: what was being done (``"RETR 17"``), for the message.
    :param login: the authentication mechanism when the block logs in: a
        ``-ERR`` answer then means the credentials were refused.
    """
    return map_exceptions(POP3Wording(ctx, command, login), ctx.drop)


@dataclass(frozen=True, slots=True)
class POP3Wording(SourceWording):
    """The POP3 adapter's :class:`~syncer.protocols.errors.Wording`: what POP3 answers
    say, and during which command (the rest: :class:`~syncer.sources.wording.SourceWording`)."""

    protocol = "POP3"
    command: str | None
    login_mechanism: str | None

    @property
    def _suffix(self) -> str:
        return f" during {self.command}" if self.command else ""

    def not_offered(self, exc: BaseException) -> SourceError:
        what, hint = (exc.what, exc.hint) if isinstance(exc, NotOffered) else (str(exc), None)
        return SourceError(
            f"Account {self.ctx.label!r}: POP3 server {self._server} does not offer {what}.",
            account=self.ctx.account,
            hint=hint,
        )

    def login(self, exc: BaseException) -> SourceError:  # POP3 logins fail with -ERR
        return self.refused(exc)

    def refused(self, exc: BaseException) -> SourceError:
        ctx = self.ctx
        detail = exc.args[0] if exc.args else ""
        answer = _text(detail)
        if self.login_mechanism is not None and isinstance(detail, bytes):
            if TRANSIENT.search(answer):
                return SourceUnavailable(
                    f"Account {ctx.label!r}: POP3 login at {self._server} failed for now: "
                    f"{answer!r}.",
                    account=ctx.account,
                    hint="syncer will try again later.",
                )
            return SourceAuthError(
                f"Account {ctx.label!r}: POP3 login refused by {self._server} "
                f"(auth = {self.login_mechanism!r}).",
                account=ctx.account,
                hint=f"Check the account's password source. The server said: {answer}",
            )
        message = (
            f"Account {ctx.label!r}: POP3 server {self._server} answered {answer!r}{self._suffix}."
        )
        if TRANSIENT.search(answer):
            return SourceUnavailable(
                message, account=ctx.account, hint="syncer will try again later."
            )
        return SourceError(message, account=ctx.account)

    def malformed(self, exc: BaseException) -> SourceError:
        if not isinstance(exc, Truncated):
            return self.out_of_step(exc)
        uidl = exc.uidl if exc.uidl is not None else "none"
        return ProtocolViolation(
            f"Account {self.ctx.label!r}: message {exc.number} (UIDL {uidl}) came back with "
            f"{exc.got} bytes, LIST said {exc.listed}.",
            account=self.ctx.account,
            folder="INBOX",
            hint="Nothing was archived or deleted for it; the next run tries again. If it "
            "keeps happening, the message is damaged on the server or the server miscounts.",
        )

    def out_of_step(self, exc: BaseException) -> SourceError:
        if isinstance(exc, poplib.error_proto):  # poplib's own line-length check
            what = f"an over-long status line{self._suffix}"
        else:
            what = f"a malformed answer{self._suffix}: {exc}"
        return ProtocolViolation(
            f"Account {self.ctx.label!r}: POP3 server {self._server} sent {what}.",
            account=self.ctx.account,
        )

    def closed(self, exc: BaseException) -> SourceError:
        said = "" if isinstance(exc, poplib.error_proto) else f": {exc}"  # poplib's EOF: nothing
        return SourceUnavailable(
            f"Account {self.ctx.label!r}: the connection to {self._server} was lost"
            f"{self._suffix}{said}.",
            account=self.ctx.account,
        )
