"""The lean IMAP response reader: framing, a small tokenizer and the FETCH parser.

Why this exists: imapclient's ``fetch()`` runs every answer through a
pure-Python lexer that looks at each byte of each body, which makes a bulk
download about six times slower than reading the socket (docs/performance.md).
Here a response is read line by line; a ``{N}`` at the end of a line announces
a literal, which is read as one ``read(N)`` and never scanned. Only the short
non-literal text around it (``UID 7 FLAGS (\\Seen) BODY[] {N}``) is tokenized.

Everything here is pure: the reader takes any object with ``readline()`` and
``read(n)`` (imaplib's connection, or ``io.BytesIO`` in the tests), so the
framing and the parser are tested on byte fixtures and with hypothesis.

Public API (private to ``syncer.sources``):

* :func:`read_response` -- one complete server response (line plus literals).
* :func:`parse_tokens` / :func:`parse_fetch` / :func:`parse_completion`.
* :class:`FetchItem` -- what one ``* n FETCH (...)`` carried.
* :func:`compress_uids`, :func:`parse_uid_set`, :func:`parse_uid_ranges`, :class:`UIDRanges`,
  :func:`parse_internaldate`, :func:`normalise_flags`, :func:`quote`, :func:`plan_batches`.
* :class:`ThrottledReader` -- optional bandwidth cap for the bulk download.
* Exceptions: :class:`ConnectionClosed` (the stream ended), :class:`FramingError`
  (the stream is out of step: the connection must be dropped),
  :class:`ResponseError` (one response was malformed; the stream is still in step).
"""

from __future__ import annotations

import bisect
import re
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple, Protocol, TypeAlias

from syncer.protocols.errors import ConnectionLost, Malformed, OutOfStep
from syncer.sources.folder_names import decode_level

# Literals larger than this are refused as a framing error: no IMAP server sends a
# 2 GiB message, and trusting a bogus length would try to read the rest of the stream.
MAX_LITERAL = 2**31

# What one response may carry in literals unless the command expects more (a body
# FETCH sets its own cap from RFC822.SIZE): folder names, search keys and the like
# are short, so a hostile length cannot make the reader allocate much.
DEFAULT_MAX_LITERAL = 1024 * 1024

# UID sets longer than this are split over several commands (Dovecot answers
# "Too long argument" somewhere past 64 KiB; stay well below).
MAX_UID_SET_BYTES = 8000

# Expanding a uid-set like "1:4000000000" would eat the machine; parse_uid_set refuses more.
MAX_UID_SET_SIZE = 20_000_000

# The most ranges QRESYNC's VANISHED answers may name in all (16 bytes each, kept as
# ranges: see UIDRanges); past it the delta is distrusted and the full listing is used.
MAX_VANISHED_RANGES = 100_000

# The most UIDs one answer (SEARCH, a FETCH listing of a folder) may name in
# all. Each costs about 60 bytes in a Python set, so this keeps a hostile answer under
# about 60 MB; a folder with more messages than this cannot be synced (documented).
MAX_ANSWER_UIDS = 1_000_000


# A body may exceed the RFC822.SIZE the server announced by this much before it is a
# protocol error (some servers count sizes loosely): size / 8 plus 64 KiB.
def body_allowance(size: int) -> int:
    """The most bytes a body announced as ``size`` bytes may have."""
    return size + size // 8 + 64 * 1024


class ConnectionClosed(ConnectionLost):
    """The server closed the connection (EOF, short literal, BYE)."""


class FramingError(OutOfStep):
    """A line or literal broke the protocol's framing; the stream is out of step."""


class ResponseError(Malformed):
    """One response was malformed, but the stream is still in step."""


class LineSource(Protocol):
    """What the reader needs from a connection (imaplib.IMAP4 or io.BytesIO)."""

    def readline(self) -> bytes: ...

    def read(self, size: int) -> bytes: ...


class Response(NamedTuple):
    """One server response: its text without CRLF, and the literals it carried.

    A literal stays announced in ``text`` as ``{N}`` at the place it occurred, so
    the tokenizer knows where each payload belongs.
    """

    text: bytes
    literals: tuple[bytes, ...] | list[bytes]


class Completion(NamedTuple):
    """A tagged completion line: ``tag OK [CODE data] text``."""

    status: str  # OK | NO | BAD
    code: str | None  # response code, upper-cased (UNAVAILABLE, EXPUNGEISSUED, ...)
    code_data: str | None
    text: str


# -- framing --------------------------------------------------------------------------------

# Untagged status responses carry free text, where a trailing "{5}" is not a literal.
_STATUS_RESPONSE = re.compile(rb"\* (?:OK|NO|BAD|BYE|PREAUTH)(?: |\Z)", re.IGNORECASE)


def read_response(src: LineSource, max_literal: int = MAX_LITERAL) -> Response:
    """Read one complete response: a line and, for data responses, its literals.

    :param max_literal: the most literal bytes the response may carry in all; a
        longer announcement is refused before any of it is read.
    :raises ConnectionClosed: EOF, or a literal cut short.
    :raises FramingError: a line without CRLF, or a literal length beyond ``max_literal``.
    """
    line = src.readline()
    if line[-2:] != b"\r\n":
        if not line:
            raise ConnectionClosed("the server closed the connection")
        raise FramingError(f"line not terminated by CRLF: {line[:80]!r}")
    text = line[:-2]
    # Fast path: almost every line has no literal. A literal can only follow an
    # untagged data response (tagged and continuation lines carry free text).
    if text[-1:] != b"}" or text[:2] != b"* " or _STATUS_RESPONSE.match(text):
        return Response(text, ())
    parts: list[bytes] = []
    literals: list[bytes] = []
    budget = max_literal
    while True:
        size = _literal_size(text)
        if size is None:
            parts.append(text)
            break
        if size > budget:
            raise FramingError(
                f"the server announced a literal of {size:,} bytes where at most "
                f"{max_literal:,} were expected in this response"
            )
        budget -= size
        data = src.read(size)
        if len(data) != size:
            raise ConnectionClosed(
                f"the connection closed inside a literal ({len(data)} of {size} bytes)"
            )
        parts.append(text)
        literals.append(data)
        line = src.readline()
        if line[-2:] != b"\r\n":
            if not line:
                raise ConnectionClosed("the server closed the connection after a literal")
            raise FramingError(f"line not terminated by CRLF: {line[:80]!r}")
        text = line[:-2]
    return Response(b"".join(parts), literals)


def _literal_size(text: bytes) -> int | None:
    """N when ``text`` ends with a literal announcement ``{N}`` (or ``~{N}``), else None."""
    if text[-1:] != b"}":
        return None
    start = text.rfind(b"{")
    if start < 0:
        return None
    digits = text[start + 1 : -1]
    if not digits.isdigit():
        return None
    size = int(digits)
    if size > MAX_LITERAL:
        raise FramingError(f"literal of {size} bytes announced")
    return size


_COMPLETION = re.compile(
    rb"(?P<status>[A-Za-z]+)(?: \[(?P<code>[A-Za-z0-9.-]+)(?: (?P<data>[^\]]*))?\])? ?(?P<text>.*)",
    re.DOTALL,
)


def parse_completion(rest: bytes) -> Completion:
    """Parse what follows ``tag SP`` in a tagged line.

    :raises FramingError: when the status is not OK, NO or BAD.
    """
    m = _COMPLETION.match(rest)
    status = m.group("status").upper() if m else b""
    if m is None or status not in (b"OK", b"NO", b"BAD"):
        raise FramingError(f"malformed tagged response: {rest[:80]!r}")
    code = m.group("code")
    data = m.group("data")
    return Completion(
        status.decode("ascii"),
        code.decode("ascii").upper() if code else None,
        data.decode("utf-8", "replace") if data is not None else None,
        m.group("text").decode("utf-8", "replace"),
    )


# -- tokenizer ------------------------------------------------------------------------------

# One token, after optional spaces: "(" | ")" | "quoted" | {N} literal marker | atom.
# Atoms may carry a bracketed section with spaces and parentheses inside
# (BODY[HEADER.FIELDS (FROM TO)]<0>); "]" alone is tolerated in atoms because some
# servers (Gmail) put it into keywords.
_TOKEN = re.compile(
    rb" *(?:(\()|(\))"  # 1: "(", 2: ")"
    rb'|"((?:[^"\\\r\n]|\\[^\r\n])*)"'  # 3: quoted string
    rb"|~?\{(\d+)\}"  # 4: literal marker
    rb'|((?:[^ ()"{\[\r\n]|\[[^\]\r\n]*\])+))'  # 5: atom, maybe with [section]
)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)

#: A parsed value: an atom or string (bytes), NIL (None), or a parenthesized list.
Value: TypeAlias = "bytes | list[Value] | None"


def parse_tokens(text: bytes, pos: int = 0, literals: Iterable[bytes] = ()) -> list[Value]:
    """Parse ``text[pos:]`` to the end into values; literals fill ``{N}`` markers in order.

    :raises ResponseError: unbalanced parentheses, stray characters, literal mismatch.
    """
    values, pos = _parse_seq(text, pos, iter(literals), nested=False)
    return values


def _parse_seq(
    text: bytes, pos: int, literals: Iterator[bytes], *, nested: bool
) -> tuple[list[Value], int]:
    out: list[Value] = []
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        if m is None:
            rest = text[pos:].strip(b" ")
            if rest or nested:
                what = f"unexpected {rest[:40]!r}" if rest else "missing ')'"
                raise ResponseError(f"{what} in {text[:120]!r}")
            return out, len(text)
        pos = m.end()
        kind = m.lastindex
        if kind == 5:
            atom = m.group(5)
            out.append(None if atom.upper() == b"NIL" else atom)
        elif kind == 4:
            literal = next(literals, None)
            if literal is None or len(literal) != int(m.group(4)):
                raise ResponseError(f"literal {m.group(0).strip()!r} has no matching payload")
            out.append(literal)
        elif kind == 3:
            quoted = m.group(3)
            out.append(_UNESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        elif kind == 1:
            sub, pos = _parse_seq(text, pos, literals, nested=True)
            out.append(sub)
        else:  # ")"
            if not nested:
                raise ResponseError(f"unbalanced ')' in {text[:120]!r}")
            return out, pos


def quote(value: str | bytes) -> bytes:
    """``value`` as an IMAP quoted string, escaping ``"`` and ``\\``.

    :raises ValueError: for CR, LF, NUL or 8-bit bytes (those need a literal).
    """
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if any(b > 0x7E or b in (0x00, 0x0A, 0x0D) for b in raw):
        raise ValueError("needs a literal")
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# -- FETCH ----------------------------------------------------------------------------------

_FETCH_HEAD = re.compile(rb"\* (\d+) FETCH \(", re.IGNORECASE)


def is_fetch(text: bytes) -> bool:
    """True for ``* n FETCH (...`` responses."""
    return _FETCH_HEAD.match(text) is not None


@dataclass(slots=True)
class FetchItem:
    """The data items of one FETCH response (None: not in this response).

    ``sections`` maps a BODY section spec (``""`` for ``BODY[]``, ``"HEADER"``)
    to its bytes, or None when the server sent NIL (Dovecot does that for a
    message expunged by another session, with ``OK [EXPUNGEISSUED]``).
    """

    seq: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    internaldate: datetime | None = None
    size: int | None = None
    modseq: int | None = None
    emailid: str | None = None
    gm_msgid: int | None = None
    gm_labels: tuple[str, ...] | None = None
    sections: dict[str, bytes | None] = field(default_factory=dict)

    def merge(self, other: FetchItem) -> None:
        """Take what a later response for the same message added or changed."""
        for name in (
            "uid",
            "flags",
            "internaldate",
            "size",
            "modseq",
            "emailid",
            "gm_msgid",
            "gm_labels",
        ):
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, value)
        for key, body in other.sections.items():
            if body is not None or key not in self.sections:
                self.sections[key] = body


# Allowed (C901): one branch per FETCH data item (RFC 3501 7.4.2), flat on the hot path.
def parse_fetch(response: Response) -> FetchItem:  # noqa: C901
    """Parse ``* n FETCH (att value ...)``; items may come in any order.

    :raises ResponseError: when the response is malformed.
    """
    text = response.text
    head = _FETCH_HEAD.match(text)
    if head is None:
        raise ResponseError(f"not a FETCH response: {text[:80]!r}")
    literals = iter(response.literals)
    values, pos = _parse_seq(text, head.end(), literals, nested=True)
    if text[pos:].strip(b" "):
        raise ResponseError(f"text after the FETCH list: {text[pos : pos + 40]!r}")
    if len(values) % 2:
        raise ResponseError(f"odd number of FETCH items in {text[:120]!r}")
    item = FetchItem(int(head.group(1)))
    for i in range(0, len(values), 2):
        key = values[i]
        value = values[i + 1]
        if not isinstance(key, bytes):
            raise ResponseError(f"FETCH item name is not an atom: {key!r}")
        name = key.upper()
        if name == b"UID":
            item.uid = _number(value, "UID")
        elif name.startswith(b"BODY["):
            end = name.find(b"]")
            if end < 0 or not (value is None or isinstance(value, bytes)):
                raise ResponseError(f"malformed {key!r} item")
            item.sections[name[5:end].decode("ascii", "replace")] = value
        elif name == b"FLAGS":
            item.flags = normalise_flags(_atoms(value, "FLAGS"))
        elif name == b"INTERNALDATE":
            if not isinstance(value, bytes):
                raise ResponseError(f"INTERNALDATE is not a string: {value!r}")
            item.internaldate = parse_internaldate(value)
        elif name == b"RFC822.SIZE":
            item.size = _number(value, "RFC822.SIZE")
        elif name == b"MODSEQ":
            item.modseq = _number(_single(value, "MODSEQ"), "MODSEQ")
        elif name == b"EMAILID":
            emailid = _single(value, "EMAILID")
            if not isinstance(emailid, bytes):
                raise ResponseError(f"EMAILID is not an atom: {value!r}")
            item.emailid = emailid.decode("ascii", "replace")
        elif name == b"X-GM-MSGID":
            item.gm_msgid = _number(value, "X-GM-MSGID")
        elif name == b"X-GM-LABELS":
            item.gm_labels = tuple(decode_mutf7(label) for label in _atoms(value, "X-GM-LABELS"))
        # Anything else (THREADID, SAVEDATE, BODYSTRUCTURE, ...) is not ours to read.
    return item


def _number(value: Value, what: str) -> int:
    if not isinstance(value, bytes) or not value.isdigit():
        raise ResponseError(f"{what} is not a number: {value!r}")
    return int(value)


def _single(value: Value, what: str) -> Value:
    if not isinstance(value, list) or len(value) != 1:
        raise ResponseError(f"{what} is not a one-element list: {value!r}")
    return value[0]


def _atoms(value: Value, what: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise ResponseError(f"{what} is not a list of atoms: {value!r}")
    return value  # type: ignore[return-value]  # checked just above


def decode_mutf7(raw: bytes) -> str:
    """Modified UTF-7 (RFC 3501 5.1.3) to str; undecodable names stay as sent
    (:func:`syncer.sources.folder_names.decode_level` on the wire bytes)."""
    return decode_level(raw.decode("utf-8", "surrogateescape"))


def normalise_flags(flags: Iterable[bytes]) -> tuple[str, ...]:
    """Flags as the server spells them, sorted, without ``\\Recent`` (it is per-session)."""
    return tuple(
        sorted({f.decode("utf-8", "surrogateescape") for f in flags if f.lower() != b"\\recent"})
    )


# -- INTERNALDATE ---------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        (
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        ),
        start=1,
    )
}
_DATE = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_ZONES: dict[bytes, timezone] = {}


def parse_internaldate(value: bytes) -> datetime:
    """``"17-Jul-1996 02:44:25 -0700"`` (day may be space-padded) as an aware UTC datetime.

    :raises ResponseError: when the value is not a date-time (RFC 3501 ``date-time``).
    """
    m = _DATE.fullmatch(value)
    month = _MONTHS.get(m.group(2).upper()) if m else None
    if m is None or month is None:
        raise ResponseError(f"malformed INTERNALDATE {value!r}")
    zone_key = m.group(7) + m.group(8) + m.group(9)
    zone = _ZONES.get(zone_key)
    if zone is None:
        minutes = int(m.group(8)) * 60 + int(m.group(9))
        zone = timezone(timedelta(minutes=-minutes if m.group(7) == b"-" else minutes))
        _ZONES[zone_key] = zone
    try:
        local = datetime(
            int(m.group(3)),
            month,
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=zone,
        )
    except ValueError as exc:  # 31-Feb, 25:00:00, ...
        raise ResponseError(f"malformed INTERNALDATE {value!r}: {exc}") from None
    return local.astimezone(UTC)


# -- UID sets -------------------------------------------------------------------------------


def compress_uids(uids: Iterable[int], max_bytes: int = MAX_UID_SET_BYTES) -> list[bytes]:
    """Sorted, de-duplicated UIDs as range sets (``1:500,502:900``), each at most
    ``max_bytes`` long; an empty input gives an empty list."""
    ordered = sorted(set(uids))
    pieces: list[bytes] = []
    i = 0
    while i < len(ordered):
        start = end = ordered[i]
        i += 1
        while i < len(ordered) and ordered[i] == end + 1:
            end = ordered[i]
            i += 1
        pieces.append(b"%d" % start if start == end else b"%d:%d" % (start, end))
    sets: list[bytes] = []
    current: list[bytes] = []
    length = 0
    for piece in pieces:
        if current and length + 1 + len(piece) > max_bytes:
            sets.append(b",".join(current))
            current, length = [], 0
        current.append(piece)
        length += len(piece) + (1 if length else 0)
    if current:
        sets.append(b",".join(current))
    return sets


def _uid_ranges(value: bytes) -> Iterator[tuple[int, int]]:
    """``1:3,9:8`` -> (1, 3), (8, 9): each part of a uid set as an ordered pair.

    :raises ResponseError: malformed sets, ``*`` (not allowed in responses), UID 0.
    """
    for part in value.split(b","):
        first, sep, last = part.partition(b":")
        if not first.isdigit() or (sep and not last.isdigit()):
            raise ResponseError(f"malformed uid set {value[:80]!r}")
        lo = int(first)
        hi = int(last) if sep else lo
        if lo > hi:
            lo, hi = hi, lo
        if lo == 0:
            raise ResponseError(f"UID 0 in uid set {value[:80]!r}")
        yield lo, hi


def parse_uid_set(
    value: bytes,
    *,
    limit: int | None = None,
    into: set[int] | None = None,
    max_size: int = MAX_UID_SET_SIZE,
) -> set[int]:
    """``1:3,7,9:8`` -> {1, 2, 3, 7, 8, 9}. ``*`` is refused (not allowed in responses).

    :param limit: UIDs above it are dropped (e.g. UIDNEXT - 1: none can exist there).
    :param into: add to this set (and return it), counting what it holds against ``max_size``.
    :raises ResponseError: malformed sets, or more than ``max_size`` UIDs, checked
        before a range is expanded.
    """
    out: set[int] = set() if into is None else into
    for lo, hi in _uid_ranges(value):
        if limit is not None:
            hi = min(hi, limit)
        if hi - lo + 1 + len(out) > max_size:
            raise ResponseError(
                f"uid set {value[:80]!r} is implausibly large (more than {max_size:,} UIDs)"
            )
        if hi >= lo:
            out.update(range(lo, hi + 1))
    return out


def parse_uid_ranges(
    value: bytes, into: list[tuple[int, int]], *, max_ranges: int, limit: int | None = None
) -> None:
    """Append the ranges of uid set ``value`` to ``into`` without expanding them
    (``VANISHED 1:4000000000`` is one pair), clipped at ``limit``.

    :raises ResponseError: malformed sets, or ``into`` past ``max_ranges`` pairs.
    """
    for lo, hi in _uid_ranges(value):
        if limit is not None:
            hi = min(hi, limit)
        if hi < lo:
            continue
        if len(into) >= max_ranges:
            raise ResponseError(f"more than {max_ranges:,} UID ranges")
        into.append((lo, hi))


class UIDRanges(AbstractSet[int]):
    """A read-only set of UIDs held as sorted, merged ranges (two arrays).

    Why: QRESYNC's ``VANISHED (EARLIER)`` names UIDs as ranges, and a server may
    name billions; expanded into a Python set that took gigabytes. Here
    membership is a binary search and memory follows the number of ranges.
    ``archived & ranges`` iterates the other operand and gives a frozenset.
    """

    __slots__ = ("_hi", "_len", "_lo")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        lo: array[int] = array("Q")
        hi: array[int] = array("Q")
        for start, end in sorted(ranges):
            if lo and start <= hi[-1] + 1:
                hi[-1] = max(hi[-1], end)
            else:
                lo.append(start)
                hi.append(end)
        self._lo, self._hi = lo, hi
        self._len = sum(b - a + 1 for a, b in zip(lo, hi, strict=True))

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        i = bisect.bisect_right(self._lo, uid) - 1
        return i >= 0 and uid <= self._hi[i]

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._lo, self._hi, strict=True):
            yield from range(start, end + 1)

    def __len__(self) -> int:
        return self._len

    def __hash__(self) -> int:
        return self._hash()

    @classmethod
    def _from_iterable(cls, it: Iterable[int]) -> frozenset[int]:  # type: ignore[override]
        return frozenset(it)

    def __repr__(self) -> str:
        shown = ",".join(
            f"{a}" if a == b else f"{a}:{b}" for a, b in zip(self._lo, self._hi, strict=True)
        )
        return f"UIDRanges({shown[:80]})"


def plan_batches(
    sizes: Iterable[tuple[int, int]], batch_bytes: int, batch_count: int
) -> Iterator[list[tuple[int, int]]]:
    """Split ``(uid, size)`` pairs into runs of at most ``batch_count`` whose sizes sum to
    at most ``batch_bytes``; a message larger than ``batch_bytes`` is a run of its own."""
    batch: list[tuple[int, int]] = []
    total = 0
    for uid, size in sizes:
        if batch and (len(batch) >= batch_count or total + size > batch_bytes):
            yield batch
            batch, total = [], 0
        batch.append((uid, size))
        total += size
    if batch:
        yield batch


# -- throttling -----------------------------------------------------------------------------


class ThrottledReader:
    """Wraps a :class:`LineSource` so reads average at most ``rate`` bytes per second.

    Large literals are read in chunks so a 20 MB message does not burst.
    """

    CHUNK = 64 * 1024

    def __init__(
        self,
        inner: LineSource,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._inner = inner
        self._rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._bytes = 0

    def readline(self) -> bytes:
        line = self._inner.readline()
        self._account(len(line))
        return line

    def read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining > 0:
            chunk = self._inner.read(min(remaining, self.CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            self._account(len(chunk))
        return b"".join(chunks)

    def _account(self, count: int) -> None:
        self._bytes += count
        delay = self._start + self._bytes / self._rate - self._clock()
        if delay > 0:
            self._sleep(delay)
