"""The stdlib MIME parse without feeding base64 bodies through it line by line.

Why this module exists: :class:`email.parser.BytesParser` reads a message one
line at a time in Python and tests every line against every open multipart
boundary; for a message with a 1 MB attachment that is 14,000 base64 lines,
and it was most of the normalizer's time. This module hands the parser the
message with each long run of base64 lines replaced by one marker line, and
puts the original lines back into the parsed tree afterwards. The tree is the
one the parser builds from the whole message, field for field:

* A run is whole lines of base64 characters only (``A-Z a-z 0-9 + / =``),
  each ended by CR LF or LF (lines the parser splits the same way; runs of
  lines ended by a bare CR are left alone). Such a line is
  never a boundary (those start with ``--``), a header (no colon), a header
  continuation (no leading blank) or the empty line ending a header block; the
  marker line (letters and digits) is none of those either, so the parser makes
  the same decisions at the marker as at the run it stands for.
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
MIN_RUN = 2048
#: The first line of a run (after a line feed, so at the start of a line as the parser splits).
_START = re.compile(rb"\n[A-Za-z0-9+/=]{40}")
#: A run: whole lines ended by CR LF or LF (a bare CR ends a line too, but such runs stay).
_RUN = re.compile(rb"(?:[A-Za-z0-9+/=]+\r?\n){8,}")
_MARK = b"SyncerBase64Run"
_MARK_TEXT = _MARK.decode()


def parse(raw: bytes, policy: Policy) -> Message:
    """``BytesParser(policy=policy).parsebytes(raw)``, with long base64 runs set aside."""
    runs: list[tuple[int, int]] = []
    if _MARK not in raw:
        runs = _runs(raw)
    if not runs:
        return BytesParser(policy=policy).parsebytes(raw)
    pieces: list[bytes] = []
    saved: dict[str, str] = {}
    position = 0
    for number, (start, end) in enumerate(runs):
        run = raw[start:end]
        ending = b"\r\n" if run.endswith(b"\r\n") else run[-1:]
        marker = f"{_MARK_TEXT}{number:08d}x"
        saved[marker] = run[: -len(ending)].decode("ascii")
        pieces += (raw[position:start], marker.encode("ascii"), ending)
        position = end
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
    """The spans of the runs worth setting aside (searching from line feeds: fast in C)."""
    runs: list[tuple[int, int]] = []
    position = 0
    while start := _START.search(raw, position):
        run = _RUN.match(raw, start.start() + 1)
        if run is None:
            position = start.end()
            continue
        if run.end() - run.start() >= MIN_RUN:
            runs.append(run.span())
        position = run.end() - 1
    return runs


def _restore(msg: Message, saved: dict[str, str]) -> bool:
    """Put the runs back in place of their markers; False when one is not found once."""
    found = 0
    for part in msg.walk():
        for attribute in ("_payload", "preamble", "epilogue"):
            value = getattr(part, attribute, None)
            if isinstance(value, str) and _MARK_TEXT in value:
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
