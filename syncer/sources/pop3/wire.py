"""The POP3 wire format the adapter needs beyond poplib: multi-line answers read exactly.

Why this exists: poplib reads a multi-line answer one line at a time, refuses
lines over 2,048 bytes (real mail has longer ones) and strips each line's end,
so it can give neither the exact bytes of a message nor speed. Here a RETR or
TOP answer is read in large chunks until the terminating ``CRLF . CRLF``, then
dot-unstuffed in one pass (:rfc:`1939#section-3`), and the result is checked
against the size LIST gave for it, which is how a truncated message is caught.

Also here: the LIST/UIDL/CAPA line parsers and the private exceptions the
adapter raises for :mod:`._pop3_errors` to map.

Public API (private to ``syncer.sources``): :func:`read_multiline`,
:func:`checked_size`, :func:`parse_scan_lines`, :func:`parse_uidl_lines`,
:func:`parse_capa_lines`, :func:`ssl_context`, :data:`TRANSIENT`, :data:`MAX_LISTING`,
:func:`body_allowance`, and the
exceptions :class:`ConnectionClosed`, :class:`FramingError`, :class:`Truncated`,
:class:`NotOffered`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterable

from syncer.protocols import errors as protocol_errors
from syncer.protocols.errors import ConnectionLost, Malformed, OutOfStep

#: Ends every multi-line answer; a body line that is a lone "." is sent as "..".
TERMINATOR = b"\r\n.\r\n"

#: -ERR answers that mean "later", not "never": RFC 2449/3206 response codes, and wording.
TRANSIENT = re.compile(r"\[(?:SYS/TEMP|IN-USE|LOGIN-DELAY)\]|try again|temporar", re.IGNORECASE)

#: Read size for message bodies: large enough that a typical message takes one or two reads.
CHUNK = 256 * 1024

#: The most a LIST, UIDL, CAPA or TOP answer may carry (about 500,000 messages' LIST lines).
MAX_LISTING = 16 * 1024 * 1024


def body_allowance(size: int) -> int:
    """The most bytes a RETR answer for a message LIST gave as ``size`` may carry before
    it is a protocol error (dot-stuffing and loosely counted sizes fit well inside)."""
    return size + size // 8 + 64 * 1024


class ConnectionClosed(ConnectionLost):
    """The server closed the connection in the middle of an answer."""


class FramingError(OutOfStep):
    """The byte stream is not a POP3 answer any more (the session must be dropped)."""


class NotOffered(protocol_errors.NotOffered):
    """The server lacks something the configuration asks for (STLS, APOP, SASL PLAIN)."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


class Truncated(Malformed):
    """A RETR answer did not carry as many bytes as LIST said (the session is still in step)."""

    def __init__(self, number: int, uidl: str | None, got: int, listed: int) -> None:
        super().__init__(f"message {number} came back with {got} bytes, LIST said {listed}")
        self.number = number
        self.uidl = uidl
        self.got = got
        self.listed = listed


def read_multiline(
    read: Callable[[int], bytes], chunk: int = CHUNK, *, max_bytes: int | None = None
) -> bytes:
    """Read the lines of a multi-line answer after its status line; return them unstuffed.

    The result is every line with its CRLF, the terminating ``.`` line
    excluded, and a leading ``..`` turned back into ``.``.

    :param read: returns up to n bytes, at least one unless the connection
        closed (``BufferedReader.read1``).
    :raises ConnectionClosed: when the stream ends before the terminator.
    :raises FramingError: when bytes follow the terminator (the server sent
        something nobody asked for, so later answers would be misread), or when
        the answer passes ``max_bytes`` without ending.
    """
    # Starting with the status line's CRLF makes an empty answer (".\r\n" at once) and a
    # leading ".." line look like every other line: each is preceded by "\r\n".
    buf = bytearray(b"\r\n")
    start = 0
    while True:
        end = buf.find(TERMINATOR, start)
        if end >= 0:
            break
        start = max(len(buf) - len(TERMINATOR) + 1, 0)
        data = read(chunk)
        if not data:
            raise ConnectionClosed(
                f"the connection closed after {len(buf) - 2} bytes of a multi-line answer"
            )
        buf += data
        if max_bytes is not None and len(buf) > max_bytes + len(TERMINATOR):
            raise FramingError(
                f"the answer went on past {max_bytes:,} bytes without ending "
                "(more than the server announced)"
            )
    if end + len(TERMINATOR) != len(buf):
        raise FramingError(
            f"{len(buf) - end - len(TERMINATOR)} unexpected bytes after the end of an answer"
        )
    del buf[end + 2 :]  # keep the CRLF of the last line, drop ".\r\n"
    if b"\r\n.." in buf:
        buf = buf.replace(b"\r\n..", b"\r\n.")
    return bytes(memoryview(buf)[2:])


def checked_size(number: int, uidl: str | None, body: bytes, listed: int) -> bytes:
    """The message as stored on the server, after checking ``body`` against LIST's size.

    Servers count what they send, CRLF line ends included (Dovecot: the
    "virtual size"), so the body must be exactly ``listed`` bytes. One
    exception: a message that does not end in a line break is sent with a CRLF
    added before the terminator (the multi-line format needs it); that CRLF is
    removed again, so the archive holds the message exactly as stored.

    :raises Truncated: when the sizes disagree any other way.
    """
    got = len(body)
    if got == listed:
        return body
    if got == listed + 2 and body.endswith(b"\r\n") and not body[:-2].endswith(b"\n"):
        return body[:-2]
    raise Truncated(number, uidl, got, listed)


def _fields(line: bytes) -> list[str]:
    return line.decode("ascii", "replace").split()


def parse_scan_lines(lines: Iterable[bytes]) -> dict[int, int]:
    """LIST's lines (``"1 1234"``) as message number -> size.

    :raises FramingError: on a line that is not ``number size``.
    """
    result: dict[int, int] = {}
    for line in lines:
        fields = _fields(line)
        if len(fields) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
            raise FramingError(f"LIST sent a line that is not 'number size': {line[:80]!r}")
        result[int(fields[0])] = int(fields[1])
    return result


def parse_uidl_lines(lines: Iterable[bytes]) -> dict[int, str]:
    """UIDL's lines (``"1 000000016b08f74c"``) as message number -> uidl.

    :raises FramingError: on a line that is not ``number uidl``.
    """
    result: dict[int, str] = {}
    for line in lines:
        fields = _fields(line)
        if len(fields) != 2 or not fields[0].isdigit():
            raise FramingError(f"UIDL sent a line that is not 'number uidl': {line[:80]!r}")
        result[int(fields[0])] = fields[1]
    return result


def parse_capa_lines(lines: Iterable[bytes]) -> dict[str, tuple[str, ...]]:
    """CAPA's lines (``"SASL PLAIN LOGIN"``) as upper-cased name -> arguments."""
    result: dict[str, tuple[str, ...]] = {}
    for line in lines:
        fields = _fields(line)
        if fields:
            result[fields[0].upper()] = tuple(fields[1:])
    return result


def ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """TLS 1.2 or later; certificate and host name checked unless ``verify`` is False."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
