"""The POP3 wire format: multi-line answers read exactly, sizes checked, listings parsed.

Answers are fed in chunks of every size, so a terminator or a dot-stuffed line
split across reads is covered.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from syncer.sources.pop3.wire import (
    ConnectionClosed,
    FramingError,
    Truncated,
    checked_size,
    parse_capa_lines,
    parse_scan_lines,
    parse_uidl_lines,
    read_multiline,
)


def chunked(data: bytes, size: int) -> Callable[[int], bytes]:
    """A ``read1`` that hands out ``data`` at most ``size`` bytes at a time, then EOF."""
    view = memoryview(data)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        part = bytes(view[pos : pos + min(n, size)])
        pos += len(part)
        return part

    return read


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 64, 1 << 20])
def test_an_answer_comes_back_unstuffed_whatever_the_chunking(size: int) -> None:
    wire = b"..leading dot\r\nmiddle\r\n..\r\n...three\r\nend\r\n.\r\n"
    assert (
        read_multiline(chunked(wire, size)) == b".leading dot\r\nmiddle\r\n.\r\n..three\r\nend\r\n"
    )


def test_an_empty_answer_is_empty() -> None:
    assert read_multiline(chunked(b".\r\n", 1)) == b""


def test_lines_longer_than_poplibs_limit_are_fine() -> None:
    line = b"x" * 100_000 + b"\r\n"
    assert read_multiline(chunked(line + b".\r\n", 4096)) == line


def test_a_dot_inside_a_line_is_not_a_terminator() -> None:
    wire = b"a.\r\nb\r\n.c\r\n.\r\n"  # ".c" is not dot-stuffed: a server error we pass on
    assert read_multiline(chunked(wire, 3)) == b"a.\r\nb\r\n.c\r\n"


def test_a_connection_closed_before_the_terminator_is_reported() -> None:
    with pytest.raises(ConnectionClosed, match="after 10 bytes"):
        read_multiline(chunked(b"partial\r\nx", 4))


def test_bytes_after_the_terminator_are_a_framing_error() -> None:
    with pytest.raises(FramingError, match="3 unexpected bytes"):
        read_multiline(chunked(b"a\r\n.\r\n+OK", 100))


def test_size_equal_to_list_is_accepted() -> None:
    assert checked_size(1, "u1", b"abc\r\n", 5) == b"abc\r\n"


def test_the_crlf_a_server_adds_to_a_message_without_line_end_is_removed() -> None:
    # Dovecot: LIST 33 for "...no trailing newline", RETR sends it with "\r\n" added.
    body = b"Subject: a\r\n\r\nno trailing newline\r\n"
    assert checked_size(1, "u1", body, len(body) - 2) == body[:-2]


@pytest.mark.parametrize(
    ("body", "listed"),
    [
        (b"Subject: a\r\n\r\nshort\r\n", 400),  # truncated
        (b"Subject: a\r\n\r\nlonger than said\r\n", 10),
        (b"Subject: a\r\n\r\nline\r\n\r\n", 20),  # +2, but it did end in a line break
    ],
)
def test_any_other_size_difference_is_truncation(body: bytes, listed: int) -> None:
    with pytest.raises(Truncated) as caught:
        checked_size(7, "uidl-7", body, listed)
    assert (caught.value.number, caught.value.uidl) == (7, "uidl-7")
    assert (caught.value.got, caught.value.listed) == (len(body), listed)


def test_listings_are_parsed() -> None:
    assert parse_scan_lines([b"1 33", b"2 5016 extra"]) == {1: 33, 2: 5016}
    assert parse_uidl_lines([b"1 000000016b08f74c", b"2 abc"]) == {1: "000000016b08f74c", 2: "abc"}
    capa = parse_capa_lines([b"TOP", b"sasl PLAIN LOGIN", b"", b"IMPLEMENTATION Dovecot 2"])
    assert capa == {"TOP": (), "SASL": ("PLAIN", "LOGIN"), "IMPLEMENTATION": ("Dovecot", "2")}


@pytest.mark.parametrize(
    ("parse", "line"),
    [(parse_scan_lines, b"1"), (parse_scan_lines, b"x 2"), (parse_uidl_lines, b"1 a b")],
)
def test_malformed_listing_lines_are_framing_errors(
    parse: Callable[[list[bytes]], object], line: bytes
) -> None:
    with pytest.raises(FramingError):
        parse([line])
