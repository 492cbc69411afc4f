"""Where the raw message bytes live: zstd-compressed blobs addressed by their SHA-256.

Why this module exists: the raw message is the truth, so how its bytes are
written (atomically, durably, deduplicated) and read back (always verified
against the address) is decided in one place, behind one interface with two
backends:

* :class:`DBBlobStore` (``blob_store = "db"``): the compressed bytes go in the
  ``blobs.data`` column, in the same transaction as the rows that use them.
* :class:`FSBlobStore` (``blob_store = "fs:/path"``): content-addressed files
  ``root/ab/cd/<sha256>.zst``. Each is written to a temporary file in the same
  directory, fsync'd and renamed into place (``os.replace``), so a crash never
  leaves a half-written blob under its final name; the directory is fsync'd
  before the database row that points at the file is committed. A file whose
  row was never committed (crash between the two) is harmless: the next write
  of the same message finds it already there.

Both compress with zstd level 3 (one reusable compressor per thread) and verify
the SHA-256 of what they read, raising :class:`~syncer.errors.BlobCorrupt`
naming the blob. Writing a blob that already exists is a no-op.

Public API: :class:`BlobStore`, :class:`StoredBlob`, :func:`open_blob_store`,
:func:`compress`, :func:`decompress`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from syncer.archive.workers import INLINE, Workers
from syncer.errors import ArchiveError, BlobCorrupt

COMPRESSION = "zstd"
ZSTD_LEVEL = 3
_READ_CHUNK = 1 << 20

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # A ZstdCompressor must not be shared between threads, but building one per call costs more
    # than compressing a small message: keep one per thread.
    comp: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if comp is None:
        comp = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        _local.compressor = comp
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if dec is None:
        dec = zstandard.ZstdDecompressor()
        _local.decompressor = dec
    return dec


def compress(raw: bytes) -> bytes:
    """zstd level 3, with the content size in the frame header."""
    return _compressor().compress(raw)


def decompress(data: bytes) -> bytes:
    """Inverse of :func:`compress`.

    :raises zstandard.ZstdError: when ``data`` is not a valid frame.
    """
    return _decompressor().decompress(data)


def short(sha256: str) -> str:
    """A SHA-256 abbreviated for messages where the full one is given nearby."""
    return f"{sha256[:12]}…"


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What the ``blobs`` row for a stored blob holds.

    ``data`` is the compressed bytes for the database backend, None when the
    bytes are in a file.
    """

    sha256: str
    size: int
    stored_size: int
    data: bytes | None


_CORRUPT_HINT = "Run `syncer verify` to check the whole archive, and restore it from a backup."


def _corrupt(sha256: str, actual: str) -> BlobCorrupt:
    return BlobCorrupt(
        f"Blob {sha256} is corrupt: its stored bytes hash to {short(actual)}, expected {sha256}.",
        hint=_CORRUPT_HINT,
    )


class BlobStore(ABC):
    """Stores and loads raw message bytes, compressed and verified.

    The caller hashes: :meth:`store` trusts the SHA-256 it is given (the archive
    needs the digest anyway, before it knows which blobs are new).
    """

    #: The ``blob_store`` configuration value this store was opened from.
    spec: str
    #: Whether blobs go to files (rows with ``data`` NULL) rather than into the database.
    on_disk: bool = False

    @abstractmethod
    def store(
        self, items: Sequence[tuple[str, bytes]], *, workers: Workers = INLINE
    ) -> list[StoredBlob]:
        """Compress (and for files, durably write) each ``(sha256, raw)``.

        :param workers: compress (and write) on these threads; zstd and file
            I/O release the GIL.
        :returns: the rows to insert into ``blobs``, in the order of ``items``.
        :raises ArchiveError: when a file cannot be written.
        """

    @abstractmethod
    def load(self, sha256: str, data: bytes | None) -> bytes:
        """The raw bytes of a blob, given its row's ``data`` column.

        :raises BlobCorrupt: when the bytes do not hash to ``sha256`` or are missing.
        :raises ArchiveError: when the blob is on disk and no disk store is configured.
        """

    @abstractmethod
    def check(self, sha256: str, size: int, data: bytes | None) -> str | None:
        """Re-read one blob and describe what is wrong with it, or None when it is sound.

        Reads files in chunks, so memory stays bounded whatever the blob size.
        """

    def put(self, raw: bytes) -> StoredBlob:
        """Hash and store one blob (a convenience for tests and tools)."""
        return self.store([(hashlib.sha256(raw).hexdigest(), raw)])[0]

    # -- shared helpers ------------------------------------------------------------------

    @staticmethod
    def _verified(sha256: str, raw: bytes) -> bytes:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha256:
            raise _corrupt(sha256, actual)
        return raw

    @staticmethod
    def _decompress_verified(sha256: str, data: bytes) -> bytes:
        try:
            raw = decompress(data)
        except zstandard.ZstdError as exc:
            raise BlobCorrupt(
                f"Blob {sha256} is corrupt: its stored bytes cannot be decompressed ({exc}).",
                hint=_CORRUPT_HINT,
            ) from exc
        return BlobStore._verified(sha256, raw)

    @staticmethod
    def _check_data(sha256: str, size: int, data: bytes) -> str | None:
        try:
            raw = decompress(data)
        except zstandard.ZstdError as exc:
            return f"stored bytes cannot be decompressed ({exc})"
        return _describe(sha256, size, hashlib.sha256(raw).hexdigest(), len(raw))


def _describe(sha256: str, size: int, actual: str, actual_size: int) -> str | None:
    if actual != sha256:
        return f"stored bytes hash to {short(actual)}, expected {sha256}"
    if actual_size != size:
        return f"size recorded as {size} bytes, stored bytes are {actual_size}"
    return None


def _map(
    workers: Workers,
    func: Callable[[tuple[str, bytes]], StoredBlob],
    items: Sequence[tuple[str, bytes]],
) -> list[StoredBlob]:
    def run(part: Sequence[tuple[str, bytes]]) -> list[StoredBlob]:
        return [func(item) for item in part]

    return workers.map_slices(run, items, lambda item: len(item[1]))


class DBBlobStore(BlobStore):
    """Blobs in the ``blobs.data`` column: one file to back up, one transaction per batch."""

    spec = "db"

    def store(
        self, items: Sequence[tuple[str, bytes]], *, workers: Workers = INLINE
    ) -> list[StoredBlob]:
        return _map(workers, self._one, items)

    @staticmethod
    def _one(item: tuple[str, bytes]) -> StoredBlob:
        sha256, raw = item
        data = compress(raw)
        return StoredBlob(sha256, len(raw), len(data), data)

    def load(self, sha256: str, data: bytes | None) -> bytes:
        if data is None:
            raise ArchiveError(
                f"Blob {sha256} is stored on disk, but this archive is opened with "
                "blob_store = 'db'.",
                hint="Set blob_store to the 'fs:/path' the archive was written with.",
            )
        return self._decompress_verified(sha256, data)

    def check(self, sha256: str, size: int, data: bytes | None) -> str | None:
        if data is None:
            return "stored on disk, but blob_store is 'db' (no on-disk store to check)"
        return self._check_data(sha256, size, data)


class FSBlobStore(BlobStore):
    """Blobs as files ``root/ab/cd/<sha256>.zst``; the database keeps the row, data NULL.

    Blobs written earlier into the database (when the archive used
    ``blob_store = "db"``) are still read from there.
    """

    on_disk = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spec = f"fs:{root}"

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.zst"

    def store(
        self, items: Sequence[tuple[str, bytes]], *, workers: Workers = INLINE
    ) -> list[StoredBlob]:
        def run(part: Sequence[tuple[str, bytes]]) -> list[tuple[StoredBlob, bool]]:
            return [self._one(item) for item in part]

        results = workers.map_slices(run, items, lambda item: len(item[1]))
        # The renames are durable only once their directories are: fsync each directory
        # that got a new file (and its parents, which may be new) once, before the caller
        # commits the rows that point at these files.
        dirs = {self.path(blob.sha256).parent for blob, written in results if written}
        for directory in dirs | {d.parent for d in dirs} | ({self.root} if dirs else set()):
            _fsync_dir(directory)
        return [blob for blob, _ in results]

    def _one(self, item: tuple[str, bytes]) -> tuple[StoredBlob, bool]:
        """Write one blob file unless it exists; say whether a file was written."""
        sha256, raw = item
        final = self.path(sha256)
        if final.exists():
            # Content-addressed: the bytes there are these bytes (verify checks that).
            return StoredBlob(sha256, len(raw), final.stat().st_size, None), False
        data = compress(raw)
        tmp = final.parent / f".{sha256}.{uuid.uuid4().hex}.tmp"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):  # never leave a partial file, even a hidden one
                tmp.unlink()
            raise ArchiveError(
                f"Cannot write blob {sha256} to the on-disk store at {self.root}: {exc}.",
                hint="Check that the directory exists, is writable and has free space.",
            ) from exc
        return StoredBlob(sha256, len(raw), len(data), None), True

    def load(self, sha256: str, data: bytes | None) -> bytes:
        if data is not None:
            return self._decompress_verified(sha256, data)
        path = self.path(sha256)
        try:
            stored = path.read_bytes()
        except FileNotFoundError as exc:
            raise BlobCorrupt(
                f"Blob {sha256} is missing from the on-disk store: {path} does not exist.",
                hint="Restore the file from a backup; `syncer verify` lists every missing blob.",
            ) from exc
        except OSError as exc:
            raise ArchiveError(f"Cannot read blob {sha256} from {path}: {exc}.") from exc
        return self._decompress_verified(sha256, stored)

    def check(self, sha256: str, size: int, data: bytes | None) -> str | None:
        if data is not None:
            return self._check_data(sha256, size, data)
        path = self.path(sha256)
        digest = hashlib.sha256()
        total = 0
        try:
            with path.open("rb") as fh, _decompressor().stream_reader(fh) as reader:
                while chunk := reader.read(_READ_CHUNK):
                    digest.update(chunk)
                    total += len(chunk)
        except FileNotFoundError:
            return f"file missing: {path}"
        except zstandard.ZstdError as exc:
            return f"stored bytes in {path} cannot be decompressed ({exc})"
        except OSError as exc:
            return f"cannot read {path}: {exc}"
        return _describe(sha256, size, digest.hexdigest(), total)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_blob_store(spec: str) -> BlobStore:
    """The blob store for a ``blob_store`` configuration value: ``db`` or ``fs:/path``.

    :raises ArchiveError: for any other value.
    """
    if spec == "db":
        return DBBlobStore()
    if spec.startswith("fs:") and len(spec) > 3:
        return FSBlobStore(Path(spec[3:]).expanduser())
    raise ArchiveError(
        f"blob_store {spec!r} is not a blob store.",
        hint="Use 'db' (bytes in the database) or 'fs:/path/to/dir' (files on disk).",
    )
