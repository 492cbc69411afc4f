"""The stdlib MIME parse without feeding body lines through it one by one.

Why this module exists: :class:`email.parser.BytesParser` reads a message one
line at a time in Python and tests every line against every open multipart
boundary; for a message with a 1 MB attachment that is 14,000 base64 lines,
and a text body costs a few microseconds a line too: that was most of the
normalizer's time. This module hands the parser the message with each long
run of body lines replaced by one marker line, and puts the original lines
back into the parsed tree afterwards. The tree is the one the parser builds
from the whole message, field for field:

* A run is whole lines, each ended by CR LF or LF, none holding a CR that the
  parser would take for a line end, none starting with ``-`` (so none is a
  multipart boundary). Its first line is neither empty nor one the parser's
  ``headerRE`` takes for a header line or continuation (``Name:``, ``From ``,
  a leading blank). Whatever the parser is doing when it meets that first
  line (reading a header block or a body), it makes the same decision for
  the marker line (letters and digits): in a header block both end it (with
  the same defect) and start the body; in a body both are body lines. From
  there on it is in a body, where only boundaries end a part; the lines after
  the first (empty ones included) are never read as headers. The one
  exception is message/delivery-status, whose body is header blocks separated
  by empty lines: a tree holding such a part is parsed again the plain way
  (the marker parse reaches that part's headers exactly as the plain one does,
  so it sees the part whenever the plain parse would).
* The marker sits where the run was; it ends up inside the same payload (a
  leaf's body, a preamble or an epilogue), where it is replaced by the run. A
  run at the end of a part loses its last line break to the boundary, as the
  marker does: only the marker's text, not its line break, is replaced.
* If any marker is not found exactly once afterwards, the message is parsed
  again the plain way. Transfer decoding (and its defects) happens later, on
  the restored payload, exactly as before.

Boundaries: the parser compiles a regular expression for every multipart
boundary it meets, and boundaries are unique per message, so that compile
(about half a millisecond in Python's ``re`` compiler) was paid for every
multipart. :func:`parse` gives the stdlib parser module a ``re`` whose
``compile`` answers the parser's boundary pattern with :class:`_Boundary`,
which matches the same lines with ``str.startswith`` and one precompiled
pattern for the rest of the line; every other pattern goes to :mod:`re`.

Public API: :func:`parse`.
"""

from __future__ import annotations

import email.feedparser
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy

__all__ = ["parse"]

#: Runs shorter than this many bytes are left to the parser (a marker costs more).
MIN_RUN = 512
#: Lines the parser may read as a header line (its ``headerRE``) or as the empty line
#: ending a header block, at the start of a stretch: a run starts after them.
_HEADER_LINES = re.compile(rb"(?:(?:[\t ]|From |[\x21-\x39\x3b-\x7e]*:)[^\n]*\n|\r?\n)*")
_BARE_CR = re.compile(rb"\r(?!\n)")
#: The one type whose body the parser reads as header blocks separated by empty lines.
_DELIVERY_STATUS = "message/delivery-status"
_MARK = b"SyncerBase64Run"
_MARK_TEXT = _MARK.decode()


def parse(raw: bytes, policy: Policy) -> Message:
    """``BytesParser(policy=policy).parsebytes(raw)``, with long runs of body lines set aside."""
    runs: list[tuple[int, int]] = []
    if _MARK not in raw:
        runs = _runs(raw)
    if not runs:
        return BytesParser(policy=policy).parsebytes(raw)
    pieces: list[bytes] = []
    saved: dict[str, str] = {}
    position = 0
    view = memoryview(raw)  # a run is decoded from the message's bytes, not from a copy
    for number, (start, end) in enumerate(runs):
        ending = b"\r\n" if raw.startswith(b"\r\n", end - 2, end) else raw[end - 1 : end]
        marker = f"{_MARK_TEXT}{number:08d}x"
        saved[marker] = str(view[start : end - len(ending)], "ascii", "surrogateescape")
        pieces += (raw[position:start], marker.encode("ascii"), ending)
        position = end
    view.release()
    pieces.append(raw[position:])
    msg = BytesParser(policy=policy).parsebytes(b"".join(pieces))
    if _restore(msg, saved):
        return msg
    return BytesParser(policy=policy).parsebytes(raw)


# The parser's boundary pattern is '(?P<sep>' + re.escape('--' + boundary) + _TAIL_SOURCE.
_HEAD_SOURCE = "(?P<sep>"
_TAIL_SOURCE = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_TAIL = re.compile(_TAIL_SOURCE[1:])
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _Boundary:
    """A boundary line matcher equal to the parser's compiled pattern for one separator.

    The parser reads ``group('end')`` and ``group('linesep')`` of a match, which
    the tail pattern's match provides.
    """

    __slots__ = ("separator",)

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _TAIL.match(line, len(self.separator))


class _ParserRe:
    """The ``re`` the stdlib parser module sees: :mod:`re`, with boundary patterns fast."""

    def __getattr__(self, name: str) -> object:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> object:
        if (
            flags == 0
            and isinstance(pattern, str)
            and pattern.startswith(_HEAD_SOURCE)
            and pattern.endswith(_TAIL_SOURCE)
        ):
            literal = pattern[len(_HEAD_SOURCE) : -len(_TAIL_SOURCE)]
            separator = _UNESCAPE.sub(r"\1", literal)
            if re.escape(separator) == literal:
                return _Boundary(separator)
        return re.compile(pattern, flags)


setattr(email.feedparser, "re", _ParserRe())  # noqa: B010 - a module attribute mypy does not know


def _runs(raw: bytes) -> list[tuple[int, int]]:
    """The spans of the runs worth setting aside (found with ``bytes.find``: fast in C)."""
    excluded = _dash_lines(raw)
    if _BARE_CR.search(raw):
        excluded += _lines_with_bare_cr(raw)
    excluded.append((raw.rfind(b"\n") + 1, len(raw)))  # an unfinished last line
    runs: list[tuple[int, int]] = []
    position = raw.find(b"\n") + 1  # never the first line
    for start, end in sorted(excluded):
        if start - position > MIN_RUN:
            first = _HEADER_LINES.match(raw, position, start)
            if first is not None and start - first.end() > MIN_RUN:
                runs.append((first.end(), start))
        position = max(position, end)
    return runs


def _dash_lines(raw: bytes) -> list[tuple[int, int]]:
    """The spans of the lines after the first that begin with ``-``.

    Found dash by dash: one byte is looked for with ``memchr`` (base64 has no
    dash, text a few), where ``raw.find(b"\\n-")`` compares its way through
    every byte, five times slower on the benchmark corpus.
    """
    spans: list[tuple[int, int]] = []
    at = raw.find(b"-", 1)
    while at >= 0:
        if raw[at - 1] == 10:  # a line feed: the dash starts a line
            end = raw.find(b"\n", at)
            spans.append((at, len(raw) if end < 0 else end + 1))
        at = raw.find(b"-", at + 1)
    return spans


def _lines_with_bare_cr(raw: bytes) -> list[tuple[int, int]]:
    """The spans of the lines (ended by a line feed) holding a CR the parser ends a line at."""
    spans: list[tuple[int, int]] = []
    for match in _BARE_CR.finditer(raw):
        end = raw.find(b"\n", match.start())
        spans.append((raw.rfind(b"\n", 0, match.start()) + 1, len(raw) if end < 0 else end + 1))
    return spans


def _restore(msg: Message, saved: dict[str, str]) -> bool:
    """Put the runs back in place of their markers; False when one is not found once."""
    found = 0
    for part in msg.walk():
        if part.get_content_type() == _DELIVERY_STATUS:
            return False
        for attribute in ("_payload", "preamble", "epilogue"):
            value = getattr(part, attribute, None)
            if isinstance(value, str) and value in saved:  # a body that is one run: no copy
                setattr(part, attribute, saved[value])
                found += 1
            elif isinstance(value, str) and _MARK_TEXT in value:
                restored, count = _put_back(value, saved)
                setattr(part, attribute, restored)
                found += count
    return found == len(saved)


def _put_back(value: str, saved: dict[str, str]) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        run = saved.get(match.group(0))
        if run is None:
            return match.group(0)
        count += 1
        return run

    return _MARKERS.sub(replace, value), count


_MARKERS = re.compile(f"{_MARK_TEXT}[0-9]{{8}}x")
