"""The SASL messages for OAuth2 (XOAUTH2, OAUTHBEARER) and the one-retry rule, byte for byte."""

from __future__ import annotations

import pytest

from syncer.oauth.sasl import (
    BearerRefused,
    Exchange,
    NoMechanism,
    choose_mechanism,
    describe_error,
    initial_response,
    sign_in,
)


def test_oauthbearer_initial_response_is_the_rfc_7628_example() -> None:
    # RFC 7628 section 4.1, with the host, port and token of the example.
    got = initial_response(
        "OAUTHBEARER",
        "user@example.com",
        "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        "server.example.com",
        143,
    )
    assert got == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )


def test_oauthbearer_escapes_comma_and_equals_in_the_user_name() -> None:
    got = initial_response("OAUTHBEARER", "a,b=c", "T")
    assert got.startswith(b"n,a=a=2Cb=3Dc,\x01auth=Bearer T")


def test_xoauth2_initial_response_is_googles_format() -> None:
    assert initial_response("XOAUTH2", "me@gmail.com", "ya29.T") == (
        b"user=me@gmail.com\x01auth=Bearer ya29.T\x01\x01"
    )


def test_an_unknown_mechanism_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        initial_response("PLAIN", "u", "t")


@pytest.mark.parametrize(
    ("offered", "wanted", "chosen"),
    [
        (["PLAIN", "XOAUTH2", "OAUTHBEARER"], "auto", "OAUTHBEARER"),
        (["plain", "xoauth2"], "auto", "XOAUTH2"),
        (["OAUTHBEARER"], "xoauth2", "XOAUTH2"),  # an explicit choice wins
    ],
)
def test_the_mechanism_is_the_best_one_offered_unless_chosen(
    offered: list[str], wanted: str, chosen: str
) -> None:
    assert choose_mechanism(offered, wanted) == chosen


def test_a_server_without_either_mechanism_is_named_with_what_it_offers() -> None:
    with pytest.raises(
        NoMechanism, match=r"neither OAUTHBEARER nor XOAUTH2 \(it offers LOGIN PLAIN\)"
    ):
        choose_mechanism(["PLAIN", "LOGIN"])


@pytest.mark.parametrize(("mechanism", "answer"), [("OAUTHBEARER", b"\x01"), ("XOAUTH2", b"")])
def test_an_error_challenge_is_answered_as_the_mechanism_requires(
    mechanism: str, answer: bytes
) -> None:
    exchange = Exchange(mechanism, b"first")
    assert exchange(b"") == b"first"
    assert exchange(b'{"status":"invalid_token","scope":"mail"}') == answer
    assert exchange.error == "status=invalid_token, scope=mail"


def test_error_challenges_that_are_not_json_are_shown_as_text() -> None:
    assert describe_error(b"go away") == "go away"
    assert describe_error(b"") == "no details"


def test_sign_in_retries_once_with_a_refreshed_token_then_gives_up() -> None:
    asked: list[bool] = []

    def tokens(*, refresh: bool = False) -> str:
        asked.append(refresh)
        return "fresh" if refresh else "stale"

    def accepts_fresh(token: str) -> str:
        if token != "fresh":
            raise BearerRefused("XOAUTH2", "status=401")
        return "in"

    assert sign_in(tokens, accepts_fresh) == "in"
    assert asked == [False, True]

    def refuses_all(token: str) -> str:
        raise BearerRefused("XOAUTH2", "status=401")

    asked.clear()
    with pytest.raises(BearerRefused):
        sign_in(tokens, refuses_all)
    assert asked == [False, True]  # exactly one refresh, never a loop
