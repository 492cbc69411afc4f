"""OAuth2 sign-in against a real Dovecot that checks bearer tokens with a local
introspection endpoint (its ``oauth2`` passdb), and against aiosmtpd with a
bearer-token authenticator asking the same authorization server, as the user runs it.

The authorization server is :class:`tests.servers.oauth.OAuthServer` on loopback:
it issues the tokens (device flow, authorization code with PKCE, refresh) and
Dovecot asks it whether each token it is shown is active. Expiring or revoking
a token there is exactly what happens at Google or Microsoft when an access
token runs out or the user withdraws syncer's access.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncer.cli.app import main
from syncer.config.schema import AccountConfig, parse_config
from syncer.config.tokens import entry_key
from syncer.connect import open_maildrop, open_source
from syncer.oauth.endpoint import Tokens
from syncer.oauth.store import FileTokenStore
from tests.fixtures_dovecot import _shutdown, _start
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.oauth import OAuthServer
from tests.servers.smtp import ALL_MECHANISMS, BEARER_MECHANISMS, SMTPTestServer
from tests.servers.tls import TLSFiles

pytestmark = pytest.mark.integration

CLIENT_ID = "syncer-test-client"
CLIENT_SECRET = "client-secret-7f3a9c1e"
SECRET_ENV = "TEST_OAUTH_CLIENT_SECRET"
MESSAGE = b"From: a@example.com\r\nSubject: oauth\r\nMessage-ID: <oauth@example.com>\r\n\r\nhi\r\n"


@pytest.fixture(scope="module")
def auth() -> Iterator[OAuthServer]:
    with OAuthServer(CLIENT_ID, CLIENT_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_oauth(tls_files: TLSFiles, auth: OAuthServer) -> Iterator[DovecotServer]:
    """A Dovecot of its own: the shared ones must keep their password-only set-up."""
    server = _start(tls_files, "dovecot-oauth2", oauth2_introspection_url=auth.introspection_url)
    yield server
    _shutdown(server)


@pytest.fixture
def user(dovecot_oauth: DovecotServer) -> Iterator[MailUser]:
    made = dovecot_oauth.add_user()
    dovecot_oauth.append(made.name, "INBOX", MESSAGE)
    yield made
    dovecot_oauth.remove_user(made.name)


@pytest.fixture(autouse=True)
def client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)


def account_table(
    server: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    *,
    protocol: str = "imap",
    name: str = "mail",
    **oauth2: Any,
) -> dict[str, Any]:
    port = server.ports.imaps if protocol == "imap" else server.ports.pop3s
    return {
        "name": name,
        "protocol": protocol,
        "host": server.host,
        "port": port,
        "security": "tls",
        "ca_file": str(server.tls.ca),
        "username": user.name,
        "retries": 0,
        "auth": "oauth2",
        "oauth2": {
            "provider": "generic",
            "client_id": CLIENT_ID,
            "client_secret_env": SECRET_ENV,
            "token_url": auth.token_url,
            "device_authorization_url": auth.device_url,
            "authorize_url": auth.authorize_url,
            **oauth2,
        },
    }


def load_account(tmp_path: Path, table: dict[str, Any]) -> AccountConfig:
    config = parse_config(
        {"archive": {"url": "sqlite:///archive.db"}, "accounts": [table]},
        path=tmp_path / "syncer.toml",
    )
    return config.accounts[0]


def sign_in(
    account: AccountConfig, auth: OAuthServer, user: MailUser, *, length: int = 24, **tokens: Any
) -> Tokens:
    """Store tokens for ``user`` where syncer looks, as `syncer auth login` would have."""
    assert account.oauth2 is not None and account.oauth2.token_file is not None
    issued = auth.issue(user.name, length=length)
    stored = Tokens(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_at=tokens.get("expires_at", time.time() + issued.expires_in),
        obtained_at=time.time(),
    )
    FileTokenStore(account.oauth2.token_file).save(entry_key("account", account.name), stored)
    return stored


def stored(account: AccountConfig) -> Tokens:
    assert account.oauth2 is not None and account.oauth2.token_file is not None
    tokens = FileTokenStore(account.oauth2.token_file).load(entry_key("account", account.name))
    assert tokens is not None
    return tokens


def logins(server: DovecotServer, user: MailUser) -> list[str]:
    """The SASL mechanisms Dovecot logged successful logins of ``user`` with."""
    text = server.log_path.read_text(errors="replace")
    marker = f"Login: user=<{user.name}>, method="
    return [
        line.split(marker, 1)[1].split(",", 1)[0] for line in text.splitlines() if marker in line
    ]


# -- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mechanism", "expected"),
    [("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER"), ("auto", "OAUTHBEARER")],
)
def test_imap_signs_in_with_a_bearer_token(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    mechanism: str,
    expected: str,
) -> None:
    account = load_account(tmp_path, account_table(dovecot_oauth, auth, user, mechanism=mechanism))
    sign_in(account, auth, user)
    source = open_source(account)
    try:
        names = [f.name for f in source.list_folders()]
    finally:
        source.close()
    assert "INBOX" in names
    assert logins(dovecot_oauth, user)[-1] == expected


@pytest.mark.parametrize(
    ("mechanism", "expected"), [("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER")]
)
def test_pop3_signs_in_with_a_bearer_token(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    mechanism: str,
    expected: str,
) -> None:
    account = load_account(
        tmp_path,
        account_table(dovecot_oauth, auth, user, protocol="pop3", mechanism=mechanism),
    )
    sign_in(account, auth, user)
    source = open_maildrop(account)
    try:
        entries = source.listing()
    finally:
        source.close()
    assert len(entries) == 1
    assert logins(dovecot_oauth, user)[-1] == expected


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_kilobyte_token_signs_in_too(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    protocol: str,
) -> None:
    # POP3 cannot put it on the AUTH line (255 octets, RFC 5034): it answers the empty
    # challenge instead.
    account = load_account(
        tmp_path, account_table(dovecot_oauth, auth, user, protocol=protocol, mechanism="xoauth2")
    )
    sign_in(account, auth, user, length=1500)
    (open_source(account) if protocol == "imap" else open_maildrop(account)).close()
    assert logins(dovecot_oauth, user)[-1] == "XOAUTH2"


# -- refresh -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_token_the_server_refuses_is_refreshed_once_without_user_action(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    protocol: str,
) -> None:
    account = load_account(tmp_path, account_table(dovecot_oauth, auth, user, protocol=protocol))
    before = sign_in(account, auth, user)
    auth.expire(before.access_token)  # expired at the provider; syncer still thinks it good
    grants = len(auth.grants())
    source = open_source(account) if protocol == "imap" else open_maildrop(account)
    source.close()
    assert auth.grants()[grants:] == ["refresh_token"]
    after = stored(account)
    assert after.access_token != before.access_token
    assert after.refresh_token == before.refresh_token
    # One login: the refused attempt is no login, and the retry on the same connection is.
    assert [m for m in logins(dovecot_oauth, user) if m != "PLAIN"] == ["OAUTHBEARER"]


def test_an_access_token_about_to_expire_is_refreshed_before_signing_in(
    tmp_path: Path, dovecot_oauth: DovecotServer, auth: OAuthServer, user: MailUser
) -> None:
    account = load_account(tmp_path, account_table(dovecot_oauth, auth, user))
    before = sign_in(account, auth, user, expires_at=time.time() + 5)
    grants = len(auth.grants())
    open_source(account).close()
    assert auth.grants()[grants:] == ["refresh_token"]
    assert stored(account).access_token != before.access_token
    assert "auth failed" not in dovecot_oauth.log_tail(5)


# -- the command line --------------------------------------------------------------------------


def write_config(tmp_path: Path, *tables: dict[str, Any]) -> Path:
    lines = ['[archive]\nurl = "sqlite:///archive.db"\n']
    for table in tables:
        oauth2 = table["oauth2"]
        lines.append("[[accounts]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items() if k != "oauth2"]
        lines.append("[accounts.oauth2]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in oauth2.items()]
        lines.append("")
    path = tmp_path / "syncer.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_a_revoked_refresh_token_tells_the_user_to_sign_in_again(
    tmp_path: Path, dovecot_oauth: DovecotServer, auth: OAuthServer, user: MailUser
) -> None:
    table = account_table(dovecot_oauth, auth, user, name="work")
    config = write_config(tmp_path, table)
    tokens = sign_in(load_account(tmp_path, table), auth, user)
    auth.revoke(tokens.refresh_token or "")
    assert cli(config, "init").exit_code == 0
    result = cli(config, "sync", "work")
    assert result.exit_code == 1
    assert "Run `syncer auth login work` to sign in again." in result.output
    assert "refused the refresh token (invalid_grant" in result.output


@pytest.fixture
def private_umask() -> Iterator[None]:
    """A permissive umask: the token file must be 0600 whatever the umask allows."""
    old = os.umask(0)
    yield
    os.umask(old)


def approve_when_asked(auth: OAuthServer, user: MailUser) -> threading.Thread:
    """The user's side of the device flow: enter the code shown, approve."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for code in auth.pending_user_codes():
                urllib.request.urlopen(
                    f"{auth.url}/activate?user_code={code}&user={user.name}", timeout=10
                ).read()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_device_flow_signs_in_stores_a_0600_token_file_and_the_token_works(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    private_umask: None,
) -> None:
    table = account_table(dovecot_oauth, auth, user, name="work", flow="device")
    config = write_config(tmp_path, table)
    approver = approve_when_asked(auth, user)
    result = cli(config, "auth", "login", "work")
    approver.join()
    assert result.exit_code == 0, result.output
    assert "enter the code" in result.output
    token_file = tmp_path / "oauth2-tokens.json"  # beside the archive by default
    assert f"Signed in account 'work'; tokens stored in {token_file}" in result.output
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    status = json.loads(cli(config, "auth", "status", "--json").stdout)
    assert status == [
        {
            "kind": "account",
            "name": "work",
            "provider": "generic",
            "store": str(token_file),
            "present": True,
            "refreshable": True,
            "expires_at": status[0]["expires_at"],
            "expired": False,
            "signed_in_at": status[0]["signed_in_at"],
        }
    ]
    source = open_source(load_account(tmp_path, table))
    source.close()
    assert logins(dovecot_oauth, user)[-1] == "OAUTHBEARER"

    assert "Signed out account 'work'" in cli(config, "auth", "logout", "work").output
    assert json.loads(cli(config, "auth", "status", "--json").stdout)[0]["present"] is False


def test_browser_flow_with_pkce_and_a_loopback_redirect(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = account_table(dovecot_oauth, auth, user, protocol="pop3", name="home", flow="browser")
    config = write_config(tmp_path, table)
    auth.browser_user = user.name
    visited: list[str] = []

    def browser(url: str) -> bool:
        # The browser step: the provider's page redirects to syncer's loopback listener.
        visited.append(url)
        threading.Thread(
            target=lambda: urllib.request.urlopen(url, timeout=10).read(), daemon=True
        ).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    result = cli(config, "auth", "login", "home")
    assert result.exit_code == 0, result.output
    assert visited and "code_challenge_method=S256" in visited[0]
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in visited[0]
    source = open_maildrop(load_account(tmp_path, table))
    source.close()
    assert logins(dovecot_oauth, user)[-1] == "OAUTHBEARER"


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def debug_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """syncer's own logging set-up at its most verbose (libraries at debug too), writing to
    the captured stderr; undone after."""
    import logging

    import structlog

    from syncer import logs

    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure(3, json=True)
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_no_token_code_or_client_secret_appears_in_any_log_line(
    tmp_path: Path,
    dovecot_oauth: DovecotServer,
    auth: OAuthServer,
    user: MailUser,
    smtp_oauth: SMTPTestServer,
    capfd: pytest.CaptureFixture[str],
    debug_logs: None,
) -> None:
    imap = load_account(tmp_path, account_table(dovecot_oauth, auth, user, name="imap"))
    pop = load_account(
        tmp_path, account_table(dovecot_oauth, auth, user, protocol="pop3", name="pop")
    )
    for account, connect in ((imap, open_source), (pop, open_maildrop)):
        tokens = sign_in(account, auth, user)
        auth.expire(tokens.access_token)  # refused once, refreshed, signed in
        connect(account).close()
    smtp = smtp_relay_config(tmp_path, smtp_oauth, auth, "me@example.com")
    auth.expire(smtp_sign_in(smtp, auth, "me@example.com").access_token)
    send_one(smtp)
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    config = write_config(cli_dir, account_table(dovecot_oauth, auth, user, name="work"))
    approver = approve_when_asked(auth, user)
    login = cli(config, "-vvv", "auth", "login", "work")
    approver.join()
    assert login.exit_code == 0, login.output
    out, err = capfd.readouterr()
    logged = out + err + login.output
    for event in ("oauth.token_refused", "oauth.token_refreshed", "oauth.tokens_issued"):
        assert event in logged  # the logs were captured at all
    secrets = [*auth.issued_tokens(), CLIENT_SECRET]
    assert len(secrets) >= 7
    leaked = [s for s in secrets if s in logged]
    assert leaked == []


# -- SMTP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp_oauth(
    tmp_path_factory: pytest.TempPathFactory, auth: OAuthServer
) -> Iterator[SMTPTestServer]:
    """aiosmtpd offering XOAUTH2 and OAUTHBEARER, checking tokens with ``auth``."""
    server = SMTPTestServer(
        tmp_path_factory.mktemp("smtp-oauth"), mechanisms=(*ALL_MECHANISMS, *BEARER_MECHANISMS)
    )
    server.handler.bearer = auth.valid
    with server:
        yield server


def smtp_relay_config(
    tmp_path: Path, server: SMTPTestServer, auth: OAuthServer, user: str, **oauth2: Any
) -> Any:
    from syncer.config.schema import SMTPConfig

    config = parse_config(
        {
            "archive": {"url": "sqlite:///archive.db"},
            "smtp": [
                {
                    "name": "out",
                    "host": "localhost",
                    "port": server.ports["tls"],
                    "security": "tls",
                    "ca_file": str(server.tls.ca),
                    "username": user,
                    "timeout": 10,
                    "oauth2": {
                        "client_id": CLIENT_ID,
                        "client_secret_env": SECRET_ENV,
                        "token_url": auth.token_url,
                        "device_authorization_url": auth.device_url,
                        **oauth2,
                    },
                }
            ],
        },
        path=tmp_path / "syncer.toml",
    )
    smtp: SMTPConfig = config.smtp[0]
    return smtp


def smtp_sign_in(smtp: Any, auth: OAuthServer, user: str) -> Tokens:
    issued = auth.issue(user)
    tokens = Tokens(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_at=time.time() + issued.expires_in,
    )
    FileTokenStore(smtp.oauth2.token_file).save(entry_key("smtp", smtp.name), tokens)
    return tokens


def send_one(smtp: Any) -> None:
    from syncer.connect import smtp_settings
    from syncer.smtp.client import SMTPRelay

    with SMTPRelay(smtp_settings(smtp)) as relay:
        relay.connect()
        relay.send("me@example.com", ["you@example.net"], MESSAGE)


@pytest.mark.parametrize(
    ("mechanism", "expected"),
    [("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER"), ("auto", "OAUTHBEARER")],
)
def test_smtp_signs_in_with_a_bearer_token(
    tmp_path: Path, smtp_oauth: SMTPTestServer, auth: OAuthServer, mechanism: str, expected: str
) -> None:
    smtp_oauth.reset()
    smtp = smtp_relay_config(tmp_path, smtp_oauth, auth, "me@example.com", mechanism=mechanism)
    smtp_sign_in(smtp, auth, "me@example.com")
    send_one(smtp)
    assert smtp_oauth.handler.logins == [(expected, "me@example.com")]
    assert smtp_oauth.received[-1].login == "me@example.com"


def test_smtp_refreshes_a_refused_token_once(
    tmp_path: Path, smtp_oauth: SMTPTestServer, auth: OAuthServer
) -> None:
    smtp_oauth.reset()
    smtp = smtp_relay_config(tmp_path, smtp_oauth, auth, "me@example.com")
    tokens = smtp_sign_in(smtp, auth, "me@example.com")
    auth.expire(tokens.access_token)
    grants = len(auth.grants())
    send_one(smtp)
    assert auth.grants()[grants:] == ["refresh_token"]
    assert smtp_oauth.handler.logins == [("OAUTHBEARER", "me@example.com")]


def test_smtp_with_a_revoked_refresh_token_says_to_sign_in_again(
    tmp_path: Path, smtp_oauth: SMTPTestServer, auth: OAuthServer
) -> None:
    from syncer.errors import RelayError

    smtp = smtp_relay_config(tmp_path, smtp_oauth, auth, "me@example.com")
    tokens = smtp_sign_in(smtp, auth, "me@example.com")
    auth.revoke(tokens.refresh_token or "")
    with pytest.raises(RelayError) as refused:  # what the outbox defers and reports
        send_one(smtp)
    assert str(refused.value).endswith("Run `syncer auth login smtp:out` to sign in again.")
