"""The authorization code grant with PKCE (:rfc:`7636`) and a loopback redirect (:rfc:`8252`).

For providers without a device flow for mail scopes (Google's device flow
does not allow ``https://mail.google.com/``): syncer listens on a loopback
port, prints the authorization URL (and opens a browser where it can), and
the provider sends the browser back to ``http://127.0.0.1:PORT/`` with a
``code``. The ``state`` value must come back unchanged (CSRF, :rfc:`6749#section-10.12`)
and the code is exchanged together with the PKCE ``code_verifier``, so a code
caught by another program on the machine is useless.

The listener answers one redirect and stops; it binds to the loopback
interface only (RFC 8252 section 8.3).

Public API: :func:`pkce_pair`, :class:`LoopbackListener`, :func:`browser_flow`.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
import urllib.parse
from collections.abc import Callable

import structlog

from syncer.logs import register_secret
from syncer.oauth.endpoint import Client, Tokens, request_tokens
from syncer.oauth.errors import OAuthError

log = structlog.get_logger(__name__)

#: How long to wait for the browser to come back.
DEFAULT_TIMEOUT = 300.0

_DONE_PAGE = (
    b"<!doctype html><title>syncer</title><p>Signed in. You can close this window and go back "
    b"to the terminal.</p>"
)
_FAILED_PAGE = b"<!doctype html><title>syncer</title><p>Sign-in failed: %s</p>"


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` for the S256 method."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if not query:  # a favicon or a probe, not the redirect
            self.send_response(404)
            self.end_headers()
            return
        self.server.result = {k: v[0] for k, v in query.items() if v}
        ok = "code" in self.server.result
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        error = self.server.result.get("error", "no code").encode("utf-8", "replace")
        self.wfile.write(_DONE_PAGE if ok else _FAILED_PAGE % error[:100])
        self.server.arrived.set()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query carries the code: never written anywhere


class _Server(http.server.HTTPServer):
    result: dict[str, str]
    arrived: threading.Event


class LoopbackListener:
    """Waits on a loopback port for the one redirect that ends the browser sign-in."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server(("127.0.0.1" if host == "localhost" else host, port), _Handler)
        self._server.result = {}
        self._server.arrived = threading.Event()
        self.redirect_uri = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="oauth-loopback", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float) -> dict[str, str]:
        """The redirect's query parameters.

        :raises OAuthError: when no redirect arrives within ``timeout`` seconds.
        """
        if not self._server.arrived.wait(timeout):
            raise OAuthError(
                f"No answer from the browser within {timeout:g} s.",
                hint="Run `syncer auth login` again and finish the sign-in in the browser.",
            )
        return self._server.result

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def authorization_url(client: Client, redirect_uri: str, state: str, challenge: str) -> str:
    if not client.authorize_url:
        raise OAuthError("This provider has no authorization endpoint (authorize_url).")
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(client.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **client.authorize_params,
    }
    separator = "&" if "?" in client.authorize_url else "?"
    return client.authorize_url + separator + urllib.parse.urlencode(params)


def browser_flow(
    client: Client,
    say: Callable[[str], None],
    *,
    open_browser: Callable[[str], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tokens:
    """The whole grant: listen, send the user to the provider, exchange the returned code.

    :param open_browser: called with the URL (``webbrowser.open``); None only prints it.
    :raises OAuthError: on a refused sign-in, a mismatched state, or a timeout.
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    listener = LoopbackListener(client.redirect_host, client.redirect_port)
    try:
        url = authorization_url(client, listener.redirect_uri, state, challenge)
        say(f"To sign in, open this URL in a browser on this machine:\n{url}")
        if open_browser is not None:
            open_browser(url)
        say("Waiting for the browser to come back...")
        answer = listener.wait(timeout)
    finally:
        listener.close()
    if answer.get("state") != state:
        raise OAuthError("The browser came back with a wrong state value; sign-in abandoned.")
    if "error" in answer:
        detail = answer.get("error_description") or answer["error"]
        raise OAuthError(f"The sign-in was refused: {detail}.")
    code = answer.get("code")
    if not code:
        raise OAuthError("The browser came back without an authorization code.")
    register_secret(code, rotating=True)
    return request_tokens(
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": listener.redirect_uri,
            "code_verifier": verifier,
        },
    )
