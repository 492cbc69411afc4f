"""The normalization stage: derive and index what awaits normalization, in batches.

Why this module exists: ingest archives raw bytes only (the hot path stays
lean, docs/architecture.md, principle 5); this stage brings the derived rows and the
search index up to date, either after the fact (``syncer normalize``,
:func:`normalize_pending`) or while a sync downloads (:class:`Follower`: the
default ``syncer sync`` normalizes each batch as soon as it is committed). It
is resumable by construction: it works from the archive's marker
(``normalizer_version`` NULL or older than
:data:`~syncer.mime.parsed.NORMALIZER_VERSION`), and each batch's results
commit together with that marker, so an interrupted run, whatever kills it,
leaves only whole batches done and the next run picks up the rest.

Where the work happens: the parse, the attachment text and the search
tokens are CPU-bound Python, so a large backlog is spread over a process
pool (one process per core) that computes all three, index rows included;
this process only reads blobs (each task's when a worker is ready for it) and
writes results, one transaction per batch. At most :data:`IN_FLIGHT` batches
are handed out at a time (a bounded queue: memory stays flat whatever the
backlog). A small backlog is done in-process,
where starting processes would cost more than it saves.

Nothing heavy is imported with this module: a sync with nothing new must not
pay for the normalizer (the parser, the index, the extractors are imported
when the first message awaits).

Public API: :func:`normalize_pending`, :class:`Follower`, :func:`follow_download_batches`,
:class:`NormalizeCounts`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ArchiveError, SyncerError
from syncer.sync.normalize_work import (
    Done,
    failed,
    fix_heap_thresholds,
    limit_heap_arenas,
    normalize_one,
    release_heap,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from syncer.archive.search.document import IndexRow
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_normalize import Pending
    from syncer.config.schema import AccountConfig
    from syncer.mime.attachments import TextExtractor
    from syncer.mime.auth import DNSFunc
    from syncer.mime.parsed import NormalizedMessage
    from syncer.sync.normalize_pool import Pool

log = structlog.get_logger(__name__)

#: Messages per batch (one read, one write transaction).
BATCH_MESSAGES = 200
#: A batch is also cut when its raw bytes pass this (its results are held until saved).
BATCH_BYTES = 4 * 1024 * 1024
#: Below this many messages awaiting, the work is done in-process.
POOL_THRESHOLD = 400
#: Batches handed to the pool and not yet saved (the bounded queue).
IN_FLIGHT = 2
#: Messages per task sent to a pool process (a task is also cut at _CHUNK_BYTES: its
#: raw messages are read at once and wait here while the worker takes them one by one).
_CHUNK = 16
_CHUNK_BYTES = 1024 * 1024
#: Seconds between looks for newly committed batches while a sync downloads.
_POLL = 0.2
#: Download batch size (``batch_bytes``) while the stage follows a sync, unless configured.
FOLLOW_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NormalizeCounts:
    """What one run of the stage did.

    :ivar marked: messages marked for re-derivation (``rebuild``).
    :ivar processed: messages normalized and saved; ``ok + partial + failed``.
    :ivar workers: processes used (1: in-process).
    """

    marked: int = 0
    processed: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    workers: int = 1


def _load(store: ArchiveStore, batch: list[Pending]) -> tuple[list[bytes], dict[int, str]]:
    """The raw bytes of a batch, and the problems of those that cannot be read (by index).

    A corrupt or missing blob must not stop normalization of everything after
    it: that message is recorded as failed (``syncer verify`` reports the blob).
    """
    try:
        return store.load_raw(batch), {}
    except SyncerError:
        pass
    raws: list[bytes] = []
    problems: dict[int, str] = {}
    for index, item in enumerate(batch):
        try:
            raws.append(store.load_raw([item])[0])
        except SyncerError as exc:
            raws.append(b"")
            problems[index] = f"raw message unreadable: {exc.message}"
    return raws, problems


def _tasks(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """A batch (its messages' sizes) cut into pool tasks: ``(start, stop)`` ranges of
    at most _CHUNK messages and about _CHUNK_BYTES.

    A task's raw messages are read together (one query) when a worker is free
    for them and held here until sent: small tasks keep that low and spread
    large messages over the workers.
    """
    tasks: list[tuple[int, int]] = []
    start = size = 0
    for index, length in enumerate(sizes):
        if index > start and (index - start >= _CHUNK or size + length > _CHUNK_BYTES):
            tasks.append((start, index))
            start, size = index, 0
        size += length
    if start < len(sizes):
        tasks.append((start, len(sizes)))
    return tasks


def first_batch(pending: Sequence[Pending]) -> list[Pending]:
    """The leading messages of ``pending`` that fit in :data:`BATCH_BYTES` (at least one)."""
    batch: list[Pending] = []
    size = 0
    for item in pending:
        if batch and size + item.size > BATCH_BYTES:
            break
        batch.append(item)
        size += item.size
    return batch


def default_workers() -> int:
    """One pool process per core the scheduler gives us."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class _Stage:
    """One run of the stage over one store: batches, the pool, saving, counting."""

    def __init__(
        self,
        store: ArchiveStore,
        *,
        since: datetime | None,
        workers: int | None,
        verify_dkim: bool,
        dns: DNSFunc | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.store = store
        self.since = since
        self.processes = default_workers() if workers is None else max(1, workers)
        if dns is not None:
            self.processes = 1  # a function need not survive pickling
        self.verify_dkim = verify_dkim
        self.dns = dns
        self.progress = progress
        self.dialect = store.engine.dialect.name
        self.after = 0
        self.total = 0
        self.done = 0
        self.size = 0
        self.counts = {"ok": 0, "partial": 0, "failed": 0}
        self.pool: Pool | None = None
        self.pooled = False
        self.extractor: TextExtractor | None = None
        self.in_flight: deque[tuple[list[Pending], list[Future[list[Done]]], dict[int, str]]]
        self.in_flight = deque()

    # ------------------------------------------------------------------ batches

    def next_batch(self) -> list[Pending]:
        """The next batch awaiting (empty when none), paging by message id."""
        pending = self.store.pending_normalization(
            BATCH_MESSAGES, since=self.since, after=self.after
        )
        batch = first_batch(pending)
        if batch:
            self.after = batch[-1].message_pk
        return batch

    def use_pool(self, awaiting: int) -> bool:
        """Start the pool (once) when the work is worth the processes' start-up."""
        if self.pool is None and self.processes > 1 and awaiting > POOL_THRESHOLD:
            from syncer.sync.normalize_pool import Pool

            try:
                # One extractor child for the stage: the pool's workers hand it their attachments.
                self.pool = Pool(
                    self.processes,
                    verify_dkim=self.verify_dkim,
                    dialect=self.dialect,
                    extractor=self.text_extractor,
                )
            except OSError as exc:
                raise SyncerError(
                    f"Could not start the normalization worker processes: {exc}",
                    hint="Run `syncer normalize --workers 1` to normalize in one process.",
                ) from exc
            self.pooled = True
            log.info("normalize.pool_started", workers=self.processes)
        return self.pool is not None

    def text_extractor(self) -> TextExtractor:
        """The stage's one attachment extractor (its child starts on first need)."""
        if self.extractor is None:
            from syncer.mime.attachments import TextExtractor

            self.extractor = TextExtractor()
        return self.extractor

    def step(self, batch: list[Pending]) -> None:
        """Hand ``batch`` to the pool (saving the oldest when the queue is full), or do it here."""
        if self.pool is None:
            raws, problems = _load(self.store, batch)
            extractor = self.text_extractor()
            results = [
                normalize_one(raw, self.verify_dkim, self.dns, extractor, self.dialect)
                for raw in raws
            ]
            self.save(batch, results, problems)
            return
        problems = {}
        futures = [
            self.pool.submit(partial(self.load_task, batch, start, stop, problems))
            for start, stop in _tasks([item.size for item in batch])
        ]
        self.in_flight.append((batch, futures, problems))
        while len(self.in_flight) >= IN_FLIGHT:
            self.save_oldest()

    def load_task(
        self, batch: list[Pending], start: int, stop: int, problems: dict[int, str]
    ) -> list[bytes]:
        """The raw bytes of ``batch[start:stop]``, read when a worker is ready for them.

        Why not with the batch: this process then holds the raw bytes of at most
        one task per worker, not of every batch in flight (the memory bound,
        docs/performance.md). Unreadable ones go into ``problems`` by batch index.
        """
        raws, found = _load(self.store, batch[start:stop])
        problems.update((start + index, problem) for index, problem in found.items())
        return raws

    def save_oldest(self) -> None:
        from syncer.sync.normalize_pool import WorkerDied

        batch, futures, problems = self.in_flight.popleft()
        try:
            results = [result for future in futures for result in future.result()]
        except WorkerDied as exc:
            raise SyncerError(
                f"A normalization worker process died ({exc}); the batches "
                f"before message {batch[0].message_pk} are saved.",
                hint="Run `syncer normalize --workers 1` to go on in one process.",
            ) from exc
        self.save(batch, results, problems)
        del results
        release_heap()

    def drain(self) -> None:
        while self.in_flight:
            self.save_oldest()

    def save(self, batch: list[Pending], results: list[Done], problems: dict[int, str]) -> None:
        for index, problem in problems.items():
            unreadable = failed(problem)
            results[index] = (unreadable, _index_rows(self.dialect, unreadable))
        results = self._save([item.message_pk for item in batch], results)
        for item, (result, _) in zip(batch, results, strict=True):
            self.counts[result.status] = self.counts.get(result.status, 0) + 1
            if result.status == "failed":
                # The raw message stays archived either way; this says why it reads poorly.
                log.warning("message.parse_failed", message=item.message_pk, error=result.error)
            elif result.status != "ok":
                log.debug("message.parse_partial", message=item.message_pk, error=result.error)
        self.done += len(batch)
        self.size += sum(item.size for item in batch)
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))

    def _save(self, pks: list[int], results: list[Done]) -> list[Done]:
        """Save a batch; when the database refuses it, save one message at a time and
        record any it still refuses as failed, so one message never blocks the rest.

        :returns: the results as saved.
        :raises ArchiveError: when even the failure record cannot be saved (the
            database itself is down).
        """
        try:
            self.store.save_normalized(
                [(pk, result) for pk, (result, _) in zip(pks, results, strict=True)],
                {pk: rows for pk, (_, rows) in zip(pks, results, strict=True)},
            )
            return results
        except ArchiveError as exc:
            if len(pks) == 1:
                refused = failed(f"could not be stored: {exc.message}"[:500])
                done: Done = (refused, _index_rows(self.dialect, refused))
                self.store.save_normalized([(pks[0], refused)], {pks[0]: done[1]})
                log.warning("message.store_failed", message=pks[0], error=exc.message)
                return [done]
        return [self._save([pk], [result])[0] for pk, result in zip(pks, results, strict=True)]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        if self.extractor is not None:
            self.extractor.close()
            self.extractor = None

    def result(self, marked: int, started: float) -> NormalizeCounts:
        seconds = time.monotonic() - started
        counts = NormalizeCounts(
            marked=marked,
            processed=self.done,
            ok=self.counts["ok"],
            partial=self.counts["partial"],
            failed=self.counts["failed"],
            bytes=self.size,
            seconds=seconds,
            workers=self.processes if self.pooled else 1,
        )
        log.info(
            "normalize.completed",
            processed=self.done,
            ok=counts.ok,
            partial=counts.partial,
            failed=counts.failed,
            workers=counts.workers,
            duration_ms=int(seconds * 1000),
        )
        return counts


def _index_rows(dialect: str, result: NormalizedMessage) -> list[IndexRow]:
    from syncer.archive.search.document import index_document

    return index_document(dialect, result)


def normalize_pending(
    store: ArchiveStore,
    *,
    rebuild: bool = False,
    since: datetime | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    verify_dkim: bool = False,
    dns: DNSFunc | None = None,
) -> NormalizeCounts:
    """Normalize every message awaiting it (dated, or else archived, since ``since``).

    :param rebuild: first mark the messages (all, or since ``since``) for
        re-derivation, e.g. after a normalizer upgrade.
    :param workers: pool processes; None: one per core; 1: in-process.
        The pool is used only when more than :data:`POOL_THRESHOLD` messages await.
    :param progress: called as ``progress(done, total)`` after each batch.
    :param dns: DKIM key lookup for ``verify_dkim`` (forces in-process work,
        as a function need not survive pickling).
    :raises ArchiveError: when the archive cannot be read or written; batches
        committed before stay committed.
    :raises SyncerError: when a pool process dies (e.g. killed for memory).
    """
    started = time.monotonic()
    marked = store.mark_for_normalization(since=since) if rebuild else 0
    stage = _Stage(
        store,
        since=since,
        workers=workers,
        verify_dkim=verify_dkim,
        dns=dns,
        progress=progress,
    )
    stage.total = store.normalization_backlog(since=since)
    log.info("normalize.started", awaiting=stage.total, workers=stage.processes, rebuild=rebuild)
    try:
        stage.use_pool(stage.total)
        while batch := stage.next_batch():
            stage.step(batch)
        stage.drain()
    finally:
        stage.close()
    return stage.result(marked, started)


def follow_download_batches(accounts: Sequence[AccountConfig]) -> list[AccountConfig]:
    """The accounts to sync with a :class:`Follower`: download batches of at most
    :data:`FOLLOW_BATCH_BYTES` where ``batch_bytes`` is not configured.

    Why: a downloaded batch is held raw and compressed until it commits, next to
    the stage's batches in flight and its pool processes; 32 MiB download
    batches made the saving process the largest of the tree; 4 MiB (not 16, then 8)
    keep it under the tree's bound, at no measurable cost in time
    (docs/performance.md, "Memory of the default sync" and "Memory of the process
    tree", first and second round). Alone (``--no-normalize``) the download keeps
    its own default, and a configured ``batch_bytes`` is always kept.
    """
    return [
        account
        if "batch_bytes" in account.model_fields_set or account.batch_bytes <= FOLLOW_BATCH_BYTES
        else account.model_copy(update={"batch_bytes": FOLLOW_BATCH_BYTES})
        for account in accounts
    ]


class Follower:
    """Normalizes, in a thread of this process, each batch a running sync commits.

    Why: the default ``syncer sync`` downloads and normalizes; doing the two
    one after the other costs their sum, while the parse (in the pool's
    processes) and the download (mostly waiting on the server) can overlap.
    The thread looks for committed messages awaiting normalization every
    :data:`_POLL` seconds; the pool starts when more than
    :data:`POOL_THRESHOLD` await, and until then (or the download's end, for a
    small delta) nothing is normalized in this process, so a large sync never
    imports the normalizer here. Until the first message awaits nothing of
    the normalizer is imported. Each batch commits with its marker, so a crash
    of the sync leaves what is not saved awaiting ``syncer normalize``.

    ``with Follower(store) as follower: ...sync...; counts = follower.finish()``
    """

    def __init__(
        self,
        store: ArchiveStore,
        *,
        workers: int | None = None,
        verify_dkim: bool = False,
    ) -> None:
        self._store = store
        self._workers = workers
        self._verify_dkim = verify_dkim
        self._downloaded = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._counts = NormalizeCounts()
        self._thread = threading.Thread(target=self._run, name="normalize-follower", daemon=True)

    def __enter__(self) -> Follower:
        limit_heap_arenas()  # before the download's and the stage's threads start
        fix_heap_thresholds()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread.is_alive():
            # The sync failed: stop after the batch in hand (the rest stays awaiting).
            self._stop.set()
            self._downloaded.set()
            self._thread.join()

    def finish(self) -> NormalizeCounts:
        """Wait until everything the sync committed is normalized; the stage's counts.

        :raises SyncerError: what stopped the stage (the mail stays archived).
        """
        self._downloaded.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._counts

    def _awaits_pool(self, stage: _Stage, finished: bool) -> bool:
        """Whether to wait for the pool rather than normalize in this process.

        While the download goes on, work done here would load the normalizer
        and an extractor child into the downloading process for the rest of the
        run (the process tree's memory bound, docs/performance.md); the pool
        starts once enough awaits, and a small delta is done here at the end.
        """
        if stage.pool is not None or stage.use_pool(self._store.normalization_backlog()):
            return False
        return not finished and stage.processes > 1

    def _run(self) -> None:
        started = time.monotonic()
        stage: _Stage | None = None
        swept = False
        try:
            while not self._stop.is_set():
                # Read before looking: what was committed before the sync ended is then seen.
                finished = self._downloaded.is_set()
                if stage is None and self._store.normalization_backlog():
                    stage = _Stage(
                        self._store,
                        since=None,
                        workers=self._workers,
                        verify_dkim=self._verify_dkim,
                        dns=None,
                        progress=None,
                    )
                    log.info("normalize.started", follow=True, workers=stage.processes)
                    # Its start-up then overlaps the download instead of the first attachment.
                    stage.text_extractor().start()
                if stage is not None:
                    if self._awaits_pool(stage, finished):
                        self._downloaded.wait(_POLL)
                        continue
                    if batch := stage.next_batch():
                        stage.step(batch)
                        continue
                    stage.drain()
                    if finished and not swept:
                        # Ids committed out of order (other writers) are found from the start.
                        stage.after, swept = 0, True
                        continue
                if finished:
                    break
                self._downloaded.wait(_POLL)
            if stage is not None:
                if not self._stop.is_set():
                    stage.drain()
                self._counts = stage.result(0, started)
        except BaseException as exc:  # handed to finish()
            self._error = exc
        finally:
            if stage is not None:
                stage.close()
