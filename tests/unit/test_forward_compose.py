"""What a forward sends, built from bytes: redirect, attach, and the loop marker."""

from __future__ import annotations

import email
from datetime import UTC, datetime

import pytest

from syncer.relay.compose import MARKER, attach, forwarded_by_syncer, header_block, redirect

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
ORIGINAL = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def test_redirect_prepends_resent_headers_and_keeps_every_original_byte() -> None:
    sent = redirect(
        ORIGINAL, resent_from="me@example.com", resent_to=["x@example.net"], rule="r", now=NOW
    )
    assert sent.data.endswith(b"\r\n" + ORIGINAL)
    head = sent.data[: -len(ORIGINAL)]
    assert head.startswith(b"Resent-Date: Fri, 27 Nov 2026 07:00:00 +0000\r\n")
    assert sent.message_id.encode() in head and sent.message_id.endswith("@example.com>")
    assert forwarded_by_syncer(sent.data)


def test_redirect_makes_bare_line_feeds_crlf_as_smtp_requires() -> None:
    sent = redirect(
        b"Subject: x\n\nbody\n", resent_from="m@e.com", resent_to=["t@e.net"], rule="r", now=NOW
    )
    assert sent.data.endswith(b"\r\nSubject: x\r\n\r\nbody\r\n")


def test_attach_keeps_the_original_whole_and_8bit_is_declared() -> None:
    original = "Subject: café\r\n\r\nnaïve\r\n".encode()
    sent = attach(
        original,
        sender="Syncer <s@example.com>",
        to=["t@example.net"],
        subject="Fwd: café",
        note="Forwarded.",
        rule="r",
        now=NOW,
    )
    message = email.message_from_bytes(sent.data)
    rfc822 = next(p for p in message.walk() if p.get_content_type() == "message/rfc822")
    assert rfc822["Content-Transfer-Encoding"] == "8bit"
    boundary = message.get_boundary()
    assert sent.data.endswith(b"\r\n\r\n" + original + f"\r\n--{boundary}--\r\n".encode())
    assert message[MARKER] == "r" and forwarded_by_syncer(sent.data)


def test_the_marker_counts_only_in_the_header_block() -> None:
    assert not forwarded_by_syncer(b"Subject: x\r\n\r\nX-Syncer-Forwarded: in the body\r\n")
    assert forwarded_by_syncer(b"x-syncer-forwarded:  rule\nSubject: x\n\nbody\n")
    assert not forwarded_by_syncer(b"Subject: about X-Syncer-Forwarded: headers\r\n\r\n")


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError):
        header_block([("Resent-To", "a@example.com\r\nBcc: everyone@example.com")])
