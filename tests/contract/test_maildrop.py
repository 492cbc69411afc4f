"""The MailDropSource contract, run against three real POP3 servers and the in-memory one.

One class of behaviour tests (vdirsyncer's ``StorageTests``, apscheduler's
parametrized data stores) over every maildrop syncer has: what the POP3
pipeline relies on -- stable UIDLs, LIST sizes that match the bytes, exact
bytes from RETR, deletion only at a successful QUIT -- must hold on Dovecot,
Cyrus and Courier POP3 and on the fake the pipeline tests use
(syncer.sources.memory), so the fake is checked against the servers here. Mail
arrives by IMAP APPEND to the user's INBOX, which each server's POP3 serves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from syncer.model import header_end
from syncer.sources.base import MailDropSource
from syncer.sources.memory import MemoryMaildrop
from syncer.sources.pop3.settings import POP3Settings
from syncer.sources.pop3.source import POP3Source
from tests.fixtures_servers import AnyServer
from tests.servers.dovecot import MailUser


@dataclass
class Maildrop:
    """A maildrop under test: how mail arrives, and how a session is opened."""

    deliver: Callable[[bytes], object]
    open: Callable[[], MailDropSource]
    opened: list[MailDropSource] = field(default_factory=list)

    def session(self) -> MailDropSource:
        source = self.open()
        self.opened.append(source)
        return source


def _memory() -> Maildrop:
    drop = MemoryMaildrop()
    return Maildrop(deliver=drop.deliver, open=drop.session)


def _server(server: AnyServer, user: MailUser) -> Maildrop:
    settings = POP3Settings(
        server.host, server.ports.pop3, "plain", user.name, user.password, account="contract"
    )
    return Maildrop(
        deliver=lambda raw: server.append(user.name, "INBOX", raw),
        open=lambda: POP3Source.open(settings),
    )


#: The real servers (fixture names of tests/fixtures_servers.py); one Cyrus layout is
#: enough, as POP3 serves only the INBOX.
SERVERS = ("dovecot", "cyrus_debian", "courier")


@pytest.fixture(
    params=["memory", *(pytest.param(name, marks=pytest.mark.integration) for name in SERVERS)]
)
def maildrop(request: pytest.FixtureRequest) -> Iterator[Maildrop]:
    if request.param == "memory":
        yield from _closing(_memory())
        return
    server: AnyServer = request.getfixturevalue(request.param)
    user = server.add_user()
    yield from _closing(_server(server, user))
    server.remove_user(user.name)


def _closing(backend: Maildrop) -> Iterator[Maildrop]:
    """The backend, then every session the test opened closed (before its user goes)."""
    yield backend
    for source in backend.opened:
        source.close()


def message(n: int, body: bytes = b"") -> bytes:
    head = f"From: a@example.com\r\nMessage-ID: <{n}.{uuid.uuid4().hex}@example.com>\r\n"
    return (head + f"Subject: contract {n}\r\n\r\n").encode() + (body or b"body\r\n")


class TestMailDropContract:
    def test_is_a_maildrop_source_and_starts_empty(self, maildrop: Maildrop) -> None:
        source: MailDropSource = maildrop.session()
        assert source.listing() == []
        assert {"UIDL", "TOP"} <= source.capabilities

    def test_listing_numbers_sizes_and_stable_uidls(self, maildrop: Maildrop) -> None:
        raws = [message(n) for n in range(3)]
        for raw in raws:
            maildrop.deliver(raw)
        first = maildrop.session().listing()
        assert [e.number for e in first] == [1, 2, 3]
        assert [e.size for e in first] == [len(raw) for raw in raws]
        uidls = [e.uidl for e in first]
        assert None not in uidls and len(set(uidls)) == 3
        assert [e.uidl for e in maildrop.session().listing()] == uidls

    def test_retrieve_gives_the_exact_bytes(self, maildrop: Maildrop) -> None:
        raw = message(1, b".\r\n..two dots\r\n.leading dot\r\n8-bit \xc3\xa4\r\n")
        maildrop.deliver(raw)
        source = maildrop.session()
        (entry,) = source.listing()
        got = source.retrieve(entry)
        assert (got.raw, got.size, got.folder, got.uid) == (raw, len(raw), "INBOX", 0)
        assert got.uidl == entry.uidl

    def test_headers_are_the_header_block(self, maildrop: Maildrop) -> None:
        raw = message(1)
        maildrop.deliver(raw)
        assert maildrop.session().headers(1) == raw[: header_end(raw)]

    def test_quit_removes_exactly_the_marked_messages(self, maildrop: Maildrop) -> None:
        raws = [message(n) for n in range(3)]
        for raw in raws:
            maildrop.deliver(raw)
        source = maildrop.session()
        entries = source.listing()
        source.delete(2)
        source.quit()
        after = maildrop.session().listing()
        assert [e.uidl for e in after] == [entries[0].uidl, entries[2].uidl]

    def test_a_session_closed_without_quit_deletes_nothing(self, maildrop: Maildrop) -> None:
        maildrop.deliver(message(1))
        source = maildrop.session()
        source.delete(1)
        source.close()
        assert len(maildrop.session().listing()) == 1

    def test_a_session_sees_the_maildrop_as_it_was_at_login(self, maildrop: Maildrop) -> None:
        maildrop.deliver(message(1))
        source = maildrop.session()
        maildrop.deliver(message(2))
        assert [e.number for e in source.listing()] == [1]
        assert len(maildrop.session().listing()) == 2
