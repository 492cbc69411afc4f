"""mbox files in the mboxrd form: written and read back byte for byte.

Why mboxrd: in an mbox a line starting with ``From `` begins the next message,
so such lines inside a message must be quoted. mboxo quotes ``From `` as
``>From `` and cannot be undone (was ``>From `` there before?); mboxrd also
quotes ``>From ``, ``>>From `` ... by one more ``>``, so reading removes exactly
one ``>`` from every ``>+From `` line and gives back the original bytes.

Layout written by :func:`write_message`::

    From MAILER-DAEMON Thu Jan  4 10:00:00 2024\\n     <- the From_ line (INTERNALDATE, UTC)
    <the message, From-quoted>                      <- line ends kept as they are (CRLF)
    \\n                                              <- one blank separator line

A message that does not end in a line break (rare) gets one, so the next
From_ line starts a line; its From_ line then ends in ``" syncer-nonl"``
(other readers ignore what follows the date) and :func:`read_messages` takes
the added line break off again. Reading needs the blank line before a From_
line, which makes it tolerant of unquoted ``From `` lines in mboxo files from
elsewhere (Google Takeout); those are un-quoted the mboxrd way, which for an
mboxo file can take a ``>`` off a line that had it originally (the format
cannot say).

Public API: :func:`write_message`, :func:`from_line`, :func:`read_messages`,
:class:`MboxMessage`, :func:`status_flags`, :func:`gmail_labels`.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MboxMessage",
    "from_line",
    "gmail_labels",
    "read_messages",
    "status_flags",
    "write_message",
]

_QUOTE = re.compile(rb"^(>*From )", re.MULTILINE)
_UNQUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)
# A From_ line starts the file or follows a blank line (LF or CRLF).
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
_NO_NEWLINE = b" syncer-nonl"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# asctime() as mbox writers put it, optionally with a zone before the year (Takeout).
_ASCTIME = re.compile(
    rb"[A-Za-z]{3} +([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))?"
    rb"(?: +([+-]\d{4}))? +(\d{4})"
)


@dataclass(frozen=True, slots=True)
class MboxMessage:
    """One message read from an mbox: its bytes (un-quoted) and the From_ line's date."""

    raw: bytes
    when: datetime | None
    offset: int


def from_line(when: datetime | None, sender: str = "MAILER-DAEMON") -> bytes:
    """``From sender Thu Jan  4 10:00:00 2024`` (asctime, UTC); the epoch when unknown."""
    moment = (when or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC)
    date = (
        f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day:2d} "
        f"{moment:%H:%M:%S} {moment.year}"
    )
    return f"From {sender} {date}".encode("ascii", "replace")


def write_message(out: BinaryIO, raw: bytes, when: datetime | None) -> int:
    """Append one message to an open mbox; return the bytes written."""
    ends = raw.endswith(b"\n")
    head = from_line(when) + (b"\n" if ends else _NO_NEWLINE + b"\n")
    body = _QUOTE.sub(rb">\1", raw)
    tail = b"\n" if ends else b"\n\n"
    out.write(head)
    out.write(body)
    out.write(tail)
    return len(head) + len(body) + len(tail)


def _parse_date(line: bytes) -> datetime | None:
    m = _ASCTIME.search(line)
    if m is None:
        return None
    month_name = m.group(1).decode("ascii").title()
    if month_name not in _MONTHS:
        return None
    try:
        when = datetime(
            int(m.group(7)),
            _MONTHS.index(month_name) + 1,
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4)),
            int(m.group(5) or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    zone = m.group(6)
    if zone:
        sign = -1 if zone[:1] == b"-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        when = when.replace(tzinfo=timezone(offset)).astimezone(UTC)
    return when


def _message(chunk: bytes, offset: int) -> MboxMessage:
    line_end = chunk.find(b"\n")
    line = chunk[: line_end + 1] if line_end >= 0 else chunk
    body = chunk[len(line) :]
    if line.endswith(b"\r\n") and body.endswith(b"\r\n\r\n"):
        body = body[:-2]  # a CRLF mbox from elsewhere: the separator is a CRLF line
    elif body.endswith(b"\n"):
        body = body[:-1]
    if line.rstrip(b"\r\n").endswith(_NO_NEWLINE) and body.endswith(b"\n"):
        body = body[:-1]
    return MboxMessage(_UNQUOTE.sub(rb"\1", body), _parse_date(line), offset)


def read_messages(path: Path) -> Iterator[MboxMessage]:
    """The messages of the mbox at ``path``, in order (the file is memory-mapped).

    :raises ValueError: when the file is not empty and does not start with ``From ``.
    """
    with path.open("rb") as fh:
        if fh.seek(0, 2) == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:5] != b"From ":
                raise ValueError(f"{path} is not an mbox file (it does not start with 'From ').")
            start = 0
            for match in _SEPARATOR.finditer(data):
                end = match.end()
                yield _message(data[start:end], start)
                start = end
            yield _message(data[start:], start)


def _headers(raw: bytes) -> object:
    return BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)


def status_flags(raw: bytes) -> tuple[str, ...]:
    """IMAP flags from the ``Status:``/``X-Status:`` headers mail readers write into mbox.

    ``Status: R`` is ``\\Seen``; ``X-Status`` letters A, F, T, D are ``\\Answered``,
    ``\\Flagged``, ``\\Draft``, ``\\Deleted``.
    """
    msg = _headers(raw)
    status = str(msg.get("Status", "") or "")  # type: ignore[attr-defined]
    xstatus = str(msg.get("X-Status", "") or "")  # type: ignore[attr-defined]
    flags = {"\\Seen"} if "R" in status else set()
    for letter, flag in (("A", "\\Answered"), ("F", "\\Flagged"), ("T", "\\Draft")):
        if letter in xstatus:
            flags.add(flag)
    if "D" in xstatus:
        flags.add("\\Deleted")
    return tuple(sorted(flags))


def gmail_labels(raw: bytes) -> list[str] | None:
    """The labels of ``X-Gmail-Labels`` (Google Takeout), or None without that header.

    Labels are comma-separated; a label holding a comma is double-quoted.
    """
    msg = _headers(raw)
    value = msg.get("X-Gmail-Labels")  # type: ignore[attr-defined]
    if value is None:
        return None
    text = " ".join(str(value).split("\n")).replace("\r", "")
    labels: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            labels.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    labels.append("".join(current).strip())
    return [label for label in labels if label]
