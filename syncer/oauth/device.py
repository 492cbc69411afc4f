"""The device authorization grant (:rfc:`8628`): sign in on any other device with a short code.

Why this flow first: syncer often runs on a server without a browser; the
user opens the URL on their phone, types the code, and syncer polls the token
endpoint meanwhile. Polling follows section 3.5: wait ``interval`` seconds
(5 when the server names none) between requests, add 5 seconds on
``slow_down``, keep going on ``authorization_pending``, stop on
``access_denied`` and ``expired_token`` (or when ``expires_in`` has passed).

Google calls the URL ``verification_url`` (not the RFC's ``verification_uri``);
both are read.

Public API: :class:`DeviceCode`, :func:`start_device_flow`, :func:`poll_device_flow`,
:func:`device_flow`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from syncer.logs import register_secret
from syncer.oauth.endpoint import Client, GrantRefused, Tokens, post_form, request_tokens
from syncer.oauth.errors import OAuthError

log = structlog.get_logger(__name__)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: :rfc:`8628#section-3.2`: the polling interval when the server names none.
DEFAULT_INTERVAL = 5.0
#: :rfc:`8628#section-3.5`: how much longer to wait after ``slow_down``.
SLOW_DOWN_STEP = 5.0


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device authorization answer: what to show the user, and what to poll with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


def start_device_flow(client: Client) -> DeviceCode:
    """Ask the device authorization endpoint for a user code.

    :raises OAuthError: when the client has no device endpoint or the answer is incomplete.
    """
    if not client.device_authorization_url:
        raise OAuthError("This provider has no device authorization endpoint.")
    fields = {**client.credentials(), "scope": " ".join(client.scopes)}
    data = post_form(client.device_authorization_url, fields, timeout=client.timeout)
    uri = data.get("verification_uri") or data.get("verification_url")
    device_code, user_code = data.get("device_code"), data.get("user_code")
    if not (isinstance(device_code, str) and isinstance(user_code, str) and isinstance(uri, str)):
        raise OAuthError(
            "The device authorization endpoint answered without device_code, user_code "
            "or verification_uri."
        )
    register_secret(device_code, rotating=True)
    complete = data.get("verification_uri_complete")
    return DeviceCode(
        device_code=device_code,
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=complete if isinstance(complete, str) else None,
        expires_in=_seconds(data.get("expires_in"), 1800.0),
        interval=_seconds(data.get("interval"), DEFAULT_INTERVAL),
    )


def _seconds(value: object, default: float) -> float:
    """A number of seconds from the answer (0 included), else ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


def poll_device_flow(
    client: Client,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Tokens:
    """Poll the token endpoint until the user approves, refuses, or the code expires.

    :raises OAuthError: on ``access_denied``, ``expired_token`` or expiry.
    """
    interval = code.interval
    deadline = clock() + code.expires_in
    while True:
        if clock() >= deadline:
            raise OAuthError(
                "The sign-in code expired before it was approved.",
                hint="Run `syncer auth login` again and enter the new code sooner.",
            )
        sleep(interval)
        try:
            return request_tokens(
                client, {"grant_type": DEVICE_GRANT, "device_code": code.device_code}
            )
        except GrantRefused as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_STEP
                log.debug("oauth.device_slow_down", interval_s=interval)
                continue
            if exc.error == "access_denied":
                raise OAuthError("The sign-in was refused in the browser.") from None
            if exc.error == "expired_token":
                raise OAuthError(
                    "The sign-in code expired before it was approved.",
                    hint="Run `syncer auth login` again and enter the new code sooner.",
                ) from None
            raise


def device_flow(
    client: Client,
    say: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Tokens:
    """The whole grant: get a code, tell the user where to enter it, poll until done."""
    code = start_device_flow(client)
    say(f"To sign in, open {code.verification_uri} and enter the code {code.user_code}")
    if code.verification_uri_complete:
        say(f"(or open {code.verification_uri_complete})")
    say("Waiting for the sign-in to be approved...")
    return poll_device_flow(client, code, sleep=sleep)
