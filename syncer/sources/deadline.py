"""Overall deadlines for reading a server's answer, and reads that honour them.

Why this exists: a socket timeout bounds each read, not the answer. A server
that trickles one byte every two seconds never trips a 3-second timeout and
could keep a sync alive for ever, in the greeting or in the middle of a
literal. Here each command's answer gets a deadline derived from the
configured ``timeout`` and the bytes it is expected to carry (:func:`allowance`):
``GRACE`` times the timeout, plus the time those bytes take at ``MIN_RATE``.
The reads below check it between raw socket reads (never more than one
``recv`` happens without a check) and shorten the socket timeout as the
deadline nears, so a trickling or stalled server fails within the deadline
plus one read, with :class:`DeadlineExceeded` (a ``TimeoutError``: transient,
retried like any timeout).

The reads work on a socket's ``BufferedReader`` (``sock.makefile("rb")``,
what imaplib and poplib use, TLS included) and never read past what they
return, so the protocol libraries can keep using the same reader.

Public API (private to ``syncer.sources``): :data:`GRACE`, :data:`MIN_RATE`,
:data:`MAX_LINE`, :func:`allowance`, :class:`Guard`, :class:`DeadlineExceeded`,
:class:`LineTooLong`, :func:`read_line`, :func:`read_exact`, :func:`read_some`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Protocol

#: The deadline of an answer is GRACE x timeout plus its transfer time at MIN_RATE.
GRACE = 3
#: The slowest average rate (bytes/s) a transfer may have before it counts as stalled.
MIN_RATE = 32 * 1024
#: No protocol line needs more (imaplib's own limit is 1,000,000 bytes).
MAX_LINE = 1_000_000


class DeadlineExceeded(TimeoutError):
    """An answer did not arrive completely within its deadline (stalled or trickling)."""


class LineTooLong(Exception):
    """The server sent a line longer than :data:`MAX_LINE` (the stream is out of step)."""


class BufferedSocketReader(Protocol):
    """What the reads need: a ``BufferedReader`` over the socket."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...

    def readinto1(self, buffer: memoryview, /) -> int: ...


def allowance(timeout: float, expected_bytes: int = 0, rate: float | None = None) -> float:
    """Seconds an answer of ``expected_bytes`` may take: GRACE x ``timeout`` plus its
    transfer time at MIN_RATE (or at ``rate``, a configured throttle, when slower)."""
    floor = min(MIN_RATE, rate) if rate else MIN_RATE
    return GRACE * timeout + expected_bytes / floor


class Guard:
    """The deadline of the answer being read; reads call :meth:`before_read`.

    Unarmed, reads use the plain per-read ``timeout``. :meth:`arm` starts a
    deadline for one command's answer (``what`` names it in the error).
    """

    def __init__(self, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._end: float | None = None
        self._seconds = 0.0
        self._what = ""
        self.received = 0
        self._applied: float | None = None
        self._sock: socket.socket | None = None

    def arm(self, what: str, expected_bytes: int = 0, rate: float | None = None) -> None:
        self._seconds = allowance(self.timeout, expected_bytes, rate)
        self._end = self._clock() + self._seconds
        self._what = what
        self.received = 0

    def disarm(self) -> None:
        self._end = None

    def before_read(self, sock: socket.socket | None) -> None:
        """Raise when the deadline has passed; else let the next raw read wait at most
        until the deadline (and never longer than ``timeout``)."""
        wait = self.timeout
        if self._end is not None:
            left = self._end - self._clock()
            if left <= 0:
                raise self.expired()
            wait = min(wait, left)
        # STARTTLS replaces the socket: a new one gets the timeout whatever was applied.
        if sock is not None and (wait != self._applied or sock is not self._sock):
            sock.settimeout(wait)
            self._applied, self._sock = wait, sock

    def expired(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"the answer to {self._what} was not complete after {self._seconds:g} s "
            f"({self.received} bytes arrived; the deadline is {GRACE} x timeout "
            f"{self.timeout:g} s plus the transfer time at {MIN_RATE // 1024} KiB/s): "
            "the server stalled or sends too slowly"
        )

    def timed_out(self, exc: TimeoutError) -> TimeoutError:
        """What a socket timeout means: the deadline's error when it has passed."""
        if self._end is not None and self._clock() >= self._end:
            return self.expired()
        return exc


def _peek(reader: BufferedSocketReader, sock: socket.socket | None, guard: Guard) -> bytes:
    """What is buffered, after at most one raw read, under the guard."""
    guard.before_read(sock)
    try:
        return reader.peek(1)
    except TimeoutError as exc:
        raise guard.timed_out(exc) from exc


def read_line(
    reader: BufferedSocketReader,
    sock: socket.socket | None,
    guard: Guard,
    max_line: int = MAX_LINE,
) -> bytes:
    """One line with its LF (shorter only at EOF), read under ``guard``.

    :raises LineTooLong: past ``max_line`` bytes without a line end.
    :raises DeadlineExceeded:
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        buffered = _peek(reader, sock, guard)
        if not buffered:
            return b"".join(chunks)
        end = buffered.find(b"\n")
        take = end + 1 if end >= 0 else len(buffered)
        chunks.append(reader.read(take))  # served from the buffer: no raw read
        total += take
        guard.received += take
        if end >= 0:
            return b"".join(chunks)
        if total > max_line:
            raise LineTooLong(
                f"the server sent an over-long line (more than {max_line:,} bytes "
                "without a line end)"
            )


def read_exact(
    reader: BufferedSocketReader, sock: socket.socket | None, guard: Guard, size: int
) -> bytes:
    """``size`` bytes (fewer only at EOF), read under ``guard``.

    :raises DeadlineExceeded:
    """
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        guard.before_read(sock)
        try:
            n = reader.readinto1(view[got:])
        except TimeoutError as exc:
            raise guard.timed_out(exc) from exc
        if not n:
            break
        got += n
        guard.received += n
    view.release()
    if got < size:
        del buf[got:]
    return bytes(buf)


def read_some(
    reader: BufferedSocketReader, sock: socket.socket | None, guard: Guard, size: int
) -> bytes:
    """Up to ``size`` bytes from at most one raw read (b"" at EOF), under ``guard``.

    What is buffered is returned without a raw read (``readinto1`` with a large
    buffer would block for more even when the buffer already held the answer).

    :raises DeadlineExceeded:
    """
    buffered = _peek(reader, sock, guard)
    data = reader.read(min(size, len(buffered))) if buffered else b""
    guard.received += len(data)
    return data
