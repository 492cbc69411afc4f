"""The part of the normalization stage that runs in its worker processes.

Why this module exists apart from :mod:`syncer.sync.normalize`: a pool process
imports the module its task function lives in, and this one imports only what
the work needs (the normalizer, the attachment extractor, the index document),
not structlog or the stage's machinery: each worker is smaller and starts
sooner. Pure functions of the raw bytes; nothing here touches the archive.

Public API: :func:`normalize_many`, :func:`normalize_one`, :func:`failed`,
:func:`release_heap`, :data:`Done`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncer.archive.search.document import IndexRow
    from syncer.mime.attachments import TextExtractor
    from syncer.mime.auth import DNSFunc
    from syncer.mime.parsed import NormalizedMessage

#: One normalized message and its search index rows.
Done = tuple["NormalizedMessage", "list[IndexRow]"]

#: A pool process's attachment text extractor (its child process lives as long as it).
_POOL_EXTRACTOR: TextExtractor | None = None
#: A pool process gives its freed heap back after a task of at least this many raw bytes.
_TRIM_AFTER_BYTES = 1024 * 1024
#: glibc's ``malloc_trim`` once looked up (False: not available).
_TRIM: Any = None


def normalize_many(raws: Sequence[bytes], verify_dkim: bool, dialect: str) -> list[Done]:
    """Run in a pool process: parse, extract and tokenize; a crash must not lose a batch."""
    global _POOL_EXTRACTOR
    if _POOL_EXTRACTOR is None:
        import atexit

        from syncer.mime.attachments import TextExtractor

        _POOL_EXTRACTOR = TextExtractor()
        atexit.register(_POOL_EXTRACTOR.close)
    done = [normalize_one(raw, verify_dkim, None, _POOL_EXTRACTOR, dialect) for raw in raws]
    if sum(len(raw) for raw in raws) >= _TRIM_AFTER_BYTES:
        release_heap()  # after large tasks only: each trim costs page faults in the next
    return done


def release_heap() -> None:
    """Hand the task's freed heap back to the system (glibc's ``malloc_trim``).

    Why: a task's parse trees and decoded attachments are freed when it ends,
    but glibc keeps the pages, so each pool process stayed at the high-water
    mark of its largest task for the rest of the run (the process tree's peak
    RSS is bounded, docs/performance.md); the saving process likewise after
    each batch's results. Trimming costs well under a millisecond. Elsewhere
    than glibc this does nothing.
    """
    global _TRIM
    if _TRIM is None:
        import ctypes

        try:
            _TRIM = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


def normalize_one(
    raw: bytes,
    verify_dkim: bool,
    dns: DNSFunc | None,
    extractor: TextExtractor | None,
    dialect: str,
) -> Done:
    from syncer.archive.search.document import index_document
    from syncer.mime.normalize import normalize

    try:
        result = normalize(raw, verify_dkim=verify_dkim, dns=dns, extractor=extractor)
    except Exception as exc:  # pragma: no cover - normalize() catches everything itself
        result = failed(f"{type(exc).__name__}: {exc}")
    return result, index_document(dialect, result)


def failed(error: str) -> NormalizedMessage:
    from syncer.mime.parsed import NORMALIZER_VERSION, NormalizedMessage

    return NormalizedMessage(version=NORMALIZER_VERSION, status="failed", error=error)
