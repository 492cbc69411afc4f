"""The archive's own cost per message as it grows: which store term gets dearer from 10k to 50k.

Why this script exists: issue 17 asks that the 50,000-message corpus cost no more than
10% more per message than the 10,000 one for the default ``syncer sync``. The parse
(in the pool's processes) does the same work per message whatever the archive's size;
what can grow with it is the saving process's SQL: B-tree depth and page-cache misses
of the random-key indexes (sha256, Message-ID, addresses), FTS5 segment merges (their
work per page written grows with the number of levels), the WAL. This measures those
terms alone, on one archive growing over the whole run, in buckets of ``--bucket``
messages, so a term that grows shows as a rising column:

* ``archive_batch``: the download side (hash, compress, blobs + messages + entries + cursor),
  in batches of 500 messages or 16 MiB per folder, as the IMAP source cuts them;
* ``load_raw``: reading the bodies back for normalization (decompress, verify);
* ``save_normalized``: the derived rows and the FTS5 index rows, in the normalize stage's
  batches (:data:`~syncer.sync.normalize.BATCH_MESSAGES` / ``BATCH_BYTES``).

After each download batch, everything pending is normalized, as the default sync's
follower does. The parse runs in a process pool and is not counted: the CPU is this
process's own (``time.process_time``, all its threads: zstd and hashing threads
included), so it hardly depends on what else the machine runs, but a machine whose
load changes during the run still tilts the buckets: compare with ``archive_batch``,
whose work per message does not depend on the archive's size. Not a test.

    .venv/bin/python -m tests.bench.bench_scale --messages 50000 [--bucket 5000]
        [--pragma cache_size=-32768] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event

from syncer.archive.store import ArchiveStore
from syncer.mime.attachments import TextExtractor
from syncer.model import FolderCursor, FolderStatus, RemoteMessage
from syncer.sync.normalize import BATCH_MESSAGES, first_batch
from syncer.sync.normalize_pool import Pool
from syncer.sync.normalize_work import Done
from tests.corpus import generate

ACCOUNT = "bench"
DOWNLOAD_COUNT = 500
DOWNLOAD_BYTES = 16 * 1024 * 1024
TERMS = ("archive_batch", "load_raw", "save_normalized")
T = TypeVar("T")


class Buckets:
    """CPU-seconds and messages per term and bucket (by messages done before the call)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.done = dict.fromkeys(TERMS, 0)
        self.cells: dict[tuple[str, int], list[float]] = {}

    def timed(self, term: str, count: int, call: Callable[..., T], *args: Any) -> T:
        started = time.process_time()
        result = call(*args)
        cell = self.cells.setdefault((term, self.done[term] // self.size), [0.0, 0.0])
        cell[0] += count
        cell[1] += time.process_time() - started
        self.done[term] += count
        return result

    def per_message(self, term: str, bucket: int) -> float | None:
        """Milliseconds of CPU per message of ``term`` in ``bucket``."""
        count, cpu = self.cells.get((term, bucket), (0.0, 0.0))
        return cpu / count * 1000 if count else None


class Run:
    """One growing archive: download batches per folder, each followed by normalization."""

    def __init__(self, store: ArchiveStore, pool: Pool, buckets: Buckets) -> None:
        self.store = store
        self.pool = pool
        self.buckets = buckets
        self.after = 0
        self.uids: dict[str, int] = {}
        self.waiting: dict[str, list[RemoteMessage]] = {}

    def add(self, folder: str, raw: bytes, flags: tuple[str, ...], when: Any) -> None:
        uid = self.uids[folder] = self.uids.get(folder, 0) + 1
        batch = self.waiting.setdefault(folder, [])
        batch.append(RemoteMessage(folder=folder, uid=uid, raw=raw, flags=flags, internaldate=when))
        if len(batch) >= DOWNLOAD_COUNT or sum(len(m.raw) for m in batch) >= DOWNLOAD_BYTES:
            self.flush(folder)

    def flush(self, folder: str) -> None:
        batch = self.waiting.pop(folder, [])
        if not batch:
            return
        cursor = FolderCursor(uidvalidity=1, uidnext=self.uids[folder] + 1, messages=-1)
        archive = self.store.archive_batch
        self.buckets.timed("archive_batch", len(batch), archive, ACCOUNT, folder, 1, batch, cursor)
        self.normalize()

    def normalize(self) -> None:
        while pending := self.store.pending_normalization(BATCH_MESSAGES, after=self.after):
            batch = first_batch(pending)
            self.after = batch[-1].message_pk
            raws = self.buckets.timed("load_raw", len(batch), self.store.load_raw, batch)
            results = _parse(self.pool, raws)
            del raws
            pks = [item.message_pk for item in batch]
            self.buckets.timed(
                "save_normalized",
                len(batch),
                self.store.save_normalized,
                [(pk, result) for pk, (result, _) in zip(pks, results, strict=True)],
                {pk: rows for pk, (_, rows) in zip(pks, results, strict=True)},
            )


def _parse(pool: Pool, raws: Sequence[bytes]) -> list[Done]:
    tasks = [list(raws[i : i + 16]) for i in range(0, len(raws), 16)]
    futures = [pool.submit(_given(task)) for task in tasks]
    return [done for future in futures for done in future.result()]


def _given(task: list[bytes]) -> Callable[[], list[bytes]]:
    """A task already in memory, as the pool reads one (the bench holds them anyway)."""
    return lambda: task


def _apply_pragmas(store: ArchiveStore, pragmas: Sequence[str]) -> None:
    """Run ``PRAGMA p`` on every new connection (and drop the ones already open)."""
    if not pragmas:
        return

    @event.listens_for(store.engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    store.engine.dispose()


def run(count: int, bucket: int, workers: int, pragmas: Sequence[str], root: Path) -> Buckets:
    store = ArchiveStore.open(f"sqlite:///{root / 'archive.db'}", migrate=True)
    _apply_pragmas(store, pragmas)
    buckets = Buckets(bucket)
    extractor = TextExtractor()
    pool = Pool(workers, verify_dkim=False, dialect="sqlite", extractor=lambda: extractor)
    try:
        store.ensure_account(ACCOUNT, "imap")
        folders: set[str] = set()
        job = Run(store, pool, buckets)
        for message in generate(count):
            if message.folder not in folders:
                folders.add(message.folder)
                status = FolderStatus(message.folder, message.folder, "/")
                store.upsert_folders(ACCOUNT, [status])
            job.add(message.folder, message.raw, message.flags, message.internaldate)
        for folder in sorted(folders):
            job.flush(folder)
    finally:
        pool.shutdown()
        extractor.close()
        store.close()
    return buckets


def render(buckets: Buckets, count: int) -> str:
    """One row per bucket (ms of CPU per message per term), then the growth line."""
    lines = [f"{'messages':>15} " + " ".join(f"{term:>16}" for term in TERMS) + f" {'sum':>8}"]
    last = (count - 1) // buckets.size
    for index in range(last + 1):
        values = [buckets.per_message(term, index) for term in TERMS]
        low, high = index * buckets.size, min((index + 1) * buckets.size, count)
        cells = " ".join(f"{v:>16.3f}" if v is not None else f"{'':>16}" for v in values)
        total = sum(v for v in values if v is not None)
        lines.append(f"{low:>7}-{high:<7} {cells} {total:>8.3f}")
    lines.append(_growth(buckets, last))
    return "\n".join(lines)


def _growth(buckets: Buckets, last: int) -> str:
    """The last bucket against the first two, per term: what grew with the archive."""
    parts = []
    for term in TERMS:
        first = [buckets.per_message(term, i) for i in (0, 1) if i <= last]
        end = buckets.per_message(term, last)
        known = [v for v in first if v is not None]
        if known and end is not None:
            parts.append(f"{term} {end / (sum(known) / len(known)) - 1:+.0%}")
    return "last bucket against the first two: " + ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--bucket", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2, help="pool processes for the parse")
    parser.add_argument("--pragma", action="append", default=[], help="e.g. cache_size=-32768")
    parser.add_argument("--dir", type=Path, help="where the archive goes (default: /tmp)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.dir) as tmp:
        started = time.perf_counter()
        buckets = run(args.messages, args.bucket, args.workers, args.pragma, Path(tmp))
        wall = time.perf_counter() - started
    print(
        f"{args.messages} messages, pragmas {args.pragma or 'none'}, {wall:.0f} s wall, "
        f"load average {os.getloadavg()[0]:.1f} at the end; ms of CPU per message:"
    )
    print(render(buckets, args.messages))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
