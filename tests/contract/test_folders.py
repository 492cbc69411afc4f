"""The FolderSource contract, run against Dovecot IMAP and MemorySource, each in the
full and the fallback capability profile, and against Cyrus IMAP (Debian's and
upstream's namespace layouts) and Courier-IMAP.

One class of behaviour tests (vdirsyncer's ``StorageTests``, apscheduler's
parametrized data stores) over every folder source: what the IMAP pipeline
relies on -- STATUS and EXAMINE counts, exact bytes in UID order, bounded
batches, ``n:*`` not returning a message below ``n``, flags without
``\\Recent``, MODSEQ only with CONDSTORE, header fingerprints, UID EXPUNGE of
exactly the UIDs named -- must hold on the real server and on the fake the
property tests use (syncer.sources.memory), so the fake is checked against
Dovecot here. The "full" profiles offer CONDSTORE, QRESYNC and LIST-STATUS;
the "fallback" ones do not. Cyrus offers CONDSTORE and QRESYNC; Courier offers
neither, so its flags come without MODSEQ and ``flags_since`` is refused, as on the
fallback profiles. A message with no blank line after its header is kept byte
for byte by Dovecot, refused by Cyrus ("Message contains invalid header") and stored
with other bytes by Courier; ``headerless`` says which, and the tests that use such
a message elsewhere leave it out where the server does not keep it. On
``INBOX.``-style servers the folder under test is
``INBOX.Contract``: a source speaks wire names.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pytest

from syncer.errors import SourceError, UIDValidityChanged
from syncer.model import RemoteMessage, header_end
from syncer.sources.base import FolderSource
from syncer.sources.folder_names import FolderNaming, decode_level
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource
from syncer.sources.memory import ALL_CAPABILITIES, BASIC_CAPABILITIES, MemorySource
from tests.fixtures_servers import AnyServer
from tests.servers.dovecot import MailUser

WHEN = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


Headerless = Literal["kept", "refused", "altered"]


@dataclass
class Server:
    """A folder store under test: how another client changes it, and how to open it."""

    deliver: Callable[[str, bytes, Sequence[str]], int]
    set_flags: Callable[[str, int, Sequence[str]], None]
    remove: Callable[[str, int], None]
    open: Callable[[], FolderSource]
    condstore: bool
    folder: str = "Contract"
    headerless: Headerless = "kept"
    opened: list[FolderSource] = field(default_factory=list)

    def source(self) -> FolderSource:
        source = self.open()
        self.opened.append(source)
        return source


def _memory(capabilities: frozenset[str]) -> Server:
    memory = MemorySource(capabilities)
    return Server(
        deliver=lambda folder, raw, flags: memory.append(folder, raw, flags, WHEN),
        set_flags=memory.set_flags,
        remove=memory.remove,
        open=lambda: memory,
        condstore="CONDSTORE" in capabilities,
    )


def _imap(server: AnyServer, user: MailUser, condstore: bool, headerless: Headerless) -> Server:
    settings = IMAPSettings(
        server.host, server.ports.imap, "plain", user.name, user.password, account="contract"
    )
    return Server(
        deliver=lambda folder, raw, flags: server.append(user.name, folder, raw, flags, WHEN),
        set_flags=lambda folder, uid, flags: server.set_flags(user.name, folder, [uid], flags),
        remove=lambda folder, uid: server.expunge(user.name, folder, [uid]),
        open=lambda: IMAPSource.open(settings),
        condstore=condstore,
        folder=server.wire_name("Contract"),
        headerless=headerless,
    )


#: The real servers: fixture name, whether it offers CONDSTORE, what it does with a
#: message that has no blank line after its header.
_REAL: dict[str, tuple[str, bool, Headerless]] = {
    "dovecot-full": ("dovecot", True, "kept"),  # the full profile advertises everything
    "dovecot-fallback": ("dovecot_fallback", False, "kept"),
    "cyrus-debian": ("cyrus_debian", True, "refused"),
    "cyrus-upstream": ("cyrus_upstream", True, "refused"),
    "courier": ("courier", False, "altered"),
}


@pytest.fixture(
    params=[
        "memory-full",
        "memory-fallback",
        *(pytest.param(name, marks=pytest.mark.integration) for name in _REAL),
    ]
)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    real: AnyServer | None = None
    user: MailUser | None = None
    if request.param == "memory-full":
        backend = _memory(ALL_CAPABILITIES)
    elif request.param == "memory-fallback":
        backend = _memory(BASIC_CAPABILITIES)
    else:  # the session's servers (tests/fixtures_*.py), a fresh user each time
        fixture, condstore, headerless = _REAL[request.param]
        real = request.getfixturevalue(fixture)
        user = real.add_user()
        backend = _imap(real, user, condstore, headerless)
    yield backend
    for source in backend.opened:
        source.close()
    if real is not None and user is not None:
        real.remove_user(user.name)


def message(n: int, body: bytes = b"") -> bytes:
    head = f"From: a@example.org\r\nMessage-ID: <{n}.{uuid.uuid4().hex}@example.org>\r\n"
    return (head + f"Subject: contract {n}\r\n\r\n").encode() + (body or f"body {n}\r\n".encode())


def fetched(source: FolderSource, **kw: object) -> list[RemoteMessage]:
    return [m for batch in source.fetch_messages(**kw) for m in batch]  # type: ignore[arg-type]


class TestFolderSourceContract:
    def test_list_folders_shows_the_counts(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(2)]
        listed = {f.name: f for f in server.source().list_folders()}
        status = listed[server.folder]
        assert status.selectable and status.messages == 2
        assert status.uidvalidity and status.uidnext is not None and status.uidnext > max(uids)
        assert (status.highestmodseq is not None) is server.condstore
        bare = {f.name: f for f in server.source().list_folders(with_status=False)}[server.folder]
        assert bare.messages is None and bare.uidvalidity is None

    def test_select_agrees_with_list(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(3)]
        source = server.source()
        status = {f.name: f for f in source.list_folders()}[server.folder]
        selected = source.select(server.folder)
        assert (selected.exists, selected.uidvalidity) == (3, status.uidvalidity)
        assert selected.uidnext == status.uidnext and selected.uidnext > max(uids)
        assert (selected.highestmodseq is not None) is server.condstore
        assert not selected.qresync and not selected.vanished

    def test_a_missing_folder_is_a_source_error(self, server: Server) -> None:
        server.deliver(server.folder, message(1), ())
        source = server.source()
        source.select(server.folder)
        missing = f"Missing-{uuid.uuid4().hex[:8]}"
        with pytest.raises(SourceError) as caught:
            source.select(missing)
        assert type(caught.value) is SourceError and caught.value.folder == missing
        with pytest.raises(SourceError):
            source.uids()  # the failed select left no folder selected

    def test_an_empty_folder(self, server: Server) -> None:
        server.remove(server.folder, server.deliver(server.folder, message(1), ()))
        source = server.source()
        assert source.select(server.folder).exists == 0
        assert fetched(source, start_uid=1) == [] and list(source.fetch_messages([])) == []
        assert source.uids() == [] and source.all_flags() == [] and source.fingerprints() == []

    def test_messages_come_byte_exact_in_uid_order(self, server: Server) -> None:
        raws = [message(1, b"line\r\n)\r\n{5}\r\n"), message(2, b"8-bit \xff\xfe\r\n")]
        if server.headerless == "kept":
            raws.append(b"X: y")
        uids = [server.deliver(server.folder, raw, ("\\Flagged",)) for raw in raws]
        source = server.source()
        source.select(server.folder)
        got = fetched(source)
        assert [(m.uid, m.raw, m.size) for m in got] == [
            (uid, raw, len(raw)) for uid, raw in zip(uids, raws, strict=True)
        ]
        assert all(m.folder == server.folder and m.flags == ("\\Flagged",) for m in got)
        assert all(m.internaldate == WHEN for m in got)
        assert all((m.modseq is not None) is server.condstore for m in got)

    def test_start_uid_and_explicit_uids(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(4)]
        source = server.source()
        source.select(server.folder)
        assert [m.uid for m in fetched(source, start_uid=uids[2])] == uids[2:]
        # "n:*" matches the highest UID even when n is above it: it must not come back.
        assert fetched(source, start_uid=uids[-1] + 10) == []
        wanted = {uids[0], uids[3], uids[3] + 100}
        assert [m.uid for m in fetched(source, uids=wanted)] == [uids[0], uids[3]]

    def test_batches_are_bounded_by_count_and_bytes(self, server: Server) -> None:
        sizes = [1_000, 1_000, 200_000, 1_000, 1_000, 1_000]
        uids = [
            server.deliver(server.folder, message(n, b"x" * size + b"\r\n"), ())
            for n, size in enumerate(sizes)
        ]
        source = server.source()
        source.select(server.folder)
        by_count = list(source.fetch_messages(batch_count=4))
        assert [len(b) for b in by_count] == [4, 2]
        by_bytes = [[m.uid for m in b] for b in source.fetch_messages(batch_bytes=50_000)]
        assert by_bytes == [uids[:2], uids[2:3], uids[3:]]  # the big one travels alone

    def test_flags_uids_and_expunges_by_another_client(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(3)]
        server.set_flags(server.folder, uids[1], ["\\Seen", "$Label"])
        server.remove(server.folder, uids[2])
        source = server.source()
        source.select(server.folder)
        assert source.uids() == uids[:2]
        flags = {f.uid: f for f in source.all_flags()}
        assert set(flags) == set(uids[:2])
        assert flags[uids[1]].flags == ("$Label", "\\Seen") and flags[uids[0]].flags == ()
        assert all((f.modseq is not None) is server.condstore for f in flags.values())

    def test_flags_since_needs_condstore(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(2)]
        source = server.source()
        selected = source.select(server.folder)
        if not server.condstore:
            with pytest.raises(SourceError):
                source.flags_since(1)
            return
        assert selected.highestmodseq is not None
        server.set_flags(server.folder, uids[0], ["\\Answered"])
        source.select(server.folder)
        changed = source.flags_since(selected.highestmodseq)
        assert [(f.uid, f.flags) for f in changed] == [(uids[0], ("\\Answered",))]
        assert changed[0].modseq is not None and changed[0].modseq > selected.highestmodseq

    def test_fingerprints_hash_the_header_block(self, server: Server) -> None:
        raws = [message(1), b"\r\nstarts with a blank line\r\n"]
        if server.headerless == "kept":
            raws.append(b"Subject: no blank line")
        uids = [server.deliver(server.folder, raw, ("\\Seen",)) for raw in raws]
        source = server.source()
        source.select(server.folder)
        prints = {p.uid: p for p in source.fingerprints()}
        for uid, raw in zip(uids, raws, strict=True):
            want = hashlib.sha256(raw[: header_end(raw)]).hexdigest()
            assert (prints[uid].header_sha256, prints[uid].size) == (want, len(raw))
            assert prints[uid].flags == ("\\Seen",) and prints[uid].internaldate == WHEN
        assert [p.uid for p in source.fingerprints([uids[1], uids[1] + 50])] == [uids[1]]

    def test_a_message_without_a_blank_line_after_its_header(self, server: Server) -> None:
        raw = b"Subject: no blank line"
        if server.headerless == "refused":  # Cyrus: "NO Message contains invalid header"
            with pytest.raises(Exception, match="invalid header"):
                server.deliver(server.folder, raw, ())
            return
        uid = server.deliver(server.folder, raw, ())
        source = server.source()
        source.select(server.folder)
        (got,) = fetched(source)
        assert got.uid == uid
        assert (got.raw == raw) is (server.headerless == "kept")  # Courier stores other bytes
        (printed,) = source.fingerprints([uid])
        assert printed.size == len(got.raw)
        header = got.raw[: header_end(got.raw)]
        if server.headerless == "altered":
            # Courier stores "Subject: no blank line\r\n" and answers BODY[HEADER] with
            # it cut after the CR, so the fingerprint does not match the stored bytes:
            # after a UIDVALIDITY reset such a message is downloaded again (nothing is
            # lost; one body is fetched twice).
            header = header[:-1]
        assert printed.header_sha256 == hashlib.sha256(header).hexdigest()

    def test_expunge_removes_exactly_the_uids_named(self, server: Server) -> None:
        uids = [server.deliver(server.folder, message(n), ()) for n in range(3)]
        source = server.source()
        uidvalidity = source.select(server.folder).uidvalidity
        assert source.expunge(server.folder, uidvalidity, [uids[0], uids[2]]) == [uids[0], uids[2]]
        with pytest.raises(SourceError):
            source.uids()  # no folder is selected afterwards
        source.select(server.folder)
        assert source.uids() == [uids[1]]

    def test_expunge_refuses_another_uidvalidity(self, server: Server) -> None:
        uid = server.deliver(server.folder, message(1), ())
        source = server.source()
        uidvalidity = source.select(server.folder).uidvalidity
        with pytest.raises(UIDValidityChanged):
            source.expunge(server.folder, uidvalidity + 1, [uid])
        source.select(server.folder)
        assert source.uids() == [uid]


# -- names (issue 20 #5) ---------------------------------------------------------------------

#: Personal folders by the names people see, and what every source must list for them.
NAMED = ("INBOX", "Archive/2024", "Überweisungen", "Trash")


@pytest.fixture(
    params=[
        "memory-inbox-prefix",
        pytest.param("courier", marks=pytest.mark.integration),
        pytest.param("cyrus_debian", marks=pytest.mark.integration),
        pytest.param("dovecot", marks=pytest.mark.integration),
    ]
)
def named(request: pytest.FixtureRequest) -> Iterator[tuple[Callable[[str], str], FolderSource]]:
    """A source holding one message in each of :data:`NAMED`, and its wire-name function
    (wire names modified-UTF-7 decoded, as the servers' test helpers spell them)."""
    if request.param == "memory-inbox-prefix":  # modelled on Courier: INBOX. and "."
        memory = MemorySource(naming=FolderNaming("INBOX.", ".", (("shared.", "."),)))
        for n, folder in enumerate(NAMED):
            memory.append(memory.naming.wire(folder), message(n), (), WHEN)
        yield (lambda shown: decode_level(memory.naming.wire(shown))), memory
        return
    server = request.getfixturevalue(request.param)
    user = server.add_user()
    try:
        for n, folder in enumerate(NAMED):
            server.append(user.name, folder, message(n), (), WHEN)
        source = IMAPSource.open(
            IMAPSettings(
                server.host, server.ports.imap, "plain", user.name, user.password, account="c"
            )
        )
        try:
            yield server.wire_name, source
        finally:
            source.close()
    finally:
        server.remove_user(user.name)


def test_folders_show_their_name_within_the_personal_namespace(
    named: tuple[Callable[[str], str], FolderSource],
) -> None:
    """``display_name`` is the personal name with ``/`` between levels on every source;
    ``name`` stays the wire name the protocol uses (``INBOX.Archive.2024`` on Courier)."""
    wire_name, source = named
    listed = {f.display_name: f for f in source.list_folders() if f.selectable}
    assert set(NAMED) <= set(listed)
    for shown in NAMED:
        assert decode_level(listed[shown].name) == wire_name(shown)
        assert source.select(listed[shown].name).exists == 1
