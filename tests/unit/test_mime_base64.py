"""syncer.mime.parts.decoded_payload gives what ``get_payload(decode=True)`` gives, defects too."""

from __future__ import annotations

import base64
import binascii
import random
from email.message import Message
from email.parser import BytesParser

import pybase64
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.mime.normalize import _POLICY
from syncer.mime.parts import canonical_base64, decoded_payload
from tests.golden import corpus

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DATA = random.Random(7).randbytes(3000)

#: Bodies of a base64 part: canonical ones and every way the stdlib's decode can object.
_BODIES = [
    base64.encodebytes(_DATA).replace(b"\n", b"\r\n"),
    base64.encodebytes(_DATA[:-1]),  # one "=" of padding
    base64.encodebytes(_DATA[:-2]),  # two
    b"",
    b"\r\n",
    base64.b64encode(_DATA),  # one long line
    base64.b64encode(_DATA)[:-1] + b"\r\n",  # padding missing
    b"QUJD\rREVG\r\n",  # bare CR: a line break for splitlines
    b"QU=D\r\nREVG\r\n",  # "=" inside
    b"QUJD===\r\n",  # three "="
    b"QUJD RE VG\r\n",  # blanks
    b"QUJD-_EV\r\n",  # URL-safe letters
    b"QUJD\r\n\r\nREVG\r\n",  # an empty line inside
    "QUJD\u00e9REVG\r\n".encode(),  # 8-bit bytes (kept as surrogates)
    b"QUI=\r\n",  # padding with bits set in the last letter
    b"====\r\n",
]


def _part(body: bytes, encoding: str = "base64") -> Message:
    raw = (
        b"Content-Type: application/octet-stream\r\n"
        + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        + body
    )
    return BytesParser(policy=_POLICY).parsebytes(raw)


def _decoded_both(body: bytes, encoding: str = "base64") -> tuple[object, object]:
    ours, theirs = _part(body, encoding), _part(body, encoding)
    return (
        (decoded_payload(ours), [type(d).__name__ for d in ours.defects]),
        (theirs.get_payload(decode=True), [type(d).__name__ for d in theirs.defects]),
    )


@pytest.mark.parametrize("body", _BODIES)
@pytest.mark.parametrize("encoding", ["base64", "BASE64", "quoted-printable", "8bit"])
def test_decoded_payload_equals_the_stdlib_with_its_defects(body: bytes, encoding: str) -> None:
    ours, theirs = _decoded_both(body, encoding)
    assert ours == theirs


def test_decoded_payload_of_a_multipart_is_none() -> None:
    msg = BytesParser(policy=_POLICY).parsebytes(
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n'
    )
    assert decoded_payload(msg) is None


@given(st.binary(max_size=40), st.integers(0, 2), st.lists(st.integers(0, 255), max_size=3))
def test_pybase64_refuses_what_the_strict_stdlib_decode_refuses(
    data: bytes, padding: int, noise: list[int]
) -> None:
    """On every input the fast path takes (canonical padding), both decoders agree."""
    letters = bytearray(base64.b64encode(data))
    for index, byte in enumerate(noise):
        if letters:
            letters[(index * 7919) % len(letters)] = byte
    if padding and len(letters) >= 4 and not letters.endswith(b"="):
        letters[-padding:] = b"=" * padding
    candidate = bytes(letters)
    if not canonical_base64(candidate):
        return
    try:
        expected: object = binascii.a2b_base64(candidate, strict_mode=True)
    except binascii.Error:
        expected = "refused"
    try:
        got: object = pybase64.b64decode(candidate, validate=True)
    except binascii.Error:
        got = "refused"
    assert got == expected


def test_canonical_base64() -> None:
    assert canonical_base64(b"")
    assert canonical_base64(b"QUJD")
    assert canonical_base64(b"QUI=")
    assert canonical_base64(b"QQ==")
    assert not canonical_base64(b"QUJ")
    assert not canonical_base64(b"Q===")
    assert not canonical_base64(b"QU=D")
    assert not canonical_base64(b"Q=I=")


def test_every_part_of_the_golden_corpus_decodes_the_same() -> None:
    """Hostile messages included: the parsed tree's parts, decoded both ways."""
    checked = 0
    for _name, raw in corpus():
        try:
            ours, theirs = (BytesParser(policy=_POLICY).parsebytes(raw) for _ in range(2))
        except Exception:  # a tree the parser cannot build is not walked either
            continue
        for mine, stdlib in zip(ours.walk(), theirs.walk(), strict=True):
            assert decoded_payload(mine) == stdlib.get_payload(decode=True)
            assert [type(d) for d in mine.defects] == [type(d) for d in stdlib.defects]
            checked += 1
    assert checked > 1000
