"""The per-message work of the hot path that needs no database: hashing and header sniffing.

Why this module exists: a first sync of a big mailbox pushes every byte through
here, so it does the least that is needed and nothing else. For each raw
message it computes the SHA-256 (the blob's address), the SHA-256 of the header
block (to recognise the body after a UIDVALIDITY reset) and the Message-ID,
found with one small bytes regex over the header block; the full MIME parse
happens later, in normalization. hashlib releases the GIL on large buffers,
so big batches are split across a few threads (:mod:`syncer.archive.workers`).

Public API: :class:`Fingerprint`, :func:`fingerprint`, :func:`fingerprints`,
:func:`header_end`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from syncer.archive.workers import INLINE, Workers
from syncer.model import header_end, header_message_id


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the archive records about raw bytes before any parsing."""

    sha256: str
    size: int
    header_sha256: str
    message_id: str | None


def fingerprint(raw: bytes) -> Fingerprint:
    """Hash ``raw`` and its header block, and find its Message-ID."""
    end = header_end(raw)
    view = memoryview(raw)
    return Fingerprint(
        sha256=hashlib.sha256(view).hexdigest(),
        size=len(raw),
        header_sha256=hashlib.sha256(view[:end]).hexdigest(),
        message_id=header_message_id(raw, end),
    )


def _fingerprint_all(raws: Sequence[bytes]) -> list[Fingerprint]:
    return [fingerprint(raw) for raw in raws]


def fingerprints(raws: Sequence[bytes], workers: Workers = INLINE) -> list[Fingerprint]:
    """:func:`fingerprint` for each of ``raws``, in order, on ``workers``' threads."""
    return workers.map_slices(_fingerprint_all, raws, len)
