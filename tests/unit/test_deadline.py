"""Reads under an overall deadline, and the bounds of one body batch, on loopback pairs.

Why: a per-read timeout never fires against a server that trickles; these check
that the deadline does, that reads never consume past what they return (imaplib
and poplib keep using the same buffered reader), and that a batch keeps only what
it asked for. The end-to-end cases are in tests/integration/test_hostile_servers.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import pytest

from syncer.sources.deadline import DeadlineExceeded, Guard, LineTooLong, read_exact, read_line
from syncer.sources.imap.batch import BatchGuard
from syncer.sources.imap.parser import FetchItem, ResponseError, UIDRanges, body_allowance


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _trickle(sock: socket.socket, data: bytes, every: float) -> threading.Thread:
    def run() -> None:
        for i in range(len(data)):
            try:
                sock.sendall(data[i : i + 1])
            except OSError:
                return
            time.sleep(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_trickled_line_fails_at_the_deadline_though_no_read_times_out(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    _trickle(server, b"* OK " + b"." * 1000 + b"\r\n", 0.02)
    guard = Guard(0.1)  # each byte comes well within the 0.1 s read timeout
    guard.arm("the greeting")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="the answer to the greeting was not complete"):
        read_line(client.makefile("rb"), client, guard)
    assert time.monotonic() - started < 1.0  # 3 x 0.1 s, plus one read


def test_reads_stop_at_what_they_return(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(b"line one\r\n{5}\r\nhello rest\r\n")
    reader = client.makefile("rb")
    guard = Guard(1)
    assert read_line(reader, client, guard) == b"line one\r\n"
    assert read_line(reader, client, guard) == b"{5}\r\n"
    assert read_exact(reader, client, guard, 5) == b"hello"
    assert reader.readline() == b" rest\r\n", "the rest is still there for imaplib"


def test_an_endless_line_is_named(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(b"x" * 5000)
    with pytest.raises(LineTooLong, match="the server sent an over-long line"):
        read_line(client.makefile("rb"), client, Guard(1), max_line=1000)


def _body(uid: int, raw: bytes) -> FetchItem:
    return FetchItem(seq=uid, uid=uid, sections={"": raw})


def test_a_batch_drops_unsolicited_bodies_and_refuses_conflicts() -> None:
    guard = BatchGuard({1: 10, 2: 10})
    assert guard.max_literal == body_allowance(10)
    guard.take(_body(99, b"x" * 10))
    guard.take(_body(1, b"a" * 10))
    guard.take(_body(1, b"a" * 10))  # an identical repeat is harmless
    guard.take(_body(2, b"b" * 10))
    guard.take(_body(2, b"c" * 10))
    assert set(guard.got) == {1, 2} and guard.got[2].sections[""] == b"b" * 10
    with pytest.raises(ResponseError, match="two different bodies for UID 2"):
        guard.report("INBOX")


def test_a_body_beyond_its_announced_size_is_refused() -> None:
    guard = BatchGuard({1: 10, 2: 100_000})
    guard.take(_body(1, b"a" * body_allowance(10) + b"!"))
    with pytest.raises(ResponseError, match=r"UID 1 \(65,548 bytes, RFC822.SIZE 10\)"):
        guard.report("INBOX")


def test_uid_ranges_behave_as_a_set_without_expanding() -> None:
    ranges = UIDRanges([(5, 9), (1, 2), (3, 3), (4_000_000_000, 4_000_000_001)])
    assert len(ranges) == 10 and 3 in ranges and 10 not in ranges
    assert {1, 10, 4_000_000_001} & ranges == frozenset({1, 4_000_000_001})
    as_set: AbstractSet[int] = UIDRanges([(1, 3)])  # compared as the Set it is
    assert as_set == frozenset({1, 2, 3})


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_missed_deadline_is_transient_and_says_why(protocol: str) -> None:
    from syncer.errors import SourceUnavailable
    from syncer.sources.wording import ErrorContext

    if protocol == "imap":
        from syncer.sources.imap.errors import map_errors

        context = map_errors(ErrorContext("acct", "acct", "h", 143, 3.0, lambda: None))
    else:
        from syncer.sources.pop3 import errors as pop3

        context = pop3.map_errors(ErrorContext("acct", "acct", "h", 110, 3.0, lambda: None))
    guard = Guard(3.0)
    guard.arm("UID FETCH", 1000)
    expected = r"is too slow.*the answer to UID FETCH"
    with pytest.raises(SourceUnavailable, match=expected) as info, context:
        raise guard.expired()
    assert info.value.transient
