"""``decoded_payload``: the decoded body of a part, the stdlib's bytes and defects, fewer copies.

Why: the walk decodes clean base64 bodies itself (to keep a pool worker's memory
down on large attachments); whatever it decodes must be exactly what
``get_payload(decode=True)`` gives, and a body it does not take must go to the
stdlib with the defects the stdlib records.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.message import Message
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncer.mime.parts import decoded_payload


def _part(body: str, cte: str = "base64") -> Message:
    part = Message(policy=default)
    part["Content-Type"] = "application/octet-stream"
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(body)
    return part


def _outcome(part: Message, decode: Callable[[Message], object]) -> tuple[object, list[str]]:
    """What decoding gives (or raises), and the defects it records on the part."""
    try:
        result = decode(part)
    except Exception as exc:  # the stdlib refuses some str payloads no parse produces
        result = type(exc)
    return result, [type(defect).__name__ for defect in part.defects]


def _both(body: str, cte: str = "base64") -> tuple[tuple[object, list[str]], ...]:
    return (
        _outcome(_part(body, cte), decoded_payload),
        _outcome(_part(body, cte), lambda part: part.get_payload(decode=True)),
    )


_noisy = st.text(alphabet="ABCxyz019+/=\r\n -_.é\udcff", max_size=40)


@settings(max_examples=3000, deadline=None)
@given(_noisy)
def test_any_body_decodes_as_the_stdlib_decodes_it(body: str) -> None:
    ours, theirs = _both(body)
    assert ours == theirs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["\n", "\r\n"]), st.integers(1, 80))
def test_clean_base64_is_decoded_without_the_stdlib(data: bytes, linesep: str, width: int) -> None:
    text = base64.b64encode(data).decode()
    body = linesep.join(text[i : i + width] for i in range(0, len(text), width)) + linesep
    part = _part(body)

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("decoded by the stdlib")

    part.get_payload = refuse  # type: ignore[method-assign, assignment]
    assert decoded_payload(part) == data
    assert not part.defects


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "QUJD",
        "QUI=",
        "QQ==",
        "QQ=\r\n=",
        "QQ",
        "QUJDRA",
        "=QUJD",
        "QU=J",
        "QUJD\n===",
        "QUJ D",
        "QUJD\r\nRA==\r\n",
        "QUJD\rRA==",
        "QUJD-",
        "QUJDR",
    ],
)
def test_edge_cases_decode_as_the_stdlib_decodes_them(body: str) -> None:
    ours, theirs = _both(body)
    assert ours == theirs


@pytest.mark.parametrize("cte", ["quoted-printable", "7bit", "", "BASE64"])
def test_other_encodings_go_to_the_stdlib(cte: str) -> None:
    ours, theirs = _both("QUJD=3D\r\n", cte)
    assert ours == theirs
