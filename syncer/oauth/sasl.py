"""SASL XOAUTH2 and OAUTHBEARER (:rfc:`7628`): the messages, and the one retry with a fresh token.

Why this exists: IMAP, POP3 and SMTP carry the same two SASL mechanisms; each
adapter only frames the bytes made here for its own protocol (``AUTHENTICATE``,
``AUTH``). Adapters receive a :class:`TokenProvider` -- a callable giving an
access token, a fresh one when asked with ``refresh=True`` -- and never see
refresh tokens, client secrets or the configuration.

Error challenges: a server that refuses a token sends one more challenge
carrying a JSON error (``{"status": "invalid_token", ...}``) and waits for the
client to answer it before it sends the final failure. OAUTHBEARER's answer is
a single ``%x01`` (:rfc:`7628#section-3.2.3`); XOAUTH2's is an empty response
(Google's and Microsoft's documentation). :class:`Exchange` gives the right
answer and keeps the server's JSON for the error message.

Public API: :class:`TokenProvider`, :data:`MECHANISMS`, :func:`choose_mechanism`,
:func:`initial_response`, :class:`Exchange`, :class:`BearerRefused`,
:func:`sign_in`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import structlog

from syncer.protocols.errors import SignInFailed

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: What syncer speaks, in order of preference: the standard one first.
MECHANISMS = ("OAUTHBEARER", "XOAUTH2")


class TokenProvider(Protocol):
    """Gives an OAuth2 access token; ``refresh=True`` asks for a new one (the last was refused).

    :raises SyncerError: (``LoginRequired``) when no token can be had without the user.
    """

    def __call__(self, *, refresh: bool = False) -> str: ...


class BearerRefused(SignInFailed):
    """The server refused the access token, also the one fetched after a refresh."""

    def __init__(self, mechanism: str, detail: str) -> None:
        super().__init__(f"{mechanism} refused: {detail}")
        self.mechanism = mechanism
        self.detail = detail


class NoMechanism(SignInFailed):
    """The server offers neither OAUTHBEARER nor XOAUTH2."""

    def __init__(self, offered: Iterable[str]) -> None:
        listed = " ".join(sorted(offered)) or "none"
        super().__init__(f"the server offers neither OAUTHBEARER nor XOAUTH2 (it offers {listed})")


def choose_mechanism(offered: Iterable[str], wanted: str = "auto") -> str:
    """The mechanism to use: ``wanted`` when set, else the best one the server offers.

    :param offered: the server's SASL mechanisms (IMAP ``AUTH=...``, POP3 ``SASL``, SMTP ``AUTH``).
    :param wanted: ``"auto"``, ``"XOAUTH2"`` or ``"OAUTHBEARER"`` (any case); an explicit
        choice is used even when not advertised (some servers list it only after STARTTLS).
    :raises NoMechanism: for ``"auto"`` when neither is offered.
    """
    if wanted.lower() != "auto":
        return wanted.upper()
    names = {m.upper() for m in offered}
    for mechanism in MECHANISMS:
        if mechanism in names:
            return mechanism
    raise NoMechanism(names)


def _saslname(user: str) -> str:
    # RFC 5801 section 4: "," and "=" are escaped in the authzid of the GS2 header.
    return user.replace("=", "=3D").replace(",", "=2C")


def initial_response(
    mechanism: str, user: str, token: str, host: str = "", port: int | None = None
) -> bytes:
    """The client's first message for ``mechanism`` (not base64-encoded).

    XOAUTH2: ``user=U^Aauth=Bearer T^A^A``. OAUTHBEARER: ``n,a=U,^Ahost=H^Aport=P^Aauth=Bearer
    T^A^A`` (:rfc:`7628#section-3.1`; host and port are optional and left out when unknown).
    """
    if mechanism == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    if mechanism == "OAUTHBEARER":
        pairs = ""
        if host:
            pairs += f"host={host}\x01"
        if port is not None:
            pairs += f"port={port}\x01"
        return f"n,a={_saslname(user)},\x01{pairs}auth=Bearer {token}\x01\x01".encode()
    raise ValueError(f"unknown OAuth2 SASL mechanism {mechanism!r}")


#: What a client answers to an error challenge, per mechanism.
ERROR_ANSWER = {"XOAUTH2": b"", "OAUTHBEARER": b"\x01"}


def describe_error(challenge: bytes) -> str:
    """The server's JSON error challenge as a short text (``status`` and ``scope``)."""
    try:
        data = json.loads(challenge.decode("utf-8", "replace"))
    except ValueError:
        return challenge.decode("utf-8", "replace")[:200] or "no details"
    if not isinstance(data, dict):
        return str(data)[:200]
    parts = [f"{k}={data[k]}" for k in ("status", "scope", "schemes") if k in data]
    return ", ".join(parts) or "no details"


class Exchange:
    """One SASL conversation: call it with each (decoded) server challenge, send what it returns.

    The first call (an empty challenge) gives the initial response; any later
    call is an error challenge, remembered in :attr:`error` and answered as the
    mechanism requires, after which the server fails the exchange.
    """

    def __init__(self, mechanism: str, initial: bytes) -> None:
        self.mechanism = mechanism
        self._initial: bytes | None = initial
        self.error: str | None = None

    def __call__(self, challenge: bytes | None = None) -> bytes:
        if self._initial is not None and not challenge:
            initial, self._initial = self._initial, None
            return initial
        self._initial = None
        self.error = describe_error(challenge or b"")
        return ERROR_ANSWER[self.mechanism]


def sign_in(tokens: TokenProvider, attempt: Callable[[str], T]) -> T:
    """Run ``attempt(token)``; when the server refuses it, once more with a refreshed token.

    :param attempt: signs in with the given access token; returns on success and raises
        :class:`BearerRefused` when the server refused the token.
    :raises BearerRefused: when the refreshed token is refused too.
    :raises SyncerError: from ``tokens`` (``LoginRequired`` when the refresh itself is refused).
    """
    try:
        return attempt(tokens())
    except BearerRefused as exc:
        log.info("oauth.token_refused", mechanism=exc.mechanism, detail=exc.detail)
    return attempt(tokens(refresh=True))
