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
import re
from collections.abc import Sequence
from dataclasses import dataclass

from syncer.archive.workers import INLINE, Workers
from syncer.model import header_end

# A Message-ID header line and its folded continuation lines (RFC 5322 section 3.6.4).
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(rb"<[^<>\s]*>")
_MAX_MESSAGE_ID = 998  # the longest line RFC 5322 allows


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the archive records about raw bytes before any parsing."""

    sha256: str
    size: int
    header_sha256: str
    message_id: str | None


def _message_id(raw: bytes, end: int) -> str | None:
    match = _MESSAGE_ID.search(raw, 0, end)
    if match is None:
        return None
    value = match.group(1)
    angle = _ANGLE.search(value)
    token = angle.group(0) if angle else b" ".join(value.split())
    if not token:
        return None
    return token[:_MAX_MESSAGE_ID].decode("utf-8", "replace")


def fingerprint(raw: bytes) -> Fingerprint:
    """Hash ``raw`` and its header block, and find its Message-ID."""
    end = header_end(raw)
    view = memoryview(raw)
    return Fingerprint(
        sha256=hashlib.sha256(view).hexdigest(),
        size=len(raw),
        header_sha256=hashlib.sha256(view[:end]).hexdigest(),
        message_id=_message_id(raw, end),
    )


def _fingerprint_all(raws: Sequence[bytes]) -> list[Fingerprint]:
    return [fingerprint(raw) for raw in raws]


def fingerprints(raws: Sequence[bytes], workers: Workers = INLINE) -> list[Fingerprint]:
    """:func:`fingerprint` for each of ``raws``, in order, on ``workers``' threads."""
    return workers.map_slices(_fingerprint_all, raws, len)
