"""IMAPSource's error mapping, and server quirks replayed from a scripted socket.

The meta-test walks every exception class imaplib, ssl, socket (OSError
subclasses), the OSError family and imapclient.exceptions define, raises each
inside ``IMAPSource._map_errors()`` and checks it comes out as the most
specific ``SourceError`` subclass, chained with ``from`` (the httpx
``test_httpcore_all_exceptions_mapped`` idea).

The scripted server replays exact bytes for what Dovecot will not do on
request: HIGHESTMODSEQ 0, a malformed VANISHED, NO [UNAVAILABLE], a BYE in
the middle of a FETCH, a body that never comes back for a message that exists.
"""

from __future__ import annotations

import builtins
import errno
import imaplib
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping

import imapclient.exceptions
import pytest
from structlog.testing import capture_logs

from syncer.errors import (
    ProtocolViolation,
    SourceAuthError,
    SourceError,
    SourceThrottled,
    SourceUnavailable,
)
from syncer.sources.base import FolderSource
from syncer.sources.imap import parser as _imap_fetch
from syncer.sources.imap.connection import CommandFailed
from syncer.sources.imap.parser import Completion
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource


def exception_classes(namespace: Mapping[str, object]) -> list[type[BaseException]]:
    return [v for v in namespace.values() if isinstance(v, type) and issubclass(v, BaseException)]


def library_exceptions() -> list[type[BaseException]]:
    classes = exception_classes(vars(imaplib.IMAP4))
    classes += exception_classes(vars(imapclient.exceptions))
    classes += exception_classes(vars(ssl))
    classes += [c for c in exception_classes(vars(socket)) if issubclass(c, OSError)]
    classes += [c for c in exception_classes(vars(builtins)) if issubclass(c, OSError)]
    return list(dict.fromkeys(classes))


def instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, OSError):
        return cls(errno.ECONNRESET, "boom")
    return cls("boom")


#: The most specific class each kind of failure must become.
EXPECTED: list[tuple[type[BaseException], type[SourceError]]] = [
    (imapclient.exceptions.LoginError, SourceAuthError),
    (imapclient.exceptions.ProtocolError, ProtocolViolation),
    (imaplib.IMAP4.abort, SourceUnavailable),  # also readonly, IMAPClientAbortError
    (imaplib.IMAP4.error, SourceError),  # NO/BAD, CapabilityError, IllegalStateError, ...
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
def source() -> IMAPSource:
    return IMAPSource(IMAPSettings("imap.example.com", 993, "tls", "me", "secret", account="work"))


@pytest.mark.parametrize("cls", library_exceptions(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_library_exception_is_mapped(source: IMAPSource, cls: type[BaseException]) -> None:
    exc = instance(cls)
    with pytest.raises(SourceError) as caught, source._map_errors("INBOX"):
        raise exc
    assert type(caught.value) is expected_for(cls)
    assert caught.value.__cause__ is exc
    assert caught.value.account == "work"
    assert "secret" not in str(caught.value)


def test_the_list_is_complete() -> None:
    names = {c.__name__ for c in library_exceptions()}
    assert {
        "error",
        "abort",
        "readonly",
        "LoginError",
        "ProtocolError",
        "CapabilityError",
        "SSLCertVerificationError",
        "SSLEOFError",
        "gaierror",
        "herror",
        "TimeoutError",  # socket.timeout is an alias since Python 3.10
        "ConnectionResetError",
        "ConnectionRefusedError",
    } <= names


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_imap_fetch.ConnectionClosed("eof"), SourceUnavailable),
        (_imap_fetch.FramingError("junk"), ProtocolViolation),
        (_imap_fetch.ResponseError("odd"), ProtocolViolation),
        (
            CommandFailed("EXAMINE", Completion("NO", None, None, "Mailbox doesn't exist")),
            SourceError,
        ),
        # RFC 5530 UNAVAILABLE is a provider limit (issue 21): waited out in minutes.
        (CommandFailed("FETCH", Completion("NO", "UNAVAILABLE", None, "later")), SourceThrottled),
        (CommandFailed("FETCH", Completion("NO", "INUSE", None, "locked")), SourceUnavailable),
        (
            CommandFailed("FETCH", Completion("NO", None, None, "Please try again later")),
            SourceUnavailable,
        ),
        (imaplib.IMAP4.error("LOGIN => NO [UNAVAILABLE] Temporary failure"), SourceThrottled),
    ],
)
def test_own_failures(source: IMAPSource, exc: Exception, expected: type[SourceError]) -> None:
    with pytest.raises(SourceError) as caught, source._map_errors("INBOX"):
        raise exc
    assert type(caught.value) is expected
    assert caught.value.folder == "INBOX"


def test_messages(source: IMAPSource) -> None:
    with pytest.raises(SourceAuthError) as auth, source._map_errors():
        raise imapclient.exceptions.LoginError("login failed: [AUTHENTICATIONFAILED] nope")
    assert auth.value.message == "Account 'work': IMAP login refused by imap.example.com:993."
    assert auth.value.hint is not None
    assert auth.value.hint.startswith("Check the account's password source.")

    with pytest.raises(SourceError) as cert, source._map_errors():
        raise ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert "certificate for imap.example.com did not verify" in cert.value.message
    assert cert.value.hint is not None and "ca_file" in cert.value.hint
    assert "tls_verify" in cert.value.hint
    assert not cert.value.transient  # retrying cannot make it verify (as POP3 and SMTP say)

    with pytest.raises(SourceError) as missing, source._map_errors("Nope"):
        raise CommandFailed("EXAMINE", Completion("NO", None, None, "Mailbox doesn't exist: Nope"))
    assert "'Nope'" in missing.value.message and missing.value.folder == "Nope"


def test_repr_hides_the_password(source: IMAPSource) -> None:
    assert "secret" not in repr(source)


def test_is_a_folder_source(source: IMAPSource) -> None:
    folder_source: FolderSource = source  # mypy checks the Protocol here
    assert folder_source.capabilities == frozenset()  # nothing before connect()


# -- scripted server --------------------------------------------------------------------------

LOGIN_CAPS = b"IMAP4rev1 LITERAL+ ENABLE UNSELECT CONDSTORE QRESYNC ESEARCH NAMESPACE"


class ScriptedServer:
    """Accepts one connection and answers each command line from a script.

    The script is a list of ``(regex for the command after the tag, reply)``;
    ``{tag}`` in the reply becomes the command's tag. The handshake (CAPABILITY,
    LOGIN) and LOGOUT are answered without being scripted.
    """

    def __init__(
        self,
        script: list[tuple[bytes, bytes]],
        *,
        login: bytes | None = None,
        greeting_caps: bytes = b"IMAP4rev1 LITERAL+ STARTTLS",
    ) -> None:
        self.script = list(script)
        self.greeting_caps = greeting_caps
        self.login = login or b"{tag} OK [CAPABILITY " + LOGIN_CAPS + b"] Logged in\r\n"
        self.received: list[bytes] = []
        self.errors: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as rfile:
            conn.sendall(b"* OK scripted ready\r\n")
            while True:
                line = rfile.readline()
                if not line:
                    return
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                literal = re.search(rb"\{(\d+)(\+?)\}\Z", rest)
                while literal is not None:  # a command that goes on after a literal
                    if not literal.group(2):
                        conn.sendall(b"+ go ahead\r\n")
                    rest += b"\r\n" + rfile.readline().rstrip(b"\r\n")
                    literal = re.search(rb"\{(\d+)(\+?)\}\Z", rest)
                self.received.append(rest)
                if rest.upper().startswith(b"CAPABILITY"):
                    reply = b"* CAPABILITY " + self.greeting_caps + b"\r\n{tag} OK done\r\n"
                elif rest.upper().startswith(b"LOGIN"):
                    reply = self.login
                elif rest.upper().startswith(b"LOGOUT"):
                    conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                elif not self.script:
                    self.errors.append(f"unscripted command {rest!r}")
                    reply = b"{tag} BAD unscripted\r\n"
                else:
                    pattern, reply = self.script.pop(0)
                    if not re.fullmatch(pattern, rest):
                        self.errors.append(f"expected {pattern!r}, got {rest!r}")
                if reply == b"<close>":
                    return
                conn.sendall(reply.replace(b"{tag}", tag))

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.close()
        assert not server.errors, server.errors


def serve(
    servers: list[ScriptedServer],
    script: list[tuple[bytes, bytes]],
    security: str = "plain",
    **kw: bytes,
) -> tuple[ScriptedServer, IMAPSource]:
    server = ScriptedServer(script, **kw)
    servers.append(server)
    source = IMAPSource(
        IMAPSettings(
            "127.0.0.1",
            server.port,
            security,  # type: ignore[arg-type]
            "me",
            "pw",
            account="work",
            timeout=5,
        )
    )
    return server, source


EXAMINE_HEAD = (
    b"* FLAGS (\\Seen)\r\n* 4 EXISTS\r\n* OK [UIDVALIDITY 77] x\r\n* OK [UIDNEXT 9] x\r\n"
)


def test_login_refused(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted, [], login=b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    )
    with pytest.raises(SourceAuthError) as caught:
        source.connect()
    assert str(caught.value.message) == (
        f"Account 'work': IMAP login refused by 127.0.0.1:{scripted[0].port}."
    )


def test_login_temporary_failure(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted, [], login=b"{tag} NO [UNAVAILABLE] Temporary authentication failure.\r\n"
    )
    with pytest.raises(SourceUnavailable):
        source.connect()


def test_qresync_delta(scripted: list[ScriptedServer]) -> None:
    server, source = serve(
        scripted,
        [
            (rb"ENABLE QRESYNC", b"* ENABLED QRESYNC\r\n{tag} OK enabled\r\n"),
            (
                rb'EXAMINE "INBOX" \(QRESYNC \(77 5\)\)',
                EXAMINE_HEAD
                + b"* OK [HIGHESTMODSEQ 20] x\r\n* VANISHED (EARLIER) 1:3\r\n"
                + b"* 1 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (19))\r\n{tag} OK [READ-ONLY] done\r\n",
            ),
        ],
    )
    selected = source.select("INBOX", qresync=(77, 5))
    assert selected.qresync and selected.highestmodseq == 20
    assert selected.vanished == frozenset({1, 2, 3})
    assert [(f.uid, f.flags, f.modseq) for f in selected.changed] == [(4, ("\\Seen",), 19)]
    source.close()
    # ENABLE and EXAMINE were pipelined: one round trip for the first QRESYNC select.
    assert server.received[2:4] == [b"ENABLE QRESYNC", b'EXAMINE "INBOX" (QRESYNC (77 5))']


@pytest.mark.parametrize(
    "answer",
    [
        b"* OK [HIGHESTMODSEQ 0] x\r\n* VANISHED (EARLIER) 1:3\r\n",
        b"* OK [HIGHESTMODSEQ 20] x\r\n* VANISHED (EARLIER) 1:zz\r\n",
    ],
    ids=["highestmodseq-0", "malformed-vanished"],
)
def test_qresync_distrusted(scripted: list[ScriptedServer], answer: bytes) -> None:
    _, source = serve(
        scripted,
        [
            (rb"ENABLE QRESYNC", b"* ENABLED QRESYNC\r\n{tag} OK enabled\r\n"),
            (rb"EXAMINE .*", EXAMINE_HEAD + answer + b"{tag} OK [READ-ONLY] done\r\n"),
        ],
    )
    with capture_logs() as logs:
        selected = source.select("INBOX", qresync=(77, 5))
    assert selected.highestmodseq is None and not selected.qresync
    assert selected.vanished == frozenset() and selected.exists == 4
    assert any(e["event"] == "imap.qresync.distrusted" for e in logs)
    source.close()


def test_examine_unavailable(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted, [(rb'EXAMINE "INBOX" \(CONDSTORE\)', b"{tag} NO [UNAVAILABLE] busy\r\n")]
    )
    with pytest.raises(SourceUnavailable) as caught:
        source.select("INBOX")
    assert caught.value.folder == "INBOX"
    source.close()


BODY_1 = b"Subject: a\r\n\r\n)\r\n{5}\r\nhello\r\n"


def select_then(script: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    examine = (
        rb"EXAMINE .*",
        EXAMINE_HEAD + b"* OK [HIGHESTMODSEQ 20] x\r\n{tag} OK [READ-ONLY] done\r\n",
    )
    return [examine, *script]


def test_fetch_with_unsolicited_responses_and_any_order(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted,
        select_then(
            [
                (
                    rb"UID FETCH 1:\* \(UID RFC822.SIZE\)",
                    b"* 1 FETCH (UID 1 RFC822.SIZE %d)\r\n* 2 FETCH (RFC822.SIZE 3 UID 2)\r\n"
                    % len(BODY_1)
                    + b"{tag} OK done\r\n",
                ),
                (
                    rb"UID FETCH 1:2 \(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK\[\] MODSEQ\)",
                    b"* 1 FETCH (BODY[] {%d}\r\n" % len(BODY_1)
                    + BODY_1
                    + b' UID 1 FLAGS (\\Recent \\Seen) INTERNALDATE " 7-Jul-1996 02:44:25 -0700"'
                    + b" RFC822.SIZE %d MODSEQ (3))\r\n" % len(BODY_1)
                    + b"* 2 FETCH (FLAGS (\\Deleted))\r\n"  # unsolicited, no UID
                    + b"* 5 EXISTS\r\n"
                    + b'* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 3 BODY[] "abc")\r\n'
                    + b"{tag} OK done\r\n",
                ),
            ]
        ),
    )
    source.select("INBOX")
    batches = list(source.fetch_messages(start_uid=1))
    assert [[m.uid for m in b] for b in batches] == [[1, 2]]
    first, second = batches[0]
    assert first.raw == BODY_1 and first.flags == ("\\Seen",) and first.modseq == 3
    assert first.internaldate is not None and first.internaldate.isoformat() == (
        "1996-07-07T09:44:25+00:00"
    )
    assert second.raw == b"abc" and second.size == 3
    source.close()


def test_missing_body_of_an_existing_message(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted,
        select_then(
            [
                (
                    rb"UID FETCH 3 \(UID RFC822.SIZE\)",
                    b"* 1 FETCH (UID 3 RFC822.SIZE 10)\r\n{tag} OK\r\n",
                ),
                (rb"UID FETCH 3 \(.*\)", b"* 1 FETCH (UID 3 BODY[] NIL)\r\n{tag} OK done\r\n"),
                (rb"NOOP", b"{tag} OK noop\r\n"),
                (rb"UID SEARCH UID 3", b"* SEARCH 3\r\n{tag} OK done\r\n"),
            ]
        ),
    )
    source.select("INBOX")
    with pytest.raises(SourceError) as caught:
        list(source.fetch_messages([3]))
    assert type(caught.value) is SourceError
    assert "UID 3" in caught.value.message and "'INBOX'" in caught.value.message
    source.close()


def test_bye_in_the_middle_of_a_fetch(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted,
        select_then(
            [
                (
                    rb"UID FETCH 1 \(UID RFC822.SIZE\)",
                    b"* 1 FETCH (UID 1 RFC822.SIZE 3)\r\n{tag} OK\r\n",
                ),
                (rb"UID FETCH 1 \(.*\)", b"* BYE server shutting down\r\n"),
            ]
        ),
    )
    source.select("INBOX")
    with pytest.raises(SourceUnavailable, match="shutting down"):
        list(source.fetch_messages([1]))
    assert not source.session.connected  # dropped: the stream cannot be trusted
    source.close()


def test_malformed_response_keeps_the_session(scripted: list[ScriptedServer]) -> None:
    _, source = serve(
        scripted,
        select_then(
            [
                (
                    rb"UID FETCH 1:\* \(UID FLAGS MODSEQ\)",
                    b"* 1 FETCH (UID 1 FLAGS \\Seen)\r\n{tag} OK\r\n",
                ),
                (
                    rb"UID SEARCH RETURN \(ALL\) ALL",
                    b'* ESEARCH (TAG "x") UID ALL 1:4\r\n{tag} OK\r\n',
                ),
            ]
        ),
    )
    source.select("INBOX")
    with pytest.raises(ProtocolViolation, match="FLAGS"):
        source.all_flags()
    assert source.uids() == [1, 2, 3, 4]  # same connection, still in step
    source.close()


def test_garbage_line_drops_the_connection(scripted: list[ScriptedServer]) -> None:
    _, source = serve(scripted, select_then([(rb"UID SEARCH .*", b"garbage\r\n")]))
    source.select("INBOX")
    with pytest.raises(ProtocolViolation):
        source.uids()
    assert not source.session.connected
    source.close()


def test_connection_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    source = IMAPSource(
        IMAPSettings("127.0.0.1", port, "plain", "me", "pw", account="work", timeout=2)
    )
    with pytest.raises(SourceUnavailable, match=f"127.0.0.1:{port}"):
        source.connect()


def test_fetch_needs_a_selected_folder() -> None:
    source = IMAPSource(IMAPSettings("127.0.0.1", 1, "plain", "me", "pw"))
    with pytest.raises(SourceError, match="select"):
        list(source.fetch_messages(start_uid=1))


def test_starttls_not_offered(scripted: list[ScriptedServer]) -> None:
    _, source = serve(scripted, [], "starttls", greeting_caps=b"IMAP4rev1")
    with pytest.raises(SourceError) as caught:
        source.connect()
    assert type(caught.value) is SourceError
    assert "does not offer STARTTLS" in caught.value.message


@pytest.mark.parametrize("literal_plus", [True, False], ids=["LITERAL+", "synchronizing"])
def test_folder_name_that_needs_a_literal(
    scripted: list[ScriptedServer], literal_plus: bool
) -> None:
    caps = LOGIN_CAPS if literal_plus else LOGIN_CAPS.replace(b"LITERAL+ ", b"")
    server, source = serve(
        scripted,
        [
            (
                rb"EXAMINE \{7\+?\}\r\nGr\xc3\xbc\xc3\x9fe \(CONDSTORE\)",
                EXAMINE_HEAD + b"{tag} OK [READ-ONLY] done\r\n",
            )
        ],
        login=b"{tag} OK [CAPABILITY " + caps + b"] Logged in\r\n",
    )
    # A server that sends raw UTF-8 names (not modified UTF-7) gets them back the same way.
    selected = source.select("Grüße")
    assert selected.exists == 4 and selected.name == "Grüße"
    sent = server.received[-1]
    assert sent.startswith(b"EXAMINE {7+}" if literal_plus else b"EXAMINE {7}\r\n")
    source.close()
