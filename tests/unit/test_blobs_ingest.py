"""What the hot path records before any parsing: hashes, header block, Message-ID.

Why: ``header_sha256`` must equal the SHA-256 of exactly what IMAP
``BODY[HEADER]`` returns, or bodies are not recognised after a UIDVALIDITY
reset and get downloaded again.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.archive.ingest import fingerprint, fingerprints
from syncer.archive.workers import Workers
from syncer.model import header_end


@pytest.mark.parametrize(
    ("raw", "header"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", b"A: 1\r\nB: 2\r\n\r\n"),
        (b"A: 1\nB: 2\n\nbody\n\nmore", b"A: 1\nB: 2\n\n"),
        (b"A: 1\r\n\r\n", b"A: 1\r\n\r\n"),
        (b"A: 1\r\nno blank line", b"A: 1\r\nno blank line"),
        (b"\r\nbody only", b"\r\n"),
        (b"\nbody only", b"\n"),
        (b"", b""),
        (b"A: 1\nB: 2\r\n\r\nx", b"A: 1\nB: 2\r\n\r\n"),
    ],
)
def test_header_block_ends_after_the_first_empty_line(raw: bytes, header: bytes) -> None:
    assert raw[: header_end(raw)] == header
    assert fingerprint(raw).header_sha256 == hashlib.sha256(header).hexdigest()


@pytest.mark.parametrize(
    ("raw", "message_id"),
    [
        (b"Subject: x\r\nMessage-ID: <a@b.example>\r\n\r\n", "<a@b.example>"),
        (b"message-id:<a@b>\r\n\r\n", "<a@b>"),
        (b"Message-Id: \r\n <folded@example.org>\r\n\r\n", "<folded@example.org>"),
        (b"Message-ID: no-angle-brackets@x\r\n\r\n", "no-angle-brackets@x"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n", None),
        (b"X-Original-Message-ID: <other@x>\r\n\r\n", None),
        (b"Message-ID:\r\n\r\n", None),
        (b"Message-ID: <caf\xc3\xa9@x>\r\n\r\n", "<café@x>"),
    ],
)
def test_message_id_comes_from_the_header_block_only(raw: bytes, message_id: str | None) -> None:
    assert fingerprint(raw).message_id == message_id


@given(st.lists(st.binary(max_size=300_000), max_size=12))
def test_parallel_fingerprints_equal_sequential(raws: list[bytes]) -> None:
    workers = Workers(3)
    try:
        assert fingerprints(raws, workers) == [fingerprint(raw) for raw in raws]
    finally:
        workers.close()
    for raw, fp in zip(raws, fingerprints(raws), strict=True):
        assert fp.sha256 == hashlib.sha256(raw).hexdigest()
        assert fp.size == len(raw)


def _reference_header_end(raw: bytes) -> int:
    pos = 0
    for line in raw.split(b"\n")[:-1]:
        pos += len(line) + 1
        if line in (b"", b"\r"):
            return pos
    return len(raw)


@given(st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\r\n", b"bc"]), max_size=60))
def test_header_end_matches_a_line_by_line_reading(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert header_end(raw) == _reference_header_end(raw)


@pytest.mark.parametrize("offset", range(-4, 4))
@pytest.mark.parametrize("blank", [b"\r\n\r\n", b"\n\n", b"\n\r\n"])
def test_header_end_across_the_search_window(offset: int, blank: bytes) -> None:
    # Long headers (e.g. a huge References: line) cross the first search window.
    raw = b"X: " + b"a" * (64 * 1024 + offset) + blank + b"body\n\nmore\r\n\r\n"
    assert header_end(raw) == _reference_header_end(raw)
