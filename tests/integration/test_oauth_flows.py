"""The OAuth2 grants and the token provider against a real authorization server on loopback
(:class:`tests.servers.oauth.OAuthServer`): device flow polling (:rfc:`8628`), the browser
flow with PKCE (:rfc:`7636`), refresh before expiry and the errors that need the user."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncer.errors import ConfigError
from syncer.oauth.device import device_flow, poll_device_flow, start_device_flow
from syncer.oauth.endpoint import Client, Tokens
from syncer.oauth.errors import LoginRequired, OAuthError, OAuthUnavailable
from syncer.oauth.loopback import browser_flow
from syncer.oauth.session import CommandTokens, StoredTokens
from syncer.oauth.store import FileTokenStore
from tests.servers.oauth import OAuthServer

pytestmark = pytest.mark.integration

SECRET = "flows-client-secret"


@pytest.fixture(scope="module")
def auth() -> Iterator[OAuthServer]:
    with OAuthServer("flows", SECRET) as server:
        yield server


def client_for(auth: OAuthServer, **changes: object) -> Client:
    fields: dict[str, object] = {
        "client_id": "flows",
        "token_url": auth.token_url,
        "scopes": ("mail",),
        "client_secret": lambda: SECRET,
        "authorize_url": auth.authorize_url,
        "device_authorization_url": auth.device_url,
        **changes,
    }
    return Client(**fields)  # type: ignore[arg-type]


def test_device_flow_waits_while_pending_and_slows_down_when_told(auth: OAuthServer) -> None:
    client = client_for(auth)
    code = start_device_flow(client)
    auth.slow_down(1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the user approves during the third wait
        waits.append(seconds)
        if len(waits) == 3:
            auth.approve(code.user_code, "alice")

    tokens = poll_device_flow(client, code, sleep=sleep)
    assert waits == [0.0, 5.0, 5.0]  # interval 0, then +5 s after slow_down (RFC 8628 3.5)
    assert tokens.refresh_token is not None
    assert auth.valid("alice", tokens.access_token)


def test_device_flow_tells_the_user_where_to_go(auth: OAuthServer) -> None:
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        for user_code in auth.pending_user_codes():
            auth.approve(user_code, "bob")

    tokens = device_flow(client_for(auth), say, sleep=lambda s: None)
    assert said[0].startswith(f"To sign in, open {auth.url}/activate and enter the code ")
    assert auth.valid("bob", tokens.access_token)


def test_device_flow_stops_when_the_user_refuses(auth: OAuthServer) -> None:
    client = client_for(auth)
    code = start_device_flow(client)
    auth.deny(code.user_code)
    with pytest.raises(OAuthError, match="refused in the browser"):
        poll_device_flow(client, code, sleep=lambda s: None)


def test_device_flow_gives_up_when_the_code_expires() -> None:
    from syncer.oauth.device import DeviceCode

    with OAuthServer("flows", SECRET) as auth:
        client = client_for(auth)
        code = start_device_flow(client)
        expired = DeviceCode(code.device_code, code.user_code, "", None, 0.0, 0.0)
        with pytest.raises(OAuthError, match="expired before it was approved"):
            poll_device_flow(client, expired, sleep=lambda s: None)


def _browser(url: str) -> None:
    threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read()).start()


def test_browser_flow_exchanges_the_code_with_the_pkce_verifier(auth: OAuthServer) -> None:
    auth.browser_user = "carol"
    tokens = browser_flow(client_for(auth), lambda text: None, open_browser=_browser)
    assert auth.valid("carol", tokens.access_token)


def test_browser_flow_reports_a_refused_sign_in(auth: OAuthServer) -> None:
    auth.browser_user = None  # the user clicks "Cancel"
    with pytest.raises(OAuthError, match="The sign-in was refused: access_denied"):
        browser_flow(client_for(auth), lambda text: None, open_browser=_browser)


def test_a_wrong_client_secret_is_a_clear_error(auth: OAuthServer) -> None:
    with pytest.raises(OAuthError, match=r"invalid_client"):
        start_device_flow(client_for(auth, client_secret=lambda: "wrong"))


# -- the token provider ------------------------------------------------------------------------


def provider(
    auth: OAuthServer, tmp_path: Path, tokens: Tokens | None, **kw: object
) -> StoredTokens:
    store = FileTokenStore(tmp_path / "tokens.json")
    if tokens is not None:
        store.save("account:work", tokens)
    return StoredTokens(
        client_for(auth, **kw), store, "account:work", owner="Account 'work'", name="work"
    )


def test_a_valid_access_token_is_used_as_it_is(auth: OAuthServer, tmp_path: Path) -> None:
    issued = auth.issue("dave")
    tokens = Tokens(issued.access_token, time.time() + 3600, issued.refresh_token)
    grants = len(auth.grants())
    assert provider(auth, tmp_path, tokens)() == issued.access_token
    assert auth.grants()[grants:] == []


def test_a_token_within_a_minute_of_expiry_is_refreshed_and_stored(
    auth: OAuthServer, tmp_path: Path
) -> None:
    issued = auth.issue("dave")
    tokens = Tokens(issued.access_token, time.time() + 30, issued.refresh_token)
    tokens_for = provider(auth, tmp_path, tokens)
    fresh = tokens_for()
    assert fresh != issued.access_token and auth.valid("dave", fresh)
    again = FileTokenStore(tmp_path / "tokens.json").load("account:work")
    assert again is not None and again.access_token == fresh
    assert again.refresh_token == issued.refresh_token  # kept: the server sent no new one
    assert tokens_for() == fresh  # now valid for an hour: no second refresh


def test_refresh_true_always_asks_for_a_new_token(auth: OAuthServer, tmp_path: Path) -> None:
    issued = auth.issue("dave")
    tokens_for = provider(
        auth, tmp_path, Tokens(issued.access_token, time.time() + 3600, issued.refresh_token)
    )
    assert tokens_for(refresh=True) != issued.access_token


def test_without_stored_tokens_the_user_is_told_to_sign_in(
    auth: OAuthServer, tmp_path: Path
) -> None:
    with pytest.raises(LoginRequired) as info:
        provider(auth, tmp_path, None)()
    assert str(info.value) == (
        f"Account 'work': OAuth2 sign-in needed: no OAuth2 token is stored in "
        f"{tmp_path / 'tokens.json'}. Run `syncer auth login work` to sign in again."
    )


def test_a_revoked_refresh_token_needs_a_new_sign_in(auth: OAuthServer, tmp_path: Path) -> None:
    issued = auth.issue("erin")
    auth.revoke(issued.refresh_token)
    tokens_for = provider(auth, tmp_path, Tokens(issued.access_token, 0.0, issued.refresh_token))
    with pytest.raises(LoginRequired, match="invalid_grant") as info:
        tokens_for()
    assert info.value.hint == "Run `syncer auth login work` to sign in again."
    assert info.value.exit_code == 1


def test_an_unreachable_token_endpoint_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
    with OAuthServer("flows", SECRET) as auth:
        tokens_for = provider(auth, tmp_path, Tokens("a", 0.0, "r"), token_url=dead)
        with pytest.raises(OAuthUnavailable) as info:
            tokens_for()
    assert info.value.transient


def test_token_command_runs_the_users_helper(tmp_path: Path) -> None:
    assert CommandTokens(["echo", "helper-token"], owner="Account 'work'")() == "helper-token"
    with pytest.raises(ConfigError, match="token_command 'false' exited with status 1"):
        CommandTokens(["false"], owner="Account 'work'")()
