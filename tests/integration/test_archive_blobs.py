"""Blobs through the store: both backends, corruption found by verify, no rewrites.

Why: the raw message is the truth. A blob altered in the table or on disk must
be reported by ``syncer verify`` and refused by ``get_raw``, and storing a body
the archive already has must not touch it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from syncer.archive.blobs import FSBlobStore, compress
from syncer.archive.models import blobs
from syncer.archive.store import ArchiveStore
from syncer.errors import ArchiveError, BlobCorrupt
from syncer.model import RemoteMessage

ACCOUNT = "work"


def message(uid: int, size: int = 200) -> RemoteMessage:
    head = b"Message-ID: <m%d@example.org>\r\nSubject: s%d\r\n\r\n" % (uid, uid)
    raw = head + (b"body %d " % uid) * (size // 8)
    return RemoteMessage(folder="INBOX", uid=uid, raw=raw)


def sha(msg: RemoteMessage) -> str:
    return hashlib.sha256(msg.raw).hexdigest()


@pytest.fixture
def fs_store(archive_url: str, tmp_path: Path) -> Iterator[ArchiveStore]:
    store = ArchiveStore.open(archive_url, blob_store=f"fs:{tmp_path / 'blobs'}", migrate=True)
    try:
        store.ensure_account(ACCOUNT, "imap")
        yield store
    finally:
        store.close()


def test_verify_finds_a_blob_altered_in_the_table(archive_store: ArchiveStore) -> None:
    archive_store.ensure_account(ACCOUNT, "imap")
    batch = [message(uid) for uid in range(1, 6)]
    archive_store.archive_batch(ACCOUNT, "INBOX", 1, batch, None)
    checked: list[int] = []
    assert archive_store.verify(checked.append) == []
    assert sum(checked) == 5

    victim = sha(batch[2])
    with archive_store.engine.begin() as conn:
        conn.execute(
            update(blobs).where(blobs.c.sha256 == victim).values(data=compress(b"tampered"))
        )
    problems = archive_store.verify()
    assert len(problems) == 1
    bad = hashlib.sha256(b"tampered").hexdigest()
    assert problems[0].startswith(f"blob {victim} (message ")
    assert problems[0].endswith(f"stored bytes hash to {bad[:12]}…, expected {victim}")
    with pytest.raises(BlobCorrupt, match=victim):
        archive_store.get_raw(victim)
    assert archive_store.get_raw(sha(batch[0])) == batch[0].raw


def test_fs_backend_stores_files_and_verify_finds_altered_and_missing_ones(
    fs_store: ArchiveStore, tmp_path: Path
) -> None:
    batch = [message(uid, size=5000) for uid in range(1, 6)]
    assert fs_store.archive_batch(ACCOUNT, "INBOX", 1, batch, None) == 5
    disk = FSBlobStore(tmp_path / "blobs")
    with fs_store.engine.connect() as conn:
        rows = conn.execute(select(blobs.c.sha256, blobs.c.data)).all()
    assert {row.sha256 for row in rows} == {sha(m) for m in batch}
    assert all(row.data is None for row in rows)
    for msg in batch:
        path = disk.path(sha(msg))
        assert path == tmp_path / "blobs" / sha(msg)[:2] / sha(msg)[2:4] / f"{sha(msg)}.zst"
        assert path.is_file()
        assert fs_store.get_raw(sha(msg)) == msg.raw
    assert not list((tmp_path / "blobs").rglob("*.tmp"))
    assert fs_store.verify() == []
    assert fs_store.status().blob_store == f"fs:{tmp_path / 'blobs'}"

    altered, missing = sha(batch[0]), sha(batch[1])
    disk.path(altered).write_bytes(compress(b"not the message"))
    disk.path(missing).unlink()
    problems = sorted(fs_store.verify())
    assert len(problems) == 2
    by_sha = {line.split()[1]: line for line in problems}
    assert "stored bytes hash to" in by_sha[altered]
    assert f"file missing: {disk.path(missing)}" in by_sha[missing]
    with pytest.raises(BlobCorrupt, match=altered):
        fs_store.get_raw(altered)
    with pytest.raises(BlobCorrupt, match="missing"):
        fs_store.get_raw(missing)


def test_writing_an_existing_blob_is_a_no_op(fs_store: ArchiveStore, tmp_path: Path) -> None:
    msg = message(1)
    fs_store.archive_batch(ACCOUNT, "INBOX", 1, [msg], None)
    path = FSBlobStore(tmp_path / "blobs").path(sha(msg))
    before = path.stat()
    with fs_store.engine.connect() as conn:
        created = conn.execute(select(blobs.c.created_at)).scalar_one()
    again = RemoteMessage(folder="Archive", uid=7, raw=msg.raw)
    assert fs_store.archive_batch(ACCOUNT, "Archive", 3, [again], None) == 1
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    with fs_store.engine.connect() as conn:
        assert conn.execute(select(blobs.c.created_at)).scalar_one() == created


def test_db_blobs_written_before_a_switch_to_fs_still_read(
    archive_url: str, tmp_path: Path
) -> None:
    msg = message(1)
    with ArchiveStore.open(archive_url, migrate=True) as db:
        db.ensure_account(ACCOUNT, "imap")
        db.archive_batch(ACCOUNT, "INBOX", 1, [msg], None)
    with ArchiveStore.open(archive_url, blob_store=f"fs:{tmp_path / 'b'}") as fs:
        assert fs.get_raw(sha(msg)) == msg.raw
        other = message(2)
        fs.archive_batch(ACCOUNT, "INBOX", 1, [other], None)
        assert fs.verify() == []
    with ArchiveStore.open(archive_url) as db:
        with pytest.raises(ArchiveError, match="stored on disk"):
            db.get_raw(sha(other))
        [problem] = db.verify()
        assert problem.startswith(f"blob {sha(other)} (message ")


def test_arbitrary_bytes_round_trip_through_the_store(
    archive_store: ArchiveStore, tmp_path: Path
) -> None:
    archive_store.ensure_account(ACCOUNT, "imap")
    uids = iter(range(1, 10**6))

    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.binary(max_size=4096), min_size=1, max_size=5))
    def round_trip(raws: list[bytes]) -> None:
        batch = [RemoteMessage(folder="INBOX", uid=next(uids), raw=raw) for raw in raws]
        archive_store.archive_batch(ACCOUNT, "INBOX", 1, batch, None)
        for raw in raws:
            assert archive_store.get_raw(hashlib.sha256(raw).hexdigest()) == raw

    round_trip()
    assert archive_store.verify() == []


def test_blob_files_are_private(fs_store: ArchiveStore, tmp_path: Path) -> None:
    msg = message(1)
    fs_store.archive_batch(ACCOUNT, "INBOX", 1, [msg], None)
    mode = os.stat(FSBlobStore(tmp_path / "blobs").path(sha(msg))).st_mode & 0o777
    assert mode == 0o600


def test_a_missing_blob_file_is_rewritten_when_the_body_comes_again(
    fs_store: ArchiveStore, tmp_path: Path
) -> None:
    msg = message(1)
    fs_store.archive_batch(ACCOUNT, "INBOX", 1, [msg], None)
    path = FSBlobStore(tmp_path / "blobs").path(sha(msg))
    path.unlink()
    assert len(fs_store.verify()) == 1
    again = RemoteMessage(folder="Archive", uid=3, raw=msg.raw)
    fs_store.archive_batch(ACCOUNT, "Archive", 1, [again], None)
    assert path.is_file()
    assert fs_store.verify() == []
