"""A local OAuth2 authorization server on loopback, for tests: token, device, authorize
and introspection endpoints, with switches to expire and revoke tokens.

Why it exists: Dovecot's ``oauth2`` passdb validates each bearer token by asking
an introspection endpoint (:rfc:`7662`); the same little server hands the
tokens out, so a test can sign in through the real flows (device code
:rfc:`8628`, authorization code with PKCE :rfc:`7636`) and then watch Dovecot
accept or refuse what syncer sends. Nothing here is a mock of syncer's side:
it is a real HTTP server (``http.server`` in a thread) speaking the protocol.

The "browser" of the authorization code flow is whoever sends
``GET /authorize``: the server answers ``302`` to the client's loopback
``redirect_uri`` with a code for :attr:`OAuthServer.browser_user`. The device
flow's user step is :meth:`OAuthServer.approve` (or ``GET /activate``).

    with OAuthServer(client_id="syncer-test") as auth:
        tokens = auth.issue("alice")            # as if alice had signed in
        auth.expire(tokens.access_token)        # the next login must refresh
        auth.revoke(tokens.refresh_token)       # ... and now fails for good

Public API: :class:`OAuthServer`, :class:`Issued`.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: What a server sends before refusing a bearer token (:rfc:`7628#section-3.2.2`).
ERROR_CHALLENGE = json.dumps({"status": "invalid_token", "scope": "mail"}).encode()


def parse_bearer(mechanism: str, message: bytes) -> tuple[str, str]:
    """(user, token) from an XOAUTH2 or OAUTHBEARER client message; empty strings when
    it is malformed."""
    text = message.decode("utf-8", "replace")
    user = ""
    if mechanism == "OAUTHBEARER":
        gs2, _, text = text.partition("\x01")
        for part in gs2.split(","):
            if part.startswith("a="):
                user = part[2:].replace("=2C", ",").replace("=3D", "=")
    pairs = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
    user = pairs.get("user", user)
    scheme, _, token = pairs.get("auth", "").partition(" ")
    return user, token if scheme.lower() == "bearer" else ""


@dataclass
class Issued:
    """One sign-in: its current access token and its refresh token."""

    user: str
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass
class _Device:
    user_code: str
    scope: str
    expires_at: float
    user: str | None = None
    denied: bool = False
    polls: int = 0


@dataclass
class _Code:
    user: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class _State:
    client_id: str
    client_secret: str | None
    lifetime: int
    interval: int
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user, expiry)
    refresh: dict[str, str] = field(default_factory=dict)  # token -> user
    devices: dict[str, _Device] = field(default_factory=dict)  # device_code -> state
    codes: dict[str, _Code] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    handed_out: list[str] = field(default_factory=list)  # every token and code ever issued
    slow_down_polls: int = 0
    browser_user: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class OAuthServer:
    """The authorization server; see the module docstring.

    :param client_id: the only client it knows.
    :param client_secret: required from that client when given (``client_secret_post``).
    :param lifetime: access token lifetime in seconds (``expires_in``).
    :param interval: the device flow's polling interval it announces (0: poll at once).
    """

    def __init__(
        self,
        client_id: str = "syncer-test",
        client_secret: str | None = None,
        *,
        lifetime: int = 3600,
        interval: int = 0,
    ) -> None:
        self.state = _State(client_id, client_secret, lifetime, interval)
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def device_url(self) -> str:
        return self.url + "/device"

    @property
    def authorize_url(self) -> str:
        return self.url + "/authorize"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    def start(self) -> OAuthServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="oauth-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a test does ------------------------------------------------------------------

    def issue(self, user: str, *, lifetime: int | None = None, length: int = 24) -> Issued:
        """Tokens for ``user`` as if they had just signed in; ``length`` random bytes each
        (real access tokens run to a kilobyte or more: Microsoft's are JWTs)."""
        with self.state.lock:
            return _issue(self.state, user, lifetime, length)

    def expire(self, access_token: str) -> None:
        """Make ``access_token`` invalid (introspection says inactive), as after its lifetime."""
        with self.state.lock:
            user, _ = self.state.access[access_token]
            self.state.access[access_token] = (user, 0.0)

    def expire_all(self, user: str) -> None:
        with self.state.lock:
            for token, (owner, _) in list(self.state.access.items()):
                if owner == user:
                    self.state.access[token] = (owner, 0.0)

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and every access token of its user."""
        with self.state.lock:
            user = self.state.refresh.pop(refresh_token)
        self.expire_all(user)

    def approve(self, user_code: str, user: str) -> None:
        """The device flow's user step: ``user`` enters ``user_code`` and approves."""
        with self.state.lock:
            for device in self.state.devices.values():
                if device.user_code == user_code:
                    device.user = user
                    return
        raise KeyError(user_code)

    def deny(self, user_code: str) -> None:
        with self.state.lock:
            for device in self.state.devices.values():
                if device.user_code == user_code:
                    device.denied = True
                    return
        raise KeyError(user_code)

    def valid(self, user: str, token: str) -> bool:
        """What introspection says: ``token`` is active and belongs to ``user``."""
        with self.state.lock:
            entry = self.state.access.get(token)
        return entry is not None and entry[0] == user and entry[1] > time.time()

    def pending_user_codes(self) -> list[str]:
        with self.state.lock:
            return [d.user_code for d in self.state.devices.values() if d.user is None]

    @property
    def browser_user(self) -> str | None:
        return self.state.browser_user

    @browser_user.setter
    def browser_user(self, user: str | None) -> None:
        """Who signs in when a browser opens ``/authorize``."""
        self.state.browser_user = user

    def slow_down(self, polls: int) -> None:
        """Answer the next ``polls`` device-flow polls with ``slow_down``."""
        self.state.slow_down_polls = polls

    def grants(self) -> list[str]:
        """The grant types of every token request so far, in order."""
        return [f.get("grant_type", "") for path, f in self.state.requests if path == "/token"]

    def issued_tokens(self) -> Iterator[str]:
        """Every token and code ever handed out: access, refresh, device and authorization
        codes (to look for in logs)."""
        with self.state.lock:
            yield from list(self.state.handed_out)


def _issue(state: _State, user: str, lifetime: int | None = None, length: int = 24) -> Issued:
    lifetime = state.lifetime if lifetime is None else lifetime
    access = "at-" + secrets.token_urlsafe(length)
    refresh = "rt-" + secrets.token_urlsafe(24)
    state.access[access] = (user, time.time() + lifetime)
    state.refresh[refresh] = user
    state.handed_out += [access, refresh]
    return Issued(user, access, refresh, lifetime)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error: str, status: int = 400) -> None:
        self._reply(status, {"error": error})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        path = urllib.parse.urlsplit(self.path).path
        state = self.server.state
        state.requests.append((path, form))
        with state.lock:
            if path == "/introspect":
                self._introspect(state, form)
            elif path == "/device":
                self._device(state, form)
            elif path == "/token":
                self._token(state, form)
            else:
                self._error("not_found", 404)

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        state = self.server.state
        with state.lock:
            if parts.path == "/authorize":
                self._authorize(state, query)
            elif parts.path == "/activate":
                device = next(
                    (d for d in state.devices.values() if d.user_code == query.get("user_code")),
                    None,
                )
                if device is None or "user" not in query:
                    self._error("invalid_request")
                    return
                device.user = query["user"]
                self._reply(200, {"approved": True})
            else:
                self._error("not_found", 404)

    def _introspect(self, state: _State, form: dict[str, str]) -> None:
        entry = state.access.get(form.get("token", ""))
        if entry is None or entry[1] <= time.time():
            self._reply(200, {"active": False})
            return
        user, expiry = entry
        self._reply(200, {"active": True, "username": user, "exp": int(expiry)})

    def _client_ok(self, state: _State, form: dict[str, str]) -> bool:
        if form.get("client_id") != state.client_id:
            return False
        return state.client_secret is None or form.get("client_secret") == state.client_secret

    def _device(self, state: _State, form: dict[str, str]) -> None:
        if not self._client_ok(state, form):
            self._error("invalid_client", 401)
            return
        device_code = "dc-" + secrets.token_urlsafe(16)
        state.handed_out.append(device_code)
        user_code = secrets.token_hex(4).upper()
        state.devices[device_code] = _Device(user_code, form.get("scope", ""), time.time() + 600)
        self._reply(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": f"http://127.0.0.1:{self.server.server_address[1]}/activate",
                "expires_in": 600,
                "interval": state.interval,
            },
        )

    def _authorize(self, state: _State, query: dict[str, str]) -> None:
        redirect = query.get("redirect_uri", "")
        host = urllib.parse.urlsplit(redirect).hostname
        if query.get("client_id") != state.client_id or host not in ("127.0.0.1", "localhost"):
            self._error("invalid_request")
            return
        params: dict[str, str] = {"state": query.get("state", "")}
        if state.browser_user is None or query.get("code_challenge_method") != "S256":
            params["error"] = "access_denied"
        else:
            code = "code-" + secrets.token_urlsafe(16)
            state.handed_out.append(code)
            state.codes[code] = _Code(
                state.browser_user,
                redirect,
                query.get("code_challenge", ""),
                query.get("scope", ""),
            )
            params["code"] = code
        self.send_response(302)
        self.send_header("Location", redirect + "?" + urllib.parse.urlencode(params))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, state: _State, form: dict[str, str]) -> None:
        if not self._client_ok(state, form):
            self._error("invalid_client", 401)
            return
        grant = form.get("grant_type")
        if grant == "refresh_token":
            user = state.refresh.get(form.get("refresh_token", ""))
            if user is None:
                self._error("invalid_grant")
                return
            access = "at-" + secrets.token_urlsafe(24)
            state.access[access] = (user, time.time() + state.lifetime)
            state.handed_out.append(access)
            self._reply(
                200,
                {"access_token": access, "token_type": "Bearer", "expires_in": state.lifetime},
            )
            return
        if grant == DEVICE_GRANT:
            device = state.devices.get(form.get("device_code", ""))
            if device is None:
                self._error("invalid_grant")
            elif device.expires_at <= time.time():
                self._error("expired_token")
            elif device.denied:
                self._error("access_denied")
            elif state.slow_down_polls > 0:
                state.slow_down_polls -= 1
                self._error("slow_down")
            elif device.user is None:
                device.polls += 1
                self._error("authorization_pending")
            else:
                del state.devices[form["device_code"]]
                self._tokens(state, device.user)
            return
        if grant == "authorization_code":
            code = state.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if (
                code is None
                or code.redirect_uri != form.get("redirect_uri")
                or challenge.decode() != code.challenge
            ):
                self._error("invalid_grant")
                return
            self._tokens(state, code.user)
            return
        self._error("unsupported_grant_type")

    def _tokens(self, state: _State, user: str) -> None:
        issued = _issue(state, user)
        self._reply(
            200,
            {
                "access_token": issued.access_token,
                "refresh_token": issued.refresh_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
            },
        )
