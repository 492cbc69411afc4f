"""Response headers, CSRF tokens and the sign-in rate limit of the web archive.

Why this module exists: the web archive shows hostile content (mail) to people
who hold the keys to a whole archive. Every response carries a strict
Content-Security-Policy (pages: ``default-src 'self'``, nothing inline; the
sandboxed mail frame and downloads their own, stricter ones set by the route),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and a
``frame-ancestors`` rule. State-changing requests carry the session's CSRF
token (a form field or the ``X-CSRF-Token`` header), checked in constant time;
bearer-token API calls need none (no ambient cookie authority). Sign-in attempts
are limited per client address in memory, on top of the per-name lockout kept
in the archive (:mod:`syncer.web.auth`).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "PAGE_CSP",
    "RateLimit",
    "SecurityHeaders",
    "csrf_token",
    "csrf_valid",
]

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """ASGI middleware: the common headers on every response, and the page CSP and
    ``X-Frame-Options: DENY`` unless the route set its own policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in _COMMON if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                if b"x-frame-options" not in names:
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token (constant-time)."""
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


class RateLimit:
    """At most ``limit`` events per ``window`` seconds per key (a client address), in memory."""

    def __init__(self, limit: int = 30, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True
