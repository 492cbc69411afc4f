"""After a UIDVALIDITY reset the pipeline re-lists the folder without downloading
bodies it already holds, and the server's EMAILID (RFC 8474) wins over header
fingerprints where the server offers it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from structlog.testing import capture_logs

from syncer.archive.account import AccountArchive
from syncer.archive.engine import upgrade
from syncer.archive.store import ArchiveStore
from syncer.sources.memory import ALL_CAPABILITIES, MemorySource
from syncer.sync.folders import SyncOptions, sync_folders

ACCOUNT = "acct"
HEADER = b"Subject: same header\r\nMessage-ID: <dup@example.com>\r\n\r\n"


def _store(tmp_path: Path) -> ArchiveStore:
    url = f"sqlite:///{tmp_path}/a.db"
    upgrade(url)
    store = ArchiveStore.open(url)
    store.ensure_account(ACCOUNT, "imap")
    return store


def _live(store: ArchiveStore, server: MemorySource) -> dict[int, str]:
    validity = server.uidvalidity("INBOX")
    rows = store.entries(ACCOUNT, "INBOX")
    return {uid: sha for uid, v, sha, _f, gone in rows if v == validity and not gone}


def _expected(server: MemorySource) -> dict[int, str]:
    return {u: hashlib.sha256(raw).hexdigest() for u, (raw, _f) in server.contents("INBOX").items()}


def test_reset_relists_without_downloading_known_bodies(tmp_path: Path) -> None:
    server = MemorySource(ALL_CAPABILITIES)
    for n in range(20):
        server.append("INBOX", f"Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode(), ["\\Seen"])
    with _store(tmp_path) as store:
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        server.reset_uidvalidity("INBOX")
        before = server.bodies_fetched
        (summary,) = sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        assert server.bodies_fetched == before
        assert summary.reused == 20 and summary.new == 0
        assert _live(store, server) == _expected(server)


def test_emailid_tells_apart_bodies_whose_headers_are_identical(tmp_path: Path) -> None:
    # Two different bodies of the same size behind one identical header: a header
    # fingerprint cannot tell them apart, the server's EMAILID can.
    server = MemorySource(ALL_CAPABILITIES | {"OBJECTID"})
    server.append("INBOX", HEADER + b"first body\r\n")
    server.append("INBOX", HEADER + b"other body\r\n")
    with _store(tmp_path) as store:
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        server.reset_uidvalidity("INBOX")
        before = server.bodies_fetched
        (summary,) = sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        assert server.bodies_fetched == before
        assert summary.reused == 2
        assert _live(store, server) == _expected(server)


def _generations(store: ArchiveStore) -> int:
    return len({v for _u, v, _s, _f, _g in store.entries(ACCOUNT, "INBOX")})


def test_a_uidvalidity_that_changes_every_run_moves_entries_instead_of_adding_them(
    tmp_path: Path,
) -> None:
    """Issue 20 #7 (the real server is in test_sync_servers): the second change with the
    same messages moves the live entries; a message that arrived meanwhile is downloaded,
    and one warning is given, once."""
    server = MemorySource(ALL_CAPABILITIES)
    for n in range(6):
        server.append("INBOX", f"Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode())
    with _store(tmp_path) as store, capture_logs() as logs:
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        for run in range(3):
            server.reset_uidvalidity("INBOX")
            if run == 2:
                server.append("INBOX", b"Message-ID: <new@x>\r\n\r\nnew\r\n")
            before = server.bodies_fetched
            (summary,) = sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
            assert server.bodies_fetched - before == (1 if run == 2 else 0)
            assert summary.new == (1 if run == 2 else 0)
            assert _live(store, server) == _expected(server)
        assert _generations(store) == 2
        assert len(store.entries(ACCOUNT, "INBOX")) == 6 + 7
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "folder.uidvalidity_changed",
            "folder.uidvalidity_unstable",
        ]
        assert store.folders(ACCOUNT)["INBOX"].uidvalidity_unstable
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())  # the UIDVALIDITY holds
        assert not store.folders(ACCOUNT)["INBOX"].uidvalidity_unstable


def test_a_second_reset_with_other_contents_is_an_ordinary_reset(tmp_path: Path) -> None:
    """A message expunged between the resets: the contents differ, so the old entries
    are superseded (nothing is moved onto a message that is not there)."""
    server = MemorySource(ALL_CAPABILITIES)
    for n in range(4):
        server.append("INBOX", f"Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode())
    with _store(tmp_path) as store:
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        server.reset_uidvalidity("INBOX")
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        server.remove("INBOX", 1)
        server.reset_uidvalidity("INBOX")
        (summary,) = sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        assert summary.reused == 3
        assert _generations(store) == 3
        assert _live(store, server) == _expected(server)
        assert not store.folders(ACCOUNT)["INBOX"].uidvalidity_unstable


def test_identical_headers_are_never_moved(tmp_path: Path) -> None:
    """Two bodies behind one header fingerprint could swap places in a move: an ordinary
    reset (here EMAILID decides) instead."""
    server = MemorySource(ALL_CAPABILITIES | {"OBJECTID"})
    server.append("INBOX", HEADER + b"first body\r\n")
    server.append("INBOX", HEADER + b"other body\r\n")
    with _store(tmp_path) as store:
        sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        for _ in range(2):
            server.reset_uidvalidity("INBOX")
            sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
        assert _generations(store) == 3
        assert _live(store, server) == _expected(server)
