"""How the IMAP adapter's failures reach the user: one mapping, library error -> SourceError.

Why this exists: imaplib, imapclient, ssl and socket each raise their own
exception trees, and our lean reader adds a few more. The pipeline must only
ever see ``syncer.errors`` classes -- ``SourceAuthError`` (do not retry),
``SourceUnavailable`` (transient: retry), ``ProtocolViolation`` and
``SourceError`` -- each with a message that names the account, the server and
the folder and says what to do next (STYLE.md section 4). Everything is decided
in :func:`map_errors`; a meta-test raises every library exception class through
it.

Public API (private to ``syncer.sources``): :class:`ErrorContext`, :func:`map_errors`.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imapclient import exceptions as imapclient_exceptions

from syncer.errors import (
    ProtocolViolation,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
    SyncerError,
)
from syncer.oauth.sasl import BearerRefused, NoMechanism
from syncer.sources.deadline import DeadlineExceeded
from syncer.sources.imap.connection import CommandFailed, StartTLSNotOffered
from syncer.sources.imap.parser import ConnectionClosed, FramingError, ResponseError
from syncer.sources.oauth_errors import oauth_error

#: NO answers that mean "later", not "never" (RFC 5530 codes, Dovecot's wording).
TRANSIENT = re.compile(r"\[(?:UNAVAILABLE|INUSE)\]|try again|temporar", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Who failed: for the messages, and how to forget a connection gone bad."""

    label: str  # the account name, or user@host when none was given
    account: str | None
    host: str
    port: int
    timeout: float
    drop: Callable[[], None]


@contextlib.contextmanager
def map_errors(ctx: ErrorContext, folder: str | None = None) -> Iterator[None]:
    """Translate every library exception raised inside into the most specific
    ``SourceError`` subclass, chained with ``from``; our own errors pass through.

    Errors that leave the connection in an unknown state (lost connection, broken
    framing, TLS and socket errors) also call ``ctx.drop()``.
    """
    where = f" in folder {folder!r}" if folder is not None else ""
    server = f"{ctx.host}:{ctx.port}"
    acct = ctx.account
    try:
        yield
    except SyncerError:
        raise
    except StartTLSNotOffered as exc:
        raise SourceError(
            f"Account {ctx.label!r}: {ctx.host}:{ctx.port} does not offer STARTTLS.",
            account=acct,
            hint='Use security = "tls" (port 993), or check the port.',
        ) from exc
    except (BearerRefused, NoMechanism) as exc:
        raise oauth_error(
            exc, protocol="IMAP", label=ctx.label, server=server, account=acct
        ) from exc
    except CommandFailed as exc:
        completion = exc.completion
        code = f"[{completion.code}] " if completion.code else ""
        answer = f"{completion.status} {code}{completion.text}".strip()
        message = (
            f"Account {ctx.label!r}: IMAP server {server} answered {exc.command}{where} "
            f"with {answer!r}."
        )
        if completion.code in ("UNAVAILABLE", "INUSE") or TRANSIENT.search(answer):
            raise SourceUnavailable(
                message, account=acct, folder=folder, hint="syncer will try again later."
            ) from exc
        hint = None
        if completion.code == "NONEXISTENT" or "exist" in completion.text.lower():
            hint = "The folder may have been renamed or deleted; list the folders again."
        raise SourceError(message, account=acct, folder=folder, hint=hint) from exc
    except (ResponseError, FramingError, imapclient_exceptions.ProtocolError) as exc:
        if not isinstance(exc, ResponseError):
            ctx.drop()  # the stream is out of step
        raise ProtocolViolation(
            f"Account {ctx.label!r}: IMAP server {server} sent a malformed answer{where}: {exc}",
            account=acct,
            folder=folder,
        ) from exc
    except ConnectionClosed as exc:
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: the connection to {server} was lost{where}: {exc}.",
            account=acct,
            folder=folder,
        ) from exc
    except imapclient_exceptions.LoginError as exc:
        if TRANSIENT.search(str(exc)):
            raise SourceUnavailable(
                f"Account {ctx.label!r}: IMAP login at {server} failed for now: {exc}.",
                account=acct,
                hint="syncer will try again later.",
            ) from exc
        raise SourceAuthError(
            f"Account {ctx.label!r}: IMAP login refused by {server}.",
            account=acct,
            hint=f"Check the account's password source. The server said: {exc}",
        ) from exc
    except imaplib.IMAP4.abort as exc:  # includes readonly and IMAPClientAbortError
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: the IMAP session with {server} broke off{where}: {exc}.",
            account=acct,
            folder=folder,
        ) from exc
    except imaplib.IMAP4.error as exc:  # NO/BAD via imaplib, CapabilityError, ...
        message = f"Account {ctx.label!r}: IMAP server {server} refused a command{where}: {exc}."
        if TRANSIENT.search(str(exc)):
            raise SourceUnavailable(message, account=acct, folder=folder) from exc
        raise SourceError(message, account=acct, folder=folder) from exc
    except ssl.SSLCertVerificationError as exc:
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: the TLS certificate for {ctx.host} did not verify "
            f"({getattr(exc, 'verify_message', None) or exc}).",
            account=acct,
            hint="Set ca_file to the CA that signed the server's certificate, or "
            "tls_verify = false if you accept an unverified connection.",
        ) from exc
    except ssl.SSLError as exc:
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: TLS with {server} failed: {exc}.",
            account=acct,
            folder=folder,
        ) from exc
    except DeadlineExceeded as exc:  # a TimeoutError whose text says which deadline
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: IMAP server {server} is too slow{where}: {exc}.",
            account=acct,
            folder=folder,
        ) from exc
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: {server} did not answer within {ctx.timeout:g} s{where}.",
            account=acct,
            folder=folder,
        ) from exc
    except OSError as exc:  # refused, reset, unreachable, name resolution (gaierror)
        ctx.drop()
        raise SourceUnavailable(
            f"Account {ctx.label!r}: cannot talk to IMAP server {server}: {exc}.",
            account=acct,
            folder=folder,
            hint="Check the host, the port and the network.",
        ) from exc
