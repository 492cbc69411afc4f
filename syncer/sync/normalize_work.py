"""The part of the normalization stage that runs in its worker processes.

Why this module exists apart from :mod:`syncer.sync.normalize`: a pool process
imports the module its task function lives in, and this one imports only what
the work needs (the normalizer, the attachment extractor, the index document),
not structlog or the stage's machinery: each worker is smaller and starts
sooner. Pure functions of the raw bytes; nothing here touches the archive.

Public API: :func:`normalize_many`, :func:`normalize_one`, :func:`failed`, :data:`Done`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncer.archive.search.document import IndexRow
    from syncer.mime.attachments import TextExtractor
    from syncer.mime.auth import DNSFunc
    from syncer.mime.parsed import NormalizedMessage

#: One normalized message and its search index rows.
Done = tuple["NormalizedMessage", "list[IndexRow]"]

#: A pool process's attachment text extractor (its child process lives as long as it).
_POOL_EXTRACTOR: TextExtractor | None = None


def normalize_many(raws: Sequence[bytes], verify_dkim: bool, dialect: str) -> list[Done]:
    """Run in a pool process: parse, extract and tokenize; a crash must not lose a batch."""
    global _POOL_EXTRACTOR
    if _POOL_EXTRACTOR is None:
        import atexit

        from syncer.mime.attachments import TextExtractor

        _POOL_EXTRACTOR = TextExtractor()
        atexit.register(_POOL_EXTRACTOR.close)
    return [normalize_one(raw, verify_dkim, None, _POOL_EXTRACTOR, dialect) for raw in raws]


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
