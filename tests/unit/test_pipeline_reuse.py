"""After a UIDVALIDITY reset the pipeline re-lists the folder without downloading
bodies it already holds, and the server's EMAILID (RFC 8474) wins over header
fingerprints where the server offers it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
        sync_folders(server, store, ACCOUNT, SyncOptions())
        server.reset_uidvalidity("INBOX")
        before = server.bodies_fetched
        (summary,) = sync_folders(server, store, ACCOUNT, SyncOptions())
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
        sync_folders(server, store, ACCOUNT, SyncOptions())
        server.reset_uidvalidity("INBOX")
        before = server.bodies_fetched
        (summary,) = sync_folders(server, store, ACCOUNT, SyncOptions())
        assert server.bodies_fetched == before
        assert summary.reused == 2
        assert _live(store, server) == _expected(server)
