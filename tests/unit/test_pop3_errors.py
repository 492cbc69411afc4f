"""POP3Source's error mapping, and server behaviour replayed from a scripted socket.

The meta-test walks every exception class poplib, ssl, socket (OSError
subclasses) and the OSError family define, raises each inside
``POP3Source._map_errors()`` and checks it comes out as the most specific
``SourceError`` subclass, chained with ``from``. poplib raises one class,
``error_proto``, for everything, so its variants (a server's -ERR line, poplib's
own "-ERR EOF" and "line too long") are checked one by one.

The scripted server replays exact bytes for what Dovecot will not do on
request: no APOP timestamp, no CAPA, no UIDL, "[SYS/TEMP]" and "[IN-USE]"
answers, a QUIT that fails, a RETR answer shorter than LIST said.
"""

from __future__ import annotations

import builtins
import errno
import poplib
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping

import pytest
from structlog.testing import capture_logs

from syncer.errors import ProtocolViolation, SourceAuthError, SourceError, SourceUnavailable
from syncer.model import MaildropEntry
from syncer.sources.base import MailDropSource
from syncer.sources.pop3.settings import Auth, POP3Settings
from syncer.sources.pop3.source import POP3Source
from syncer.sources.pop3.wire import ConnectionClosed, FramingError, NotOffered, Truncated


def exception_classes(namespace: Mapping[str, object]) -> list[type[BaseException]]:
    return [v for v in namespace.values() if isinstance(v, type) and issubclass(v, BaseException)]


def library_exceptions() -> list[type[BaseException]]:
    classes = exception_classes(vars(poplib))
    classes += exception_classes(vars(ssl))
    classes += [c for c in exception_classes(vars(socket)) if issubclass(c, OSError)]
    classes += [c for c in exception_classes(vars(builtins)) if issubclass(c, OSError)]
    return list(dict.fromkeys(classes))


def instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, OSError):
        return cls(errno.ECONNRESET, "boom")
    if cls is poplib.error_proto:
        return cls(b"-ERR boom")
    return cls("boom")


#: The most specific class each kind of failure must become (first match wins).
EXPECTED: list[tuple[type[BaseException], type[SourceError]]] = [
    (poplib.error_proto, SourceError),  # a -ERR answer; its variants are tested below
    (ssl.SSLCertVerificationError, SourceError),  # not transient: a retry cannot help
    (ssl.SSLError, SourceUnavailable),
    (OSError, SourceUnavailable),
]


def expected_for(cls: type[BaseException]) -> type[SourceError]:
    for base, target in EXPECTED:
        if issubclass(cls, base):
            return target
    raise AssertionError(f"no expectation for {cls}")


@pytest.fixture
def source() -> POP3Source:
    return POP3Source(POP3Settings("pop.example.com", 995, "tls", "me", "secret", account="home"))


@pytest.mark.parametrize("cls", library_exceptions(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_library_exception_is_mapped(source: POP3Source, cls: type[BaseException]) -> None:
    exc = instance(cls)
    with pytest.raises(SourceError) as caught, source._map_errors("RETR 1"):
        raise exc
    assert type(caught.value) is expected_for(cls)
    assert caught.value.__cause__ is exc
    assert caught.value.account == "home"
    assert "secret" not in str(caught.value)


def test_the_list_is_complete() -> None:
    names = {c.__name__ for c in library_exceptions()}
    assert {
        "error_proto",
        "SSLCertVerificationError",
        "SSLEOFError",
        "gaierror",
        "TimeoutError",
        "ConnectionResetError",
        "ConnectionRefusedError",
    } <= names


@pytest.mark.parametrize(
    ("exc", "login", "expected"),
    [
        (poplib.error_proto("-ERR EOF"), None, SourceUnavailable),  # poplib: connection closed
        (poplib.error_proto("line too long"), None, ProtocolViolation),
        (poplib.error_proto(b"-ERR [SYS/TEMP] Try again later"), None, SourceUnavailable),
        (poplib.error_proto(b"-ERR [AUTH] Authentication failed."), "password", SourceAuthError),
        (poplib.error_proto(b"-ERR [IN-USE] Mailbox locked"), "password", SourceUnavailable),
        (poplib.error_proto(b"-ERR [LOGIN-DELAY] Wait"), "apop", SourceUnavailable),
        (poplib.error_proto("-ERR EOF"), "password", SourceUnavailable),
        (Truncated(3, "u3", 10, 20), None, ProtocolViolation),
        (ConnectionClosed("eof"), None, SourceUnavailable),
        (FramingError("junk"), None, ProtocolViolation),
        (NotOffered("STLS", "hint"), None, SourceError),
    ],
)
def test_own_failures_and_poplib_variants(
    source: POP3Source, exc: Exception, login: str | None, expected: type[SourceError]
) -> None:
    with pytest.raises(SourceError) as caught, source._map_errors("RETR 3", login=login):
        raise exc
    assert type(caught.value) is expected


def test_messages_name_the_account_the_server_and_what_to_do(source: POP3Source) -> None:
    with pytest.raises(SourceAuthError) as auth, source._map_errors("login", login="password"):
        raise poplib.error_proto(b"-ERR [AUTH] Authentication failed.")
    assert auth.value.message == (
        "Account 'home': POP3 login refused by pop.example.com:995 (auth = 'password')."
    )
    assert auth.value.hint is not None
    assert auth.value.hint.startswith("Check the account's password source.")
    assert "Authentication failed" in auth.value.hint

    with pytest.raises(ProtocolViolation) as short, source._map_errors("RETR 3"):
        raise Truncated(3, "000000036b08f74c", 120, 5016)
    assert short.value.message == (
        "Account 'home': message 3 (UIDL 000000036b08f74c) came back with 120 bytes, "
        "LIST said 5016."
    )
    assert short.value.hint is not None and "Nothing was archived or deleted" in short.value.hint

    with pytest.raises(SourceError) as cert, source._map_errors("connecting"):
        raise ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert "certificate for pop.example.com did not verify" in cert.value.message
    assert cert.value.hint is not None and "ca_file" in cert.value.hint
    assert not cert.value.transient


def test_repr_hides_the_password(source: POP3Source) -> None:
    assert "secret" not in repr(source)


def test_is_a_maildrop_source(source: POP3Source) -> None:
    maildrop: MailDropSource = source  # mypy checks the Protocol here
    assert maildrop.capabilities == frozenset()  # nothing before connect()


def test_commands_before_connect_are_refused_as_transient(source: POP3Source) -> None:
    with pytest.raises(SourceUnavailable, match="session is not open"):
        source.listing()


# -- scripted server --------------------------------------------------------------------------

DOVECOT_CAPA = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
APOP_GREETING = b"+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n"


class ScriptedPOP3:
    """Accepts one connection, greets, and answers each command line from a script.

    The script is a list of ``(regex for the command line, reply bytes)``; a reply
    ending in ``b"<close>"`` is sent without that marker and the connection closed.
    Unscripted commands are answered ``-ERR`` and recorded as errors.
    """

    def __init__(self, script: list[tuple[bytes, bytes]], greeting: bytes = b"+OK ready\r\n"):
        self.script = list(script)
        self.greeting = greeting
        self.received: list[bytes] = []
        self.errors: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as rfile:
            conn.sendall(self.greeting)
            while True:
                line = rfile.readline()
                if not line:
                    return
                command = line.rstrip(b"\r\n")
                self.received.append(command)
                if not self.script:
                    self.errors.append(f"unscripted command {command!r}")
                    conn.sendall(b"-ERR unscripted\r\n")
                    continue
                pattern, reply = self.script.pop(0)
                if not re.fullmatch(pattern, command):
                    self.errors.append(f"expected {pattern!r}, got {command!r}")
                if reply.endswith(b"<close>"):
                    conn.sendall(reply.removesuffix(b"<close>"))
                    return
                conn.sendall(reply)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[list[ScriptedPOP3]]:
    started: list[ScriptedPOP3] = []
    yield started
    for server in started:
        server.close()
        assert not server.errors, server.errors


def serve(
    servers: list[ScriptedPOP3],
    script: list[tuple[bytes, bytes]],
    *,
    greeting: bytes = b"+OK ready\r\n",
    auth: Auth = "password",
) -> tuple[ScriptedPOP3, POP3Source]:
    server = ScriptedPOP3(script, greeting)
    servers.append(server)
    source = POP3Source(
        POP3Settings(
            "127.0.0.1",
            server.port,
            "plain",
            "me",
            "pw",
            auth=auth,
            account="home",
            timeout=5,
        )
    )
    return server, source


LOGIN = [(b"CAPA", DOVECOT_CAPA), (b"USER me", b"+OK\r\n"), (b"PASS pw", b"+OK Logged in.\r\n")]
CAPA_AFTER = (b"CAPA", b"+OK\r\nTOP\r\nUIDL\r\n.\r\n")


def test_login_with_user_pass_reads_capa_before_and_after(servers: list[ScriptedPOP3]) -> None:
    server, source = serve(servers, [*LOGIN, CAPA_AFTER, (b"QUIT", b"+OK bye\r\n")])
    with capture_logs() as logs:
        source.connect()
    assert source.capabilities == {"TOP", "UIDL"}
    (connected,) = [e for e in logs if e["event"] == "pop3.connected"]
    assert connected["capabilities"] == ["TOP", "UIDL"]
    assert connected["sasl"] == ["PLAIN", "LOGIN"]
    assert "pw" not in repr(logs)
    source.close()
    assert server.received[-1] == b"QUIT"


def test_wrong_password_is_an_auth_error(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers,
        [
            (b"CAPA", DOVECOT_CAPA),
            (b"USER me", b"+OK\r\n"),
            (b"PASS pw", b"-ERR [AUTH] Authentication failed.\r\n"),
        ],
    )
    with pytest.raises(SourceAuthError, match=r"POP3 login refused by 127\.0\.0\.1"):
        source.connect()


def test_a_locked_mailbox_is_worth_a_retry(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers,
        [
            (b"CAPA", DOVECOT_CAPA),
            (b"USER me", b"+OK\r\n"),
            (b"PASS pw", b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"),
        ],
    )
    with pytest.raises(SourceUnavailable, match="failed for now"):
        source.connect()


def test_apop_without_a_timestamp_in_the_greeting_is_refused_before_sending_anything(
    servers: list[ScriptedPOP3],
) -> None:
    server, source = serve(servers, [(b"CAPA", DOVECOT_CAPA)], auth="apop")
    with pytest.raises(SourceError) as caught:
        source.connect()
    assert caught.value.message == (
        "Account 'home': POP3 server 127.0.0.1:"
        f"{server.port} does not offer APOP (its greeting carries no <timestamp>)."
    )
    assert caught.value.hint is not None and 'auth = "password"' in caught.value.hint
    assert not any(line.startswith((b"APOP", b"USER", b"PASS")) for line in server.received)


def test_apop_sends_the_rfc_1939_digest(servers: list[ScriptedPOP3]) -> None:
    # RFC 1939 section 7's example: timestamp + "tanstaaf" hashes to c4c9334b....
    server = ScriptedPOP3(
        [
            (b"CAPA", b"-ERR no CAPA here\r\n"),
            (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb", b"+OK maildrop has 1 message\r\n"),
            (b"CAPA", b"-ERR no CAPA here\r\n"),
            (b"QUIT", b"+OK\r\n"),
        ],
        APOP_GREETING,
    )
    servers.append(server)
    source = POP3Source(
        POP3Settings(
            "127.0.0.1", server.port, "plain", "mrose", "tanstaaf", auth="apop", account="rfc"
        )
    )
    source.connect()
    assert source.capabilities == frozenset()  # a server without CAPA has none
    source.close()


def test_sasl_plain_needs_capa_to_list_it(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers, [(b"CAPA", b"+OK\r\nUSER\r\nSASL LOGIN\r\n.\r\n")], auth="sasl-plain"
    )
    with pytest.raises(SourceError, match=r"does not offer SASL PLAIN \(CAPA lists LOGIN\)"):
        source.connect()


def test_sasl_plain_sends_the_credentials_as_initial_response(servers: list[ScriptedPOP3]) -> None:
    server, source = serve(
        servers,
        [
            (b"CAPA", DOVECOT_CAPA),
            (b"AUTH PLAIN AG1lAHB3", b"+OK Logged in.\r\n"),  # base64 of "\0me\0pw"
            CAPA_AFTER,
            (b"QUIT", b"+OK\r\n"),
        ],
        auth="sasl-plain",
    )
    source.connect()
    source.close()
    assert server.received[1] == b"AUTH PLAIN AG1lAHB3"


def test_starttls_refused_when_not_offered(servers: list[ScriptedPOP3]) -> None:
    server = ScriptedPOP3([(b"CAPA", DOVECOT_CAPA)])
    servers.append(server)
    source = POP3Source(
        POP3Settings("127.0.0.1", server.port, "starttls", "me", "pw", account="home")
    )
    with pytest.raises(SourceError, match="does not offer STLS"):
        source.connect()


def test_a_server_without_uidl_gives_entries_without_uidl(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers,
        [
            *LOGIN,
            CAPA_AFTER,
            (b"LIST", b"+OK 2 messages\r\n1 120\r\n2 240\r\n.\r\n"),
            (b"UIDL", b"-ERR Unknown command: UIDL\r\n"),
            (b"TOP 2 0", b"+OK\r\nSubject: two\r\n\r\n.\r\n"),
            (b"QUIT", b"+OK\r\n"),
        ],
    )
    source.connect()
    with capture_logs() as logs:
        assert source.listing() == [MaildropEntry(1, 120, None), MaildropEntry(2, 240, None)]
    assert [e["event"] for e in logs] == ["pop3.no_uidl"]
    assert source.headers(2) == b"Subject: two\r\n\r\n"
    source.close()


def test_uidl_try_again_later_is_not_taken_for_no_uidl(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers,
        [
            *LOGIN,
            CAPA_AFTER,
            (b"LIST", b"+OK\r\n1 120\r\n.\r\n"),
            (b"UIDL", b"-ERR [SYS/TEMP] Try again later\r\n"),
            (b"QUIT", b"+OK\r\n"),
        ],
    )
    source.connect()
    with pytest.raises(SourceUnavailable):
        source.listing()
    source.close()


def test_a_short_retr_answer_names_the_message_and_keeps_the_session(
    servers: list[ScriptedPOP3],
) -> None:
    _, source = serve(
        servers,
        [
            *LOGIN,
            CAPA_AFTER,
            (b"LIST", b"+OK\r\n1 30\r\n2 19\r\n.\r\n"),
            (b"UIDL", b"+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n"),
            (b"RETR 1", b"+OK 30 octets\r\nSubject: one\r\n\r\n.\r\n"),
            (b"RETR 2", b"+OK 19 octets\r\nSubject: two\r\n\r\n..\r\n.\r\n"),
            (b"QUIT", b"+OK\r\n"),
        ],
    )
    source.connect()
    first, second = source.listing()
    with pytest.raises(ProtocolViolation, match=r"message 1 \(UIDL aaa\) came back with 16 bytes"):
        source.retrieve(first)
    message = source.retrieve(second)
    assert (message.raw, message.uidl, message.uid, message.folder) == (
        b"Subject: two\r\n\r\n.\r\n",
        "bbb",
        0,
        "INBOX",
    )
    source.close()


def test_a_connection_closed_mid_retr_is_transient_and_ends_the_session(
    servers: list[ScriptedPOP3],
) -> None:
    _, source = serve(
        servers,
        [
            *LOGIN,
            CAPA_AFTER,
            (b"LIST", b"+OK\r\n1 3000\r\n.\r\n"),
            (b"UIDL", b"+OK\r\n1 aaa\r\n.\r\n"),
            (b"RETR 1", b"+OK 3000 octets\r\nSubject: cut\r\n\r\nhalf a bo<close>"),
        ],
    )
    source.connect()
    (entry,) = source.listing()
    with pytest.raises(
        SourceUnavailable, match=r"connection to 127\.0\.0\.1:\d+ was lost during RETR 1"
    ):
        source.retrieve(entry)
    with pytest.raises(SourceUnavailable, match="session is not open"):
        source.retrieve(entry)
    source.close()  # nothing left to close; never raises


def test_close_with_marked_messages_drops_the_connection_without_quit(
    servers: list[ScriptedPOP3],
) -> None:
    server, source = serve(servers, [*LOGIN, CAPA_AFTER, (b"DELE 1", b"+OK Marked\r\n")])
    source.connect()
    source.delete(1)
    with capture_logs() as logs:
        source.close()
    assert b"QUIT" not in server.received
    assert [e["event"] for e in logs] == ["pop3.closed_without_quit", "pop3.closed"]


def test_a_refused_quit_is_an_error(servers: list[ScriptedPOP3]) -> None:
    _, source = serve(
        servers,
        [
            *LOGIN,
            CAPA_AFTER,
            (b"DELE 1", b"+OK Marked\r\n"),
            (b"QUIT", b"-ERR some deleted messages not removed\r\n"),
        ],
    )
    source.connect()
    source.delete(1)
    with pytest.raises(SourceError, match="some deleted messages not removed"):
        source.quit()
    source.close()  # the session is over; nothing else is sent


def test_connection_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    source = POP3Source(
        POP3Settings("127.0.0.1", port, "plain", "me", "pw", account="home", timeout=2)
    )
    with pytest.raises(SourceUnavailable, match=r"cannot talk to POP3 server 127\.0\.0\.1"):
        source.connect()
