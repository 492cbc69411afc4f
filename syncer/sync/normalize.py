"""The normalization catch-up stage: derive what awaits normalization, in batches.

Why this module exists: ingest archives raw bytes only (the hot path stays
lean, docs/architecture.md, principle 5); this stage runs right after a sync, or as
``syncer normalize``, and brings the derived rows up to date. It is resumable
by construction: it works from the archive's marker (``normalizer_version``
NULL or older than :data:`~syncer.mime.parsed.NORMALIZER_VERSION`), and each batch's
results commit together with that marker, so an interrupted run leaves only
whole batches done and the next run picks up the rest.

The parse is CPU-bound Python, so a large backlog is spread over a process
pool (one process per core); a small one is done in-process, where starting
processes would cost more than it saves. Reading blobs and writing results
stay in this process, on the store's connections; while one batch is saved,
the pool already works on the next.

Public API: :func:`normalize_pending`, :class:`NormalizeCounts`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ArchiveError, SyncerError
from syncer.mime.attachments import TextExtractor
from syncer.mime.children import die_with_parent
from syncer.mime.normalize import normalize
from syncer.mime.parsed import NORMALIZER_VERSION, NormalizedMessage

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_normalize import Pending
    from syncer.mime.auth import DNSFunc

log = structlog.get_logger(__name__)

#: Messages per batch (one read, one write transaction).
BATCH_MESSAGES = 200
#: A batch is also cut when its raw bytes pass this.
BATCH_BYTES = 32 * 1024 * 1024
#: Below this many messages awaiting, the work is done in-process.
POOL_THRESHOLD = 400
#: Messages per task sent to a pool process.
_CHUNK = 16


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


_InFlight = tuple["list[Pending]", "list[Future[list[NormalizedMessage]]]", "dict[int, str]"]


#: A pool process's attachment text extractor (its child process lives as long as it).
_POOL_EXTRACTOR: TextExtractor | None = None


def _normalize_many(raws: Sequence[bytes], verify_dkim: bool) -> list[NormalizedMessage]:
    """Run in a pool process; ``normalize`` never raises, but a crash must not lose a batch."""
    global _POOL_EXTRACTOR
    if _POOL_EXTRACTOR is None:
        _POOL_EXTRACTOR = TextExtractor()
        atexit.register(_POOL_EXTRACTOR.close)
    return [_normalize_one(raw, verify_dkim, None, _POOL_EXTRACTOR) for raw in raws]


def _normalize_one(
    raw: bytes, verify_dkim: bool, dns: DNSFunc | None, extractor: TextExtractor | None
) -> NormalizedMessage:
    try:
        return normalize(raw, verify_dkim=verify_dkim, dns=dns, extractor=extractor)
    except Exception as exc:  # pragma: no cover - normalize() catches everything itself
        return _failed(f"{type(exc).__name__}: {exc}")


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


def _failed(error: str) -> NormalizedMessage:
    return NormalizedMessage(version=NORMALIZER_VERSION, status="failed", error=error)


def _save(
    store: ArchiveStore, pks: list[int], results: list[NormalizedMessage]
) -> list[NormalizedMessage]:
    """Save a batch; when the database refuses it, save one message at a time and
    record any it still refuses as failed, so one message never blocks the rest.

    :returns: the results as saved.
    :raises ArchiveError: when even the failure record cannot be saved (the
        database itself is down).
    """
    try:
        store.save_normalized(list(zip(pks, results, strict=True)))
        return results
    except ArchiveError as exc:
        if len(pks) == 1:
            failed = _failed(f"could not be stored: {exc.message}"[:500])
            store.save_normalized([(pks[0], failed)])
            log.warning("message.store_failed", message=pks[0], error=exc.message)
            return [failed]
    return [_save(store, [pk], [result])[0] for pk, result in zip(pks, results, strict=True)]


def _batches(store: ArchiveStore, since: datetime | None) -> Callable[[], list[Pending]]:
    """A function returning the next batch (empty when done), paging by message id."""
    after = 0

    def next_batch() -> list[Pending]:
        nonlocal after
        pending = store.pending_normalization(BATCH_MESSAGES, since=since, after=after)
        batch: list[Pending] = []
        size = 0
        for item in pending:
            if batch and size + item.size > BATCH_BYTES:
                break
            batch.append(item)
            size += item.size
        if batch:
            after = batch[-1].message_pk
        return batch

    return next_batch


def default_workers() -> int:
    """One pool process per core the scheduler gives us."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


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
    total = store.normalization_backlog(since=since)
    processes = default_workers() if workers is None else max(1, workers)
    if total <= POOL_THRESHOLD or dns is not None:
        processes = 1
    counts = {"ok": 0, "partial": 0, "failed": 0}
    done = size = 0
    next_batch = _batches(store, since)
    log.info("normalize.started", awaiting=total, workers=processes, rebuild=rebuild)

    def save(
        batch: list[Pending], results: list[NormalizedMessage], problems: dict[int, str]
    ) -> None:
        nonlocal done, size
        for index, problem in problems.items():
            results[index] = _failed(problem)
        results = _save(store, [item.message_pk for item in batch], results)
        for item, result in zip(batch, results, strict=True):
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status != "ok":
                # The raw message stays archived either way; this says why it reads poorly.
                if result.status == "failed":
                    log.warning("message.parse_failed", message=item.message_pk, error=result.error)
                else:
                    log.debug("message.parse_partial", message=item.message_pk, error=result.error)
        done += len(batch)
        size += sum(item.size for item in batch)
        if progress is not None:
            progress(done, total)

    if processes == 1:
        with TextExtractor() as extractor:
            while batch := next_batch():
                raws, problems = _load(store, batch)
                results = [_normalize_one(raw, verify_dkim, dns, extractor) for raw in raws]
                save(batch, results, problems)
    else:
        # spawn, not fork: this process holds database connections and threads.
        context = multiprocessing.get_context("spawn")
        # Each worker dies with this process (a SIGKILL here must not leave them orphaned).
        with ProcessPoolExecutor(
            max_workers=processes,
            mp_context=context,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            in_flight: deque[_InFlight] = deque()

            def submit() -> bool:
                batch = next_batch()
                if not batch:
                    return False
                raws, problems = _load(store, batch)
                futures = [
                    pool.submit(_normalize_many, raws[i : i + _CHUNK], verify_dkim)
                    for i in range(0, len(raws), _CHUNK)
                ]
                in_flight.append((batch, futures, problems))
                return True

            more = submit() and submit()
            while in_flight:
                batch, futures, problems = in_flight.popleft()
                try:
                    results = [result for future in futures for result in future.result()]
                except BrokenProcessPool as exc:
                    raise SyncerError(
                        f"A normalization worker process died ({exc}); the batches "
                        f"before message {batch[0].message_pk} are saved.",
                        hint="Run `syncer normalize --workers 1` to go on in one process.",
                    ) from exc
                if more:
                    more = submit()
                save(batch, results, problems)
    seconds = time.monotonic() - started
    result = NormalizeCounts(
        marked=marked,
        processed=done,
        ok=counts["ok"],
        partial=counts["partial"],
        failed=counts["failed"],
        bytes=size,
        seconds=seconds,
        workers=processes,
    )
    log.info(
        "normalize.completed",
        processed=done,
        ok=result.ok,
        partial=result.partial,
        failed=result.failed,
        workers=processes,
        duration_ms=int(seconds * 1000),
    )
    return result
