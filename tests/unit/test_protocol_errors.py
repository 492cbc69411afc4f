"""The one table from library exceptions to syncer's errors (syncer.protocols.errors).

The meta-test walks every exception class that imaplib, imapclient, poplib,
smtplib, ssl and socket define (and the builtin OSError family), and checks
that each has a row in the table -- and that IMAP, POP3 and SMTP each turn it
into their own error family, chained with ``from`` (the httpx
``test_httpcore_all_exceptions_mapped`` idea). The per-adapter wording of each
kind is tested next to each adapter (test_imap_errors, test_pop3_errors,
test_smtp_client).
"""

from __future__ import annotations

import builtins
import errno
import imaplib
import inspect
import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import ModuleType

import imapclient.exceptions
import pytest

from syncer.errors import RelayError, SourceError, SyncerError
from syncer.oauth import sasl
from syncer.protocols import errors as protocol_errors
from syncer.protocols.errors import Kind, classify, map_exceptions, table
from syncer.smtp.client import SMTPRelay, SMTPSettings
from syncer.sources.imap import connection as imap_connection
from syncer.sources.imap import parser as imap_parser
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource
from syncer.sources.pop3 import wire as pop3_wire
from syncer.sources.pop3.settings import POP3Settings
from syncer.sources.pop3.source import POP3Source


def exception_classes(*namespaces: ModuleType | type) -> list[type[BaseException]]:
    found = [
        value
        for namespace in namespaces
        for _name, value in inspect.getmembers(namespace, inspect.isclass)
        if issubclass(value, BaseException)
    ]
    return list(dict.fromkeys(found))


def library_exceptions() -> list[type[BaseException]]:
    classes = exception_classes(imaplib.IMAP4, imapclient.exceptions, poplib, smtplib, ssl)
    classes += [c for c in exception_classes(socket, builtins) if issubclass(c, OSError)]
    return [c for c in dict.fromkeys(classes) if c.__module__ != "builtins" or c is not Exception]


def own_exceptions() -> list[type[BaseException]]:
    """Exceptions our protocol readers raise: each subclasses one of the table's bases."""
    modules = (imap_parser, imap_connection, pop3_wire, sasl)
    return [c for c in exception_classes(*modules) if c.__module__ in {m.__name__ for m in modules}]


def instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, smtplib.SMTPRecipientsRefused):
        return cls({"a@example.net": (550, b"no")})
    if issubclass(cls, smtplib.SMTPSenderRefused):
        return cls(451, b"later", "s@example.net")
    if issubclass(cls, smtplib.SMTPResponseException):
        return cls(421, b"closing")
    if issubclass(cls, OSError):
        return cls(errno.ECONNRESET, "boom")
    if cls is imap_connection.CommandFailed:
        return cls("FETCH", imap_parser.Completion("NO", None, None, "no"))
    if cls is pop3_wire.NotOffered:
        return cls("STLS", "a hint")
    if cls is pop3_wire.Truncated:
        return cls(3, "u3", 10, 20)
    if cls is sasl.BearerRefused:
        return cls("XOAUTH2", "invalid_token")
    if cls is sasl.NoMechanism:
        return cls(["PLAIN"])
    return cls("boom")


def ids(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.parametrize("cls", library_exceptions() + own_exceptions(), ids=ids)
def test_every_exception_has_a_row(cls: type[BaseException]) -> None:
    assert classify(instance(cls)) is not None


def test_the_list_is_complete() -> None:
    names = {c.__name__ for c in library_exceptions()}
    assert {
        "abort",
        "readonly",
        "LoginError",
        "ProtocolError",
        "error_proto",
        "SMTPServerDisconnected",
        "SMTPRecipientsRefused",
        "SSLCertVerificationError",
        "gaierror",
        "TimeoutError",
        "ConnectionRefusedError",
    } <= names
    assert {c.__name__ for c in own_exceptions()} >= {
        "ConnectionClosed",
        "FramingError",
        "ResponseError",
        "CommandFailed",
        "StartTLSNotOffered",
        "NotOffered",
        "Truncated",
        "BearerRefused",
        "NoMechanism",
    }


def test_most_specific_first() -> None:
    """No row is shadowed by an earlier one: a subclass never comes after its base."""
    classes = [cls for cls, _kind in table()]
    for i, cls in enumerate(classes):
        for earlier in classes[:i]:
            assert not issubclass(cls, earlier), f"{cls} is shadowed by {earlier}"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (poplib.error_proto("-ERR EOF"), Kind.CLOSED),
        (poplib.error_proto("line too long"), Kind.OUT_OF_STEP),
        (poplib.error_proto(b"-ERR no such message"), Kind.REFUSED),
        (smtplib.SMTPServerDisconnected("gone"), Kind.CLOSED),
        (imapclient.exceptions.IMAPClientReadOnlyError("ro"), Kind.CLOSED),
        (imapclient.exceptions.CapabilityError("no"), Kind.REFUSED),
        (ssl.SSLCertVerificationError(1, "bad"), Kind.CERTIFICATE),
        (socket.timeout("slow"), Kind.TIMEOUT),  # noqa: UP041 (the alias, on purpose),
        (socket.gaierror(-2, "unknown host"), Kind.NETWORK),
    ],
)
def test_rows_that_look_closer(exc: BaseException, kind: Kind) -> None:
    assert classify(exc) is kind


def test_a_timeout_smtplib_reports_as_a_disconnect_is_a_timeout() -> None:
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed") from None
    except smtplib.SMTPServerDisconnected as exc:
        assert exc.__context__ is not None
        assert classify(exc) is Kind.TIMEOUT


def test_the_connection_is_dropped_exactly_when_the_kind_says() -> None:
    drops: list[str] = []
    for exc in [TimeoutError("slow"), imaplib.IMAP4.error("NO")]:
        with pytest.raises(SyncerError), map_exceptions(_SameWording(), lambda: drops.append("x")):
            raise exc
    assert drops == ["x"]  # the timeout only


def test_unknown_exceptions_and_our_errors_pass_through() -> None:
    with pytest.raises(KeyError), map_exceptions(_SameWording(), _never):
        raise KeyError("x")
    error = SourceError("ours")
    with pytest.raises(SourceError) as caught, map_exceptions(_SameWording(), _never):
        raise error
    assert caught.value is error


class _SameWording:
    """Words every kind the same way: for the mechanism's own tests."""

    def __getattr__(self, name: str) -> Callable[[BaseException], SyncerError]:
        assert name in {k.value for k in Kind}
        return lambda exc: SyncerError(f"{name}: {exc}")


def _never() -> None:
    raise AssertionError("dropped")


Mapper = Callable[[], AbstractContextManager[None]]

ADAPTERS: dict[str, tuple[Mapper, type[SyncerError]]] = {
    "imap": (
        lambda: IMAPSource(IMAPSettings("imap.example.com", 993, "tls", "me", "pw"))._map_errors(
            "INBOX"
        ),
        SourceError,
    ),
    "pop3": (
        lambda: POP3Source(POP3Settings("pop.example.com", 995, "tls", "me", "pw"))._map_errors(
            "RETR 1"
        ),
        SourceError,
    ),
    "smtp": (
        lambda: SMTPRelay(SMTPSettings("smtp.example.com", 587))._map_errors("sending"),
        RelayError,
    ),
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("cls", library_exceptions() + own_exceptions(), ids=ids)
def test_every_adapter_words_every_exception(adapter: str, cls: type[BaseException]) -> None:
    mapper, family = ADAPTERS[adapter]
    exc = instance(cls)
    with pytest.raises(family) as caught, mapper():
        raise exc
    assert caught.value.__cause__ is exc
    assert caught.value.message


def test_every_kind_has_a_wording_method() -> None:
    for kind in Kind:
        assert callable(getattr(protocol_errors.Wording, kind.value))
