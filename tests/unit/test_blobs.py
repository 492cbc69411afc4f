"""Blob stores on their own: round trips, atomic and idempotent writes, verified reads.

Why: every archived byte goes through these two backends; a property test over
arbitrary bytes is the cheapest proof that compress → store → load is the
identity, and the failure cases are what ``syncer verify`` relies on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.archive.blobs import (
    BlobStore,
    DBBlobStore,
    FSBlobStore,
    compress,
    decompress,
    open_blob_store,
)
from syncer.archive.workers import Workers
from syncer.errors import ArchiveError, BlobCorrupt


@pytest.fixture(scope="module")
def fs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@given(raw=st.binary(max_size=64 * 1024))
def test_db_store_round_trips_arbitrary_bytes(raw: bytes) -> None:
    store = DBBlobStore()
    blob = store.put(raw)
    assert blob.sha256 == hashlib.sha256(raw).hexdigest()
    assert blob.size == len(raw)
    assert blob.data is not None and blob.stored_size == len(blob.data)
    assert store.load(blob.sha256, blob.data) == raw
    assert store.check(blob.sha256, blob.size, blob.data) is None


@given(raw=st.binary(max_size=64 * 1024))
def test_fs_store_round_trips_arbitrary_bytes(fs_root: Path, raw: bytes) -> None:
    store = FSBlobStore(fs_root)
    blob = store.put(raw)
    assert blob.data is None
    assert store.path(blob.sha256).stat().st_size == blob.stored_size
    assert store.load(blob.sha256, None) == raw
    assert store.check(blob.sha256, blob.size, None) is None


@pytest.mark.parametrize("threads", [1, 4])
def test_batches_keep_their_order_on_threads(tmp_path: Path, threads: int) -> None:
    raws = [bytes([i]) * (i * 37_000) for i in range(1, 40)]
    items = [(hashlib.sha256(raw).hexdigest(), raw) for raw in raws]
    workers = Workers(threads)
    try:
        for store in (DBBlobStore(), FSBlobStore(tmp_path)):
            stored = store.store(items, workers=workers)
            assert [blob.sha256 for blob in stored] == [sha for sha, _ in items]
            for blob, raw in zip(stored, raws, strict=True):
                assert store.load(blob.sha256, blob.data) == raw
    finally:
        workers.close()


def test_fs_write_is_atomic_and_an_existing_blob_is_not_rewritten(tmp_path: Path) -> None:
    store = FSBlobStore(tmp_path)
    blob = store.put(b"hello")
    path = store.path(blob.sha256)
    assert path.relative_to(tmp_path).parts == (
        blob.sha256[:2],
        blob.sha256[2:4],
        f"{blob.sha256}.zst",
    )
    before = path.stat()
    again = store.put(b"hello")
    after = path.stat()
    assert again == blob
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]


def test_reads_are_verified(tmp_path: Path) -> None:
    db = DBBlobStore()
    blob = db.put(b"the truth")
    with pytest.raises(BlobCorrupt, match=blob.sha256):
        db.load(blob.sha256, compress(b"a lie"))
    with pytest.raises(BlobCorrupt, match="cannot be decompressed"):
        db.load(blob.sha256, b"not zstd at all")
    with pytest.raises(ArchiveError, match="stored on disk"):
        db.load(blob.sha256, None)
    assert "hash to" in (db.check(blob.sha256, blob.size, compress(b"a lie")) or "")
    assert "size recorded as 99" in (db.check(blob.sha256, 99, blob.data) or "")

    fs = FSBlobStore(tmp_path)
    blob = fs.put(b"the truth")
    path = fs.path(blob.sha256)
    path.write_bytes(path.read_bytes()[:-3])  # truncated
    assert fs.check(blob.sha256, blob.size, None) is not None
    with pytest.raises(BlobCorrupt, match=blob.sha256):
        fs.load(blob.sha256, None)
    path.unlink()
    assert fs.check(blob.sha256, blob.size, None) == f"file missing: {path}"
    with pytest.raises(BlobCorrupt, match="missing"):
        fs.load(blob.sha256, None)
    # A row written by the database backend is still readable through the disk backend.
    assert fs.load(blob.sha256, compress(b"the truth")) == b"the truth"


def test_large_blobs_are_checked_in_chunks(tmp_path: Path) -> None:
    raw = bytes(range(256)) * 20_000  # 5 MB, several read chunks
    fs = FSBlobStore(tmp_path)
    blob = fs.put(raw)
    assert fs.check(blob.sha256, len(raw), None) is None
    assert decompress(fs.path(blob.sha256).read_bytes()) == raw


@pytest.mark.parametrize(
    ("spec", "kind"), [("db", DBBlobStore), ("fs:/tmp/somewhere", FSBlobStore)]
)
def test_open_blob_store(spec: str, kind: type[BlobStore]) -> None:
    store = open_blob_store(spec)
    assert isinstance(store, kind)
    assert store.spec == spec


@pytest.mark.parametrize("spec", ["", "fs:", "s3://bucket", "DB"])
def test_open_blob_store_refuses_other_values(spec: str) -> None:
    with pytest.raises(ArchiveError, match="not a blob store") as info:
        open_blob_store(spec)
    assert info.value.hint and "'db'" in info.value.hint


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "ab").write_text("a file where a directory should be")
    store = FSBlobStore(root)
    raw = next(
        bytes([i]) for i in range(256) if hashlib.sha256(bytes([i])).hexdigest().startswith("ab")
    )
    with pytest.raises(ArchiveError, match="Cannot write blob"):
        store.put(raw)
    assert [p.name for p in root.rglob("*")] == ["ab"]
