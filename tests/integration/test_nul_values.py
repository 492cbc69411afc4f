"""One hostile value never blocks a folder, on SQLite and on PostgreSQL (issue 16, item 2).

PostgreSQL text refuses NUL: one message with ``\\x00`` in its Message-ID failed
its whole batch on every run (0 of 5 archived; SQLite archived all 5), ``syncer
import mbox`` failed the same way, and a folder name with NUL failed the whole
account. Every text value from mail or a server is now made storable (NUL ->
U+FFFD) by the archive's column types; the raw bytes stay untouched.

The Dovecot test is the issue's reproduction over real IMAP. IMAP cannot carry a
NUL in a folder name, a flag or a UIDL (RFC 3501 atoms and quoted strings exclude
it; Dovecot refuses it), so those come from :class:`MemorySource`, syncer's own
in-memory adapter standing in for a server that sends them (a scripted source,
not a real server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from syncer.archive.account import AccountArchive
from syncer.archive.models import messages
from syncer.archive.search.document import IndexRow
from syncer.archive.store import ArchiveStore
from syncer.errors import ArchiveError
from syncer.mime.parsed import NormalizedMessage
from syncer.model import RemoteMessage
from syncer.sources.memory import ALL_CAPABILITIES, MemorySource
from syncer.sync.folders import SyncOptions, sync_folders
from syncer.sync.normalize import normalize_pending
from tests.servers.dovecot import DovecotServer, MailUser

HOSTILE = (
    b'From: "Eve\x00" <eve@example.com>\r\nTo: a@exa\x00mple.com\r\n'
    b"Message-ID: <nul\x00id@example.com>\r\nSubject: nul\x00 subject\r\n"
    b"In-Reply-To: <x\x00y@z>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nbody with a \x00 in it\r\n"
    b'--b\r\nContent-Type: text/plain; name="fi\x00le.txt"\r\n'
    b'Content-Disposition: attachment; filename="fi\x00le.txt"\r\n\r\nattached\r\n--b--\r\n'
)


#: The same through Dovecot: it turns a raw NUL into 0x80 when it serves a message, but
#: RFC 2047 encoded words and RFC 2231 parameters decode to NUL all the same.
ENCODED = (
    b"From: =?utf-8?q?Eve=00?= <eve@example.com>\r\nTo: a@example.com\r\n"
    b"Message-ID: <nul\x00id@example.com>\r\nSubject: =?utf-8?q?nul=00_subject?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    b"--b\r\nContent-Type: text/plain\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''fi%00le.txt\r\n\r\nattached\r\n--b--\r\n"
)


def _plain(n: int) -> bytes:
    return (
        f"From: a@example.com\r\nMessage-ID: <p{n}@x>\r\nSubject: fine {n}\r\n\r\nok\r\n".encode()
    )


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_nul_in_headers_does_not_block_the_folder_on_dovecot(
    tmp_path: Path, archive_url: str, dovecot: DovecotServer, dovecot_user: MailUser, protocol: str
) -> None:
    # Dovecot's IMAP serves a raw NUL as 0x80, its POP3 as it is; encoded words decode to
    # NUL either way.
    port = dovecot.ports.imaps if protocol == "imap" else dovecot.ports.pop3s
    raws = [_plain(0), _plain(1), ENCODED, HOSTILE, _plain(3)]
    dovecot.seed(dovecot_user.name, [("INBOX", raw, (), None) for raw in raws])
    config = tmp_path / "syncer.toml"
    config.write_text(
        f'[archive]\nurl = "{archive_url}"\n\n[[accounts]]\nname = "mail"\n'
        f'protocol = "{protocol}"\nhost = "{dovecot.host}"\nport = {port}\nsecurity = "tls"\n'
        f'ca_file = "{dovecot.tls.ca}"\nusername = "{dovecot_user.name}"\n'
        'password_env = "TEST_NUL_PASSWORD"\n'
    )
    env = {**os.environ, "TEST_NUL_PASSWORD": dovecot_user.password}

    def syncer(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "syncer", "--config", str(config), *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    assert syncer("init").returncode == 0
    synced = syncer("sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)[0]["new"] == 5
    with ArchiveStore.open(archive_url) as store:
        assert store.message_count() == 5
        assert store.normalization_backlog() == 0
        with store.engine.connect() as conn:
            ids = conn.execute(select(messages.c.message_id_header)).scalars().all()
        assert len(ids) == 5 and not any("\x00" in i for i in ids), ids
    found = syncer("search", "subject:fine", "--json")
    assert found.returncode == 0 and len(json.loads(found.stdout)) == 3
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From x Mon Jan  1 00:00:00 2024\n" + HOSTILE.replace(b"\r\n", b"\n"))
    imported = syncer("import", "mbox", str(mbox), "--account", "old")
    assert imported.returncode == 0, imported.stderr


def test_nul_in_folder_names_and_flags_does_not_fail_the_account(archive_url: str) -> None:
    server = MemorySource(ALL_CAPABILITIES)
    server.append("INBOX", _plain(1))
    server.create_folder("Odd\x00Name")
    server.append("Odd\x00Name", _plain(2), flags=("$Tag\x00", "\\Seen"))
    server.append("Odd\x00Name", HOSTILE)
    with ArchiveStore.open(archive_url, migrate=True) as store:
        store.ensure_account("acct", "imap")
        summary = sync_folders(server, AccountArchive(store, "acct"), SyncOptions())
        assert all(f.error is None for f in summary), summary
        assert store.count_entries("acct") == 3
        normalize_pending(store, workers=1)
        server.append("Odd\x00Name", _plain(3))
        again = sync_folders(server, AccountArchive(store, "acct"), SyncOptions())
        assert sum(f.new for f in again) == 1, "the odd folder is found again, not re-created"
        assert store.count_entries("acct") == 4
        assert store.verify() == []


def test_a_message_the_database_still_refuses_is_recorded_failed_and_the_rest_saved(
    archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever else a database might refuse in one message (a value no conversion
    # foresaw): the batch is saved message by message and that one recorded as failed.
    store = archive_store
    store.ensure_account("acct", "imap")
    raws = [_plain(1), b"Subject: poison\r\n\r\nx\r\n", _plain(2)]
    batch = [RemoteMessage(folder="INBOX", uid=n + 1, raw=raw) for n, raw in enumerate(raws)]
    store.archive_batch("acct", "INBOX", 1, batch, None)
    real = store.save_normalized

    def refusing(
        results: Sequence[tuple[int, NormalizedMessage]],
        index_rows: Mapping[int, Sequence[IndexRow]] | None = None,
    ) -> None:
        if any(r.subject == "poison" for _pk, r in results):
            raise ArchiveError("the database refused a value")
        real(results, index_rows)

    monkeypatch.setattr(store, "save_normalized", refusing)
    counts = normalize_pending(store, workers=1)
    assert (counts.processed, counts.ok, counts.failed) == (3, 2, 1)
    assert store.normalization_backlog() == 0
