"""The pre-login capabilities come from the greeting when it carries them.

Why: imaplib sends ``CAPABILITY`` after every greeting, a round trip that a
greeting with ``[CAPABILITY ...]`` (Dovecot's) makes unnecessary. A scripted
server on loopback shows which commands the client really sends, for both
kinds of greeting, and that the post-login list still comes from LOGIN's answer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from syncer.sources.imap.connection import open_client

PRE = b"IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN"
POST = b"IMAP4rev1 LITERAL+ CONDSTORE QRESYNC LIST-STATUS"


class ScriptedServer:
    """Answers one connection: greeting, CAPABILITY, LOGIN and LOGOUT; records commands."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.commands: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(self.greeting + b"\r\n")
            for line in lines:
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                command = rest.split(b" ", 1)[0].upper()
                self.commands.append(command)
                if command == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY " + PRE + b"\r\n" + tag + b" OK done\r\n")
                elif command == b"LOGIN":
                    conn.sendall(tag + b" OK [CAPABILITY " + POST + b"] Logged in\r\n")
                elif command == b"LOGOUT":
                    conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    ("greeting", "expected"),
    [
        (b"* OK [CAPABILITY " + PRE + b"] ready", [b"LOGIN", b"LOGOUT"]),
        (b"* OK ready", [b"CAPABILITY", b"LOGIN", b"LOGOUT"]),
    ],
)
def test_greeting_capabilities_save_a_round_trip(
    serve: list[ScriptedServer], greeting: bytes, expected: list[bytes]
) -> None:
    server = ScriptedServer(greeting)
    serve.append(server)
    client, capabilities = open_client(
        "127.0.0.1", server.port, "plain", "me", "secret", context=None, timeout=5
    )
    client.logout()
    server.thread.join(5)
    assert server.commands == expected
    assert capabilities == frozenset(POST.decode().upper().split())
