"""syncer.mime.fastparse builds the tree the stdlib parser builds, part for part."""

from __future__ import annotations

import base64
import random
import re
from email.message import Message
from email.parser import BytesParser
from typing import Any

import pytest

from syncer.mime import fastparse
from syncer.mime.normalize import _POLICY
from tests.golden import corpus

_B64 = base64.encodebytes(random.Random(5).randbytes(9000))
#: Text lines: paragraphs, indented lines, 8-bit bytes, colons, "From " inside.
_TEXT = (
    b"Hello Bob,\n\nthe figures: see below.\n  indented, as a continuation would be\n"
    + "Gr\u00fc\u00dfe aus K\u00f6ln\n".encode()
    + b"\n\nFrom here on: more text.\n\tand a tab\n"
) * 40


def _stored_payload(part: Message) -> object:
    """The payload as the parser stored it: get_payload() would already re-decode it."""
    return vars(part)["_payload"]


def _shape(msg: Message) -> list[Any]:
    return [
        (
            part.get_unixfrom(),
            list(part.raw_items()),
            payload if isinstance(payload := _stored_payload(part), str) else None,
            part.preamble,
            part.epilogue,
            [type(d).__name__ for d in part.defects],
        )
        for part in msg.walk()
    ]


def _same(raw: bytes) -> None:
    try:
        expected = BytesParser(policy=_POLICY).parsebytes(raw)
    except RecursionError:
        with pytest.raises(RecursionError):
            fastparse.parse(raw, _POLICY)
        return
    assert _shape(fastparse.parse(raw, _POLICY)) == _shape(expected)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


CASES = {
    "leaf": b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + _B64,
    "leaf without final newline": b"Content-Type: image/png\n\n" + _B64.rstrip(b"\n"),
    "in preamble and epilogue": (
        b'Content-Type: multipart/mixed; boundary="b"\n\n' + _B64 + b"--b\n\nx\n--b--\n" + _B64
    ),
    "end of part": (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
        b"Content-Transfer-Encoding: base64\n\n" + _B64 + b"--b\n\n" + _B64 + b"--b--"
    ),
    "in the header block": b"Subject: x\n" + _B64 + b"\nbody\n",
    "unclosed multipart": (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\n' + _B64 + b"--b\n\n" + _B64
    ),
    "delivery status": (
        b'Content-Type: multipart/report; boundary="b"\n\n--b\n'
        b"Content-Type: message/delivery-status\n\nReporting-MTA: x\n" + _B64 + b"\n--b--\n"
    ),
    "forwarded": b"Content-Type: message/rfc822\n\nSubject: in\n\n" + _B64,
    "marker text present": b"Subject: SyncerBase64Run00000000x\n\n" + _B64,
    "bare CR lines": b"Subject: x\n\n" + _B64.replace(b"\n", b"\r"),
    "text": b"Subject: x\n\n" + _TEXT,
    "text with a bare CR": b"Subject: x\n\n" + _TEXT + b"a\rb\n" + _TEXT + b"a\r-b\n" + _TEXT,
    "text after header-like lines": b"Subject: x\n\nNote: x\nFrom me\n\n" + _TEXT,
    "text in the header block": b"Subject: x\n" + _TEXT,
    "text parts": (
        b'Content-Type: multipart/alternative; boundary="b"\n\n' + _TEXT + b"--b\n"
        b"Content-Type: text/plain\n\n"
        + _TEXT
        + b"--b\nContent-Type: text/html\n\n"
        + _TEXT
        + b"\n--b--\n"
        + _TEXT
    ),
    "text with dash lines": b"Subject: x\n\n" + _TEXT + b"-- \nsig\n" + _TEXT,
    "delivery status text": (
        b'Content-Type: multipart/report; boundary="b"\n\n--b\n\n' + _TEXT + b"--b\n"
        b"Content-Type: message/delivery-status\n\nReporting-MTA: x\n\n"
        + _TEXT
        + b"\nAction: failed\n\n"
        + _TEXT
        + b"--b--\n"
    ),
    "forwarded text": b"Content-Type: message/rfc822\n\n" + _TEXT,
    "forwarded text without separator": b"Content-Type: message/rfc822\n" + _TEXT,
    "digest": (
        b'Content-Type: multipart/digest; boundary="b"\n\n--b\n\n' + _TEXT + b"--b\n"
        b"Subject: in\n\n" + _TEXT + b"--b--\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_made_cases_parse_as_the_stdlib_parses_them(name: str) -> None:
    _same(CASES[name])
    _same(_crlf(CASES[name]))


def test_the_golden_corpus_parses_as_the_stdlib_parses_it() -> None:
    for _name, raw in corpus():
        _same(raw)


def test_boundary_matchers_match_what_the_parsers_pattern_matches() -> None:
    import re

    rng = random.Random(3)
    alphabet = ["-", " ", "\t", "\r", "\n", "a", "=", ".", "\\", "(", "\u00e9"]
    for boundary in ("b", "==_x.y(z)", "a b\\c", "--", "=?q?", " \t"):
        separator = "--" + boundary
        source = "(?P<sep>" + re.escape(separator) + fastparse._TAIL_SOURCE
        real = re.compile(source)
        fast = fastparse._ParserRe.compile(source)
        assert isinstance(fast, fastparse._Boundary)
        lines = [separator + "".join(rng.choices(alphabet, k=rng.randrange(6))) for _ in range(400)]
        lines += ["", separator, " " + separator, separator[:-1]]
        for line in lines:
            want, got = real.match(line), fast.match(line)
            assert (want is None) == (got is None), repr(line)
            if want is not None and got is not None:
                assert want.group("end", "linesep") == got.group("end", "linesep"), repr(line)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"-",
        b"-a\n-b\n",
        b"a\n-\n-\n--x--\r\n- y\nz-\n",
        b"a\n-",
        b"a\r\n--b\r\nc-d-e\r\n\n-",
        _B64 + b"\n-x",
        _TEXT,
    ],
)
def test_dash_lines_are_the_lines_after_the_first_that_start_with_a_dash(raw: bytes) -> None:
    expected = [
        (match.start(), match.end()) for match in re.finditer(rb"(?<=\n)-[^\n]*(?:\n|\Z)", raw)
    ]
    assert fastparse._dash_lines(raw) == expected
