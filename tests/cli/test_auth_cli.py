"""`syncer auth login|status|logout` as a user types them (no mail server needed here;
signing in and then reading mail is in tests/integration/test_oauth_dovecot.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Syncer
from tests.servers.oauth import OAuthServer

SECRET_ENV = "TEST_AUTH_CLI_SECRET"


@pytest.fixture(scope="module")
def auth() -> Iterator[OAuthServer]:
    with OAuthServer("cli-client", "cli-secret") as server:
        yield server


def config_text(auth: OAuthServer) -> str:
    return f"""\
[archive]
url = "sqlite:///archive.db"

[[accounts]]
name = "work"
host = "imap.example.com"
username = "me@example.com"
password_env = "WORK_PASSWORD"

[[accounts]]
name = "helper"
host = "imap.example.com"
username = "me@example.com"
auth = "oauth2"
[accounts.oauth2]
token_command = ["echo", "token-from-helper"]

[[smtp]]
name = "out"
host = "smtp.example.com"
username = "me@example.com"
[smtp.oauth2]
client_id = "cli-client"
client_secret_env = "{SECRET_ENV}"
token_url = "{auth.token_url}"
device_authorization_url = "{auth.device_url}"
"""


@pytest.fixture
def cli(syncer_cli: Syncer, auth: OAuthServer, monkeypatch: pytest.MonkeyPatch) -> Syncer:
    syncer_cli.write_config(config_text(auth))
    monkeypatch.setenv(SECRET_ENV, "cli-secret")
    return syncer_cli


def test_status_lists_every_oauth2_entry_without_a_token(cli: Syncer) -> None:
    result = cli("auth", "status")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "account helper (generic): tokens from token_command",
        "smtp out (generic): not signed in (run `syncer auth login out`)",
    ]


def test_login_and_logout_of_an_smtp_server_with_the_device_flow(
    cli: Syncer, auth: OAuthServer
) -> None:
    def approve() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not auth.pending_user_codes():
            time.sleep(0.01)
        for code in auth.pending_user_codes():
            auth.approve(code, "me@example.com")

    approver = threading.Thread(target=approve)
    approver.start()
    result = cli("auth", "login", "smtp:out")
    approver.join()
    assert result.exit_code == 0, result.output
    assert "Signed in smtp 'out'; tokens stored in " in result.output
    (row,) = [r for r in cli.json("auth", "status") if r["kind"] == "smtp"]
    assert row["present"] is True and row["refreshable"] is True and row["expired"] is False
    assert not any(t in json.dumps(row) for t in auth.issued_tokens())
    assert "Signed out smtp 'out'" in cli("auth", "logout", "out").output
    assert "had no stored tokens" in cli("auth", "logout", "out").output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("work", "Error: Account 'work' does not sign in with OAuth2"),
        ("helper", "Error: Account 'helper' gets its tokens from token_command"),
        ("nobody", "These sign in with OAuth2: account:helper, smtp:out."),
    ],
)
def test_login_refuses_what_it_cannot_do_with_exit_2(cli: Syncer, name: str, message: str) -> None:
    result = cli("auth", "login", name)
    assert result.exit_code == 2
    assert message in result.output


def test_config_check_reads_the_client_secret_instead_of_a_password(
    cli: Syncer, auth: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORK_PASSWORD", "pw")
    assert cli("config", "check").exit_code == 0
    monkeypatch.delenv(SECRET_ENV)
    cli.write_config(
        config_text(auth)
        + '\n[[accounts]]\nname = "g"\nhost = "imap.gmail.com"\nusername = "me@gmail.com"\n'
        'auth = "oauth2"\n[accounts.oauth2]\nprovider = "google"\nclient_id = "x"\n'
        f'client_secret_env = "{SECRET_ENV}"\n'
    )
    result = cli("config", "check")
    assert result.exit_code == 2
    assert f"account 'g': environment variable {SECRET_ENV} (client_secret_env) is not set." in (
        result.output
    )
