"""syncer.mime.mimeheaders makes the header objects the stdlib's parse makes, field for field."""

from __future__ import annotations

import itertools
import random
from email.headerregistry import ContentDispositionHeader, ContentTypeHeader
from email.parser import BytesParser
from email.policy import default
from typing import Any

import pytest

from syncer.mime.mimeheaders import template_header
from syncer.mime.normalize import _POLICY
from tests.golden import corpus

_PARSE = _POLICY.header_factory
_SAFE = "abcXYZ019'()+_,./:=-"


def _fields(header: Any) -> tuple[Any, ...]:
    """Everything a header object shows: its text, class, parameters, parts, defects,
    its parse tree and how it refolds."""
    return (
        str(header),
        type(header).__name__,
        [base.__name__ for base in type(header).__mro__ if base.__name__.endswith("Header")],
        isinstance(header, (ContentTypeHeader, ContentDispositionHeader)),
        header.name,
        dict(header.params),
        getattr(header, "content_type", None),
        getattr(header, "maintype", None),
        getattr(header, "subtype", None),
        getattr(header, "content_disposition", None),
        [(type(d).__name__, str(d)) for d in header.defects],
        str(header._parse_tree),
        [(type(d).__name__, str(d)) for d in header._parse_tree.all_defects],
        header.fold(policy=default),
        header.fold(policy=default.clone(max_line_length=30)),
    )


def _check(name: str, value: str) -> bool:
    """Whether the template made the header (it then must equal the stdlib's)."""
    made = template_header(name, value, _PARSE)
    if made is None:
        return False
    assert _fields(made) == _fields(_PARSE(name, value)), (name, value)
    return True


def _corpus_values() -> list[tuple[str, str]]:
    values: set[tuple[str, str]] = set()
    for _name, raw in corpus():
        try:
            msg = BytesParser(policy=_POLICY).parsebytes(raw)
            parts = list(msg.walk())
        except Exception:
            continue
        for part in parts:
            for key, value in part.raw_items():
                if key.lower() in ("content-type", "content-disposition"):
                    values.add((key, str(value).replace("\r", "").replace("\n", "")))
    return sorted(values)


def test_every_content_header_of_the_golden_corpus() -> None:
    values = _corpus_values()
    made = sum(_check(name, value) for name, value in values)
    assert made > 200  # the path is taken, not only declined


_HEADS = [
    "multipart/mixed; boundary=",
    "multipart/alternative;  boundary=",
    "text/plain; charset=utf-8; name=",
    "text/plain (a comment); name=",
    "application/pdf; name*0=",
    "application/pdf; name*0=abc; name*1=",
    "application/pdf; name*=utf-8''%e2%82%ac; name=",
    "application/pdf; name=x; name=",
    "application/pdf; filename*1=",
    "text/plain; charset=",
    "text/plain; CHARSET=",
    "text/plain; boundary = ",
    "text/plain; bound\u00e4ry=",
    "text/plain; \udcc3\udca4=",
    "bogus; name=",
    "text/; name=",
    "/plain; name=",
    "text/plain name=",
    "text/plain;; name=",
    "attachment; filename=",
    "inline; filename=",
    "attachment (note); filename=",
    "attachment; creation-date=",
    "; filename=",
    "attachment; size=12; filename=",
]
_QUOTED = [
    "a",
    "=_Part_1_2.3",
    "----=_NextPart_000_0001",
    "report (final).pdf",
    "screenshot 1.png",
    "a b c",
    "'quoted'",
    "a:b/c,d+e_f=g-h",
    _SAFE,
    "SyncerQuotedTextPlaceholder",
    "xSyncerQuotedTextPlaceholder",
    "=?utf-8?q?x?=",
    "a  b",
    " a",
    "a ",
    "a\tb",
    'a\\"b',
    "a\\b",
    "\u00e4",
    "\udcc3\udca4",
    "a?b",
    "a;b",
    "",
]


@pytest.mark.parametrize("name", ["Content-Type", "content-disposition", "CONTENT-TYPE"])
def test_values_made_from_a_template_equal_the_stdlibs(name: str) -> None:
    for head, quoted in itertools.product(_HEADS, _QUOTED):
        _check(name, f'{head}"{quoted}"')
        _check(name, f'{head}"{quoted}";')
        _check(name, f'{head}"{quoted}" ')


def test_generated_quoted_text() -> None:
    rng = random.Random(3)
    alphabet = _SAFE + ' "\\?;=\t\u00e9'
    made = 0
    for _ in range(3000):
        quoted = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        head = rng.choice(_HEADS)
        made += _check(rng.choice(["Content-Type", "Content-Disposition"]), f'{head}"{quoted}"')
    assert made > 300


def test_other_headers_are_left_to_the_stdlib() -> None:
    assert template_header("Subject", 'x; name="a"', _PARSE) is None
    assert template_header("Content-Transfer-Encoding", 'x; name="a"', _PARSE) is None
