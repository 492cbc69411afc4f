"""The authorization server's token endpoint (:rfc:`6749`): one form POST, one JSON answer.

Why the standard library: syncer needs two requests -- a form POST to the
token (and device authorization) endpoint and a JSON answer back -- and the
error handling around them is specific to OAuth2 (``invalid_grant`` means
"sign in again", a 5xx means "later"). ``urllib.request`` does that in a few
lines, verifies certificates with the system store, and adds no dependency to
an install that never uses OAuth2. Client authentication is
``client_secret_post`` (the form carries ``client_id`` and, for confidential
clients, ``client_secret``), which Google and Microsoft accept.

Every token that passes through here is registered with the log redactor
before anything else can see it.

Public API: :class:`Client`, :class:`Tokens`, :class:`GrantRefused`,
:func:`post_form`, :func:`request_tokens`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from syncer.logs import register_secret
from syncer.oauth.errors import OAuthError, OAuthUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Client:
    """Who syncer is to one authorization server, and where that server's endpoints are.

    :param client_secret: called when a request needs the secret (None for public
        clients), so commands that only read the token store never resolve it.
    :param authorize_params: extra query parameters for the browser sign-in (Google
        needs ``access_type=offline`` and ``prompt=consent`` to hand out a refresh token).
    """

    client_id: str
    token_url: str
    scopes: tuple[str, ...]
    client_secret: Callable[[], str | None] = lambda: None
    authorize_url: str | None = None
    device_authorization_url: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    redirect_host: str = "127.0.0.1"
    redirect_port: int = 0
    timeout: float = 30.0

    def credentials(self) -> dict[str, str]:
        """The client authentication fields of a form (``client_secret_post``)."""
        fields = {"client_id": self.client_id}
        secret = self.client_secret()
        if secret:
            fields["client_secret"] = secret
        return fields


@dataclass(frozen=True, slots=True)
class Tokens:
    """What a token endpoint handed out. ``expires_at`` is seconds since the epoch.

    The tokens are left out of ``repr()``, so a stray debug print cannot leak them.
    """

    access_token: str = field(repr=False)
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    obtained_at: float = 0.0

    def fresh(self, now: float, margin: float) -> bool:
        """True when the access token is good for at least ``margin`` more seconds."""
        return self.expires_at is None or self.expires_at - now > margin

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "obtained_at": self.obtained_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tokens:
        tokens = cls(
            access_token=str(data.get("access_token") or ""),
            expires_at=_float_or_none(data.get("expires_at")),
            refresh_token=data.get("refresh_token") or None,
            scope=data.get("scope") or None,
            obtained_at=float(data.get("obtained_at") or 0.0),
        )
        tokens.register()
        return tokens

    def register(self) -> None:
        """Tell the log redactor about both tokens."""
        for secret in (self.access_token, self.refresh_token):
            if secret:
                register_secret(secret, rotating=True)


def _float_or_none(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class GrantRefused(OAuthError):
    """The endpoint answered with an OAuth2 error (``invalid_grant``, ``authorization_pending``...).

    :ivar error: the ``error`` code from the answer.
    """

    def __init__(self, error: str, description: str | None, endpoint: str) -> None:
        detail = f": {description}" if description else ""
        super().__init__(f"{endpoint} refused the request ({error}{detail}).")
        self.error = error
        self.description = description
        self.answer: Mapping[str, Any] = {}


def post_form(url: str, fields: Mapping[str, str], *, timeout: float) -> dict[str, Any]:
    """POST ``fields`` form-encoded to ``url``; return the JSON object it answers.

    :raises GrantRefused: for a 4xx answer carrying an OAuth2 ``error``.
    :raises OAuthUnavailable: when the server cannot be reached, times out or answers 5xx.
    :raises OAuthError: for any other answer that is not a JSON object.
    """
    body = urllib.parse.urlencode(fields).encode("ascii")
    request = urllib.request.Request(
        url,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    endpoint = _endpoint_name(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuthUnavailable(
            f"Cannot reach the OAuth2 endpoint {endpoint} ({reason}).",
            hint="Check the network; syncer will try again on the next run.",
        ) from None
    data = _json_object(raw)
    if status >= 500:
        raise OAuthUnavailable(
            f"The OAuth2 endpoint {endpoint} failed with HTTP {status}.",
            hint="syncer will try again on the next run.",
        )
    if status >= 400:
        if data is not None and isinstance(data.get("error"), str):
            refused = GrantRefused(data["error"], data.get("error_description"), endpoint)
            refused.answer = data
            raise refused
        raise OAuthError(f"The OAuth2 endpoint {endpoint} answered HTTP {status}.")
    if data is None:
        raise OAuthError(f"The OAuth2 endpoint {endpoint} did not answer with a JSON object.")
    return data


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _endpoint_name(url: str) -> str:
    """The URL without query or credentials: safe for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def request_tokens(
    client: Client,
    grant: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
    keep_refresh: str | None = None,
) -> Tokens:
    """Ask the token endpoint for tokens with ``grant`` (the grant type and its fields).

    :param keep_refresh: the refresh token used, kept when the answer brings no new
        one (:rfc:`6749#section-6`: the server MAY issue a new refresh token).
    :raises GrantRefused: ``invalid_grant`` and friends.
    :raises OAuthUnavailable: network trouble or 5xx.
    :raises OAuthError: an answer without an access token.
    """
    now = clock()
    data = post_form(client.token_url, {**grant, **client.credentials()}, timeout=client.timeout)
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError(
            f"The OAuth2 endpoint {_endpoint_name(client.token_url)} answered without an "
            "access token."
        )
    expires_in = _float_or_none(data.get("expires_in"))
    refresh = data.get("refresh_token")
    tokens = Tokens(
        access_token=access,
        expires_at=now + expires_in if expires_in is not None else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else keep_refresh,
        scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
        obtained_at=now,
    )
    tokens.register()
    log.debug(
        "oauth.tokens_issued",
        grant=grant.get("grant_type"),
        endpoint=_endpoint_name(client.token_url),
        expires_in=expires_in,
        with_refresh=tokens.refresh_token is not None,
    )
    return tokens
