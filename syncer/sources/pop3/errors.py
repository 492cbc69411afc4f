"""How the POP3 adapter's failures reach the user: one mapping, library error -> SourceError.

Why this exists: poplib signals everything -- a server's ``-ERR`` line, a
closed connection, an over-long line -- with one class, ``poplib.error_proto``,
told apart only by its argument; ssl and socket add their own trees. The
pipeline must only ever see ``syncer.errors`` classes, each with a message that
names the account and the server and says what to do next (STYLE.md section 4).
Everything is decided in :func:`map_errors`; a meta-test raises every library
exception class through it.

Public API (private to ``syncer.sources``): :class:`ErrorContext`, :func:`map_errors`.
"""

from __future__ import annotations

import contextlib
import poplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from syncer.errors import (
    ProtocolViolation,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
    SyncerError,
)
from syncer.oauth.sasl import BearerRefused, NoMechanism
from syncer.sources.deadline import DeadlineExceeded
from syncer.sources.oauth_errors import oauth_error
from syncer.sources.pop3.wire import (
    TRANSIENT,
    ConnectionClosed,
    FramingError,
    NotOffered,
    Truncated,
)

#: poplib's own error_proto texts (str); a server's -ERR line arrives as bytes instead.
_POPLIB_EOF = "-ERR EOF"
_POPLIB_LONG_LINE = "line too long"


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Who failed: for the messages, and how to forget a connection gone bad."""

    label: str  # the account name, or user@host when none was given
    account: str | None
    host: str
    port: int
    timeout: float
    drop: Callable[[], None]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@contextlib.contextmanager
def map_errors(
    ctx: ErrorContext, command: str | None = None, *, login: str | None = None
) -> Iterator[None]:
    """Translate every library exception raised inside into the most specific
    ``SourceError`` subclass, chained with ``from``; our own errors pass through.

    :param command: what was being done (``"RETR 17"``), for the message.
    :param login: the authentication mechanism when the block logs in: a
        ``-ERR`` answer then means the credentials were refused.

    Errors that leave the connection in an unknown state (lost connection,
    broken framing, TLS and socket errors) also call ``ctx.drop()``.
    """
    server = f"{ctx.host}:{ctx.port}"
    acct = ctx.account
    during = f" during {command}" if command else ""
    try:
        yield
    except SyncerError:
        raise
    except (BearerRefused, NoMechanism) as exc:
        raise oauth_error(
            exc, protocol="POP3", label=ctx.label, server=server, account=acct
        ) from exc
    except Truncated as exc:
        uidl = exc.uidl if exc.uidl is not None else "none"
        raise ProtocolViolation(
            f"Account {ctx.label!r}: message {exc.number} (UIDL {uidl}) came back with "
            f"{exc.got} bytes, LIST said {exc.listed}.",
            account=acct,
            folder="INBOX",
            hint="Nothing was archived or deleted for it; the next run tries again. If it "
            "keeps happening, the message is damaged on the server or the server miscounts.",
        ) from exc
    except NotOffered as exc:
        raise SourceError(
            f"Account {ctx.label!r}: POP3 server {server} does not offer {exc.what}.",
            account=acct,
            hint=exc.hint,
        ) from exc
    except ConnectionClosed as exc:
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: the connection to {server} was lost{during}: {exc}.",
            account=acct,
        ) from exc
    except FramingError as exc:
        ctx.drop()
        raise ProtocolViolation(
            f"Account {ctx.label!r}: POP3 server {server} sent a malformed answer{during}: {exc}.",
            account=acct,
        ) from exc
    except poplib.error_proto as exc:
        detail = exc.args[0] if exc.args else ""
        answer = _text(detail)
        if answer == _POPLIB_EOF:
            ctx.drop()
            raise SourceUnavailable(
                f"Account {ctx.label!r}: the connection to {server} was lost{during}.",
                account=acct,
            ) from exc
        if answer == _POPLIB_LONG_LINE:
            ctx.drop()
            raise ProtocolViolation(
                f"Account {ctx.label!r}: POP3 server {server} sent an over-long status "
                f"line{during}.",
                account=acct,
            ) from exc
        if login is not None and isinstance(detail, bytes):
            if TRANSIENT.search(answer):
                raise SourceUnavailable(
                    f"Account {ctx.label!r}: POP3 login at {server} failed for now: {answer!r}.",
                    account=acct,
                    hint="syncer will try again later.",
                ) from exc
            raise SourceAuthError(
                f"Account {ctx.label!r}: POP3 login refused by {server} (auth = {login!r}).",
                account=acct,
                hint=f"Check the account's password source. The server said: {answer}",
            ) from exc
        message = f"Account {ctx.label!r}: POP3 server {server} answered {answer!r}{during}."
        if TRANSIENT.search(answer):
            raise SourceUnavailable(
                message, account=acct, hint="syncer will try again later."
            ) from exc
        raise SourceError(message, account=acct) from exc
    except ssl.SSLCertVerificationError as exc:
        ctx.drop()
        # Not transient: retrying cannot make a certificate verify.
        raise SourceError(
            f"Account {ctx.label!r}: the TLS certificate for {ctx.host} did not verify "
            f"({getattr(exc, 'verify_message', None) or exc}).",
            account=acct,
            hint="Set ca_file to the CA that signed the server's certificate, or "
            "tls_verify = false if you accept an unverified connection.",
        ) from exc
    except ssl.SSLError as exc:
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: TLS with {server} failed{during}: {exc}.", account=acct
        ) from exc
    except DeadlineExceeded as exc:  # a TimeoutError whose text says which deadline
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: {server} is too slow{during}: {exc}.", account=acct
        ) from exc
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: {server} did not answer within {ctx.timeout:g} s{during}.",
            account=acct,
        ) from exc
    except OSError as exc:  # refused, reset, unreachable, name resolution (gaierror)
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: cannot talk to POP3 server {server}{during}: {exc}.",
            account=acct,
            hint="Check the host, the port and the network.",
        ) from exc
