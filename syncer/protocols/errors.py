"""One table from library exceptions to syncer's errors, shared by IMAP, POP3 and SMTP.

Why this exists: imaplib, imapclient, poplib, smtplib, ssl and socket each raise
their own exception trees, and our own protocol readers add a few more. The
pipelines must only ever see ``syncer.errors`` classes, with a message that
names the account, the server and what to do next. Deciding *what kind of
failure* an exception is happens once, here, in :func:`table` (most specific
class first, as httpx's ``map_httpcore_exceptions``); how each kind is *worded*
(and which ``SyncerError`` class it becomes) is each adapter's
:class:`Wording`. :func:`map_exceptions` applies both, in one context manager.

A kind also says whether the connection is still usable: after a lost
connection, broken framing, a TLS or a socket error the stream's state is
unknown, and :func:`map_exceptions` calls the adapter's ``drop`` before raising.

Our own protocol readers raise subclasses of the base classes below
(:class:`ConnectionLost`, :class:`OutOfStep`, ...), so they are classified by
the same table; ``syncer.oauth.sasl``'s sign-in failures subclass
:class:`SignInFailed`. A meta-test (tests/unit/test_protocol_errors.py) checks
that every exception class of imaplib, imapclient, poplib, smtplib, ssl and
socket has a row.

Public API: :class:`Kind`, :func:`table`, :func:`classify`, :class:`Wording`,
:func:`map_exceptions`, and the base classes :class:`ConnectionLost`,
:class:`OutOfStep`, :class:`Malformed`, :class:`CommandRefused`,
:class:`NotOffered`, :class:`SignInFailed`.
"""

from __future__ import annotations

import contextlib
import enum
import imaplib
import poplib
import smtplib
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

from syncer.errors import SyncerError

__all__ = [
    "CommandRefused",
    "ConnectionLost",
    "Kind",
    "Malformed",
    "NotOffered",
    "OutOfStep",
    "SignInFailed",
    "Wording",
    "classify",
    "map_exceptions",
    "table",
    "word",
]


# -- the base classes of our own protocol readers' exceptions --------------------------------


class ConnectionLost(Exception):
    """The server closed the connection (EOF, a short literal, BYE)."""


class OutOfStep(Exception):
    """The byte stream broke the protocol's framing: the session must be dropped."""


class Malformed(Exception):
    """One answer was not what the protocol allows, but the stream is still in step."""


class CommandRefused(Exception):
    """The server answered a command with a refusal (IMAP NO/BAD)."""


class NotOffered(Exception):
    """The server lacks something the configuration asks for (STARTTLS, STLS, APOP, ...)."""


class SignInFailed(Exception):
    """A SASL sign-in failed in a way the adapter words (token refused, no mechanism)."""


# -- the kinds of failure -------------------------------------------------------------------


class Kind(enum.Enum):
    """What went wrong, whatever the protocol; the value names the :class:`Wording` method."""

    SIGN_IN = "sign_in"
    NOT_OFFERED = "not_offered"
    LOGIN = "login"
    REFUSED = "refused"
    MALFORMED = "malformed"
    OUT_OF_STEP = "out_of_step"
    CLOSED = "closed"
    CERTIFICATE = "certificate"
    TLS = "tls"
    TIMEOUT = "timeout"
    NETWORK = "network"

    @property
    def drops(self) -> bool:
        """True when the connection's state is unknown afterwards: forget it."""
        return self in _DROPS


_DROPS = frozenset(
    {Kind.OUT_OF_STEP, Kind.CLOSED, Kind.CERTIFICATE, Kind.TLS, Kind.TIMEOUT, Kind.NETWORK}
)

#: poplib's own error_proto texts (str); a server's -ERR line arrives as bytes instead.
POPLIB_EOF = "-ERR EOF"
POPLIB_LONG_LINE = "line too long"


def _poplib_kind(exc: BaseException) -> Kind:
    """poplib signals a closed connection and an over-long line with error_proto too."""
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    if detail == POPLIB_EOF:
        return Kind.CLOSED
    if detail == POPLIB_LONG_LINE:
        return Kind.OUT_OF_STEP
    return Kind.REFUSED


def _smtp_disconnected_kind(exc: BaseException) -> Kind:
    """smtplib turns a read timeout into SMTPServerDisconnected; it is still a timeout."""
    return Kind.TIMEOUT if isinstance(exc.__context__, TimeoutError) else Kind.CLOSED


Row = tuple[type[BaseException], Kind | Callable[[BaseException], Kind]]

#: Library exception class -> kind of failure, most specific first: the first row whose
#: class the exception is an instance of decides. (smtplib.SMTPException and
#: ssl.SSLError are OSErrors, imapclient's errors are imaplib's.) imapclient's rows come
#: between the two parts (:func:`table`).
_OWN: tuple[Row, ...] = (
    (SignInFailed, Kind.SIGN_IN),
    (NotOffered, Kind.NOT_OFFERED),
    (CommandRefused, Kind.REFUSED),
    (Malformed, Kind.MALFORMED),
    (OutOfStep, Kind.OUT_OF_STEP),
    (ConnectionLost, Kind.CLOSED),
)
_LIBRARIES: tuple[Row, ...] = (
    (imaplib.IMAP4.abort, Kind.CLOSED),  # also readonly and IMAPClientAbortError
    (imaplib.IMAP4.error, Kind.REFUSED),  # NO/BAD via imaplib, CapabilityError, ...
    (poplib.error_proto, _poplib_kind),
    (smtplib.SMTPAuthenticationError, Kind.LOGIN),
    (smtplib.SMTPServerDisconnected, _smtp_disconnected_kind),
    (smtplib.SMTPNotSupportedError, Kind.NOT_OFFERED),
    (smtplib.SMTPException, Kind.REFUSED),  # replies (4xx/5xx), refused recipients, bare
    (ssl.SSLCertVerificationError, Kind.CERTIFICATE),
    (ssl.SSLError, Kind.TLS),
    (TimeoutError, Kind.TIMEOUT),  # socket.timeout is TimeoutError
    (OSError, Kind.NETWORK),  # refused, reset, unreachable, name resolution (gaierror)
)


def table() -> tuple[Row, ...]:
    """Every row, most specific first, imapclient's included once imapclient is loaded.

    Why not always: importing imapclient costs a POP3 or SMTP run about a tenth of
    its start-up, and none of its exceptions can exist before it is imported.
    """
    if "imapclient" not in sys.modules:
        return _OWN + _LIBRARIES
    from imapclient import exceptions

    imapclient_rows: tuple[Row, ...] = (
        (exceptions.LoginError, Kind.LOGIN),
        (exceptions.ProtocolError, Kind.OUT_OF_STEP),
    )
    return _OWN + imapclient_rows + _LIBRARIES


def classify(exc: BaseException) -> Kind | None:
    """The kind of failure ``exc`` is, or None when no row matches (not a library error)."""
    for cls, kind in table():
        if isinstance(exc, cls):
            return kind if isinstance(kind, Kind) else kind(exc)
    return None


class Wording(Protocol):
    """How one adapter words each kind of failure: the ``SyncerError`` to raise ``from exc``.

    Each method receives the library exception; it may look closer (a reply code,
    a ``[UNAVAILABLE]`` text) to choose between a transient and a lasting error.
    """

    def sign_in(self, exc: BaseException) -> SyncerError: ...

    def not_offered(self, exc: BaseException) -> SyncerError: ...

    def login(self, exc: BaseException) -> SyncerError: ...

    def refused(self, exc: BaseException) -> SyncerError: ...

    def malformed(self, exc: BaseException) -> SyncerError: ...

    def out_of_step(self, exc: BaseException) -> SyncerError: ...

    def closed(self, exc: BaseException) -> SyncerError: ...

    def certificate(self, exc: BaseException) -> SyncerError: ...

    def tls(self, exc: BaseException) -> SyncerError: ...

    def timeout(self, exc: BaseException) -> SyncerError: ...

    def network(self, exc: BaseException) -> SyncerError: ...


def word(wording: Wording, kind: Kind, exc: BaseException) -> SyncerError:
    """``wording``'s error for ``exc`` of ``kind``."""
    method: Callable[[BaseException], SyncerError] = getattr(wording, kind.value)
    return method(exc)


@contextlib.contextmanager
def map_exceptions(wording: Wording, drop: Callable[[], None]) -> Iterator[None]:
    """Translate every library exception raised inside into ``wording``'s ``SyncerError``,
    chained with ``from``; syncer's own errors and unknown exceptions pass through.

    :param drop: forgets the connection; called first for the kinds whose
        :attr:`Kind.drops` is true.
    """
    try:
        yield
    except SyncerError:
        raise
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        if kind.drops:
            drop()
        raise word(wording, kind, exc) from exc
