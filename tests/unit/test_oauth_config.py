"""The [accounts.oauth2] table: what is accepted, the provider defaults, and each mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncer.config.schema import parse_config
from syncer.errors import ConfigError

GMAIL = {
    "name": "gmail",
    "host": "imap.gmail.com",
    "username": "me@gmail.com",
    "auth": "oauth2",
    "oauth2": {"provider": "google", "client_id": "123.apps", "client_secret_env": "G_SECRET"},
}


def _account(**changes: Any) -> dict[str, Any]:
    account = {**GMAIL, **changes}
    return account


def _oauth2(**changes: Any) -> dict[str, Any]:
    return _account(oauth2={**GMAIL["oauth2"], **changes})  # type: ignore[dict-item]


def _problems(account: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [account]}, path=Path("/etc/syncer.toml"))
    return info.value.problems


def test_google_gets_its_endpoints_scope_and_the_browser_flow() -> None:
    (account,) = parse_config({"accounts": [GMAIL]}).accounts
    oauth2 = account.oauth2
    assert oauth2 is not None
    assert oauth2.token_endpoint == "https://oauth2.googleapis.com/token"
    assert oauth2.scopes_for("imap") == ("https://mail.google.com/",)
    assert oauth2.sign_in_flow == "browser"  # Google's device flow refuses the mail scope


def test_microsoft_gets_a_scope_per_protocol_with_offline_access_and_the_device_flow() -> None:
    config = parse_config({"accounts": [_oauth2(provider="microsoft", client_secret_env=None)]})
    oauth2 = config.accounts[0].oauth2
    assert oauth2 is not None
    assert oauth2.sign_in_flow == "device"
    assert oauth2.scopes_for("pop3") == (
        "https://outlook.office.com/POP.AccessAsUser.All",
        "offline_access",
    )
    assert oauth2.scopes_for("smtp")[0] == "https://outlook.office.com/SMTP.Send"


def test_the_token_file_defaults_to_beside_the_archive(tmp_path: Path) -> None:
    config = parse_config(
        {"archive": {"url": "sqlite:///data/archive.db"}, "accounts": [GMAIL]},
        path=tmp_path / "syncer.toml",
    )
    oauth2 = config.accounts[0].oauth2
    assert oauth2 is not None
    assert oauth2.token_file == tmp_path / "data" / "oauth2-tokens.json"


def test_a_relative_token_file_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    config = parse_config({"accounts": [_oauth2(token_file="t/tokens.json")]}, path=tmp_path / "s")
    oauth2 = config.accounts[0].oauth2
    assert oauth2 is not None and oauth2.token_file == tmp_path / "t" / "tokens.json"


def test_an_oauth2_account_needs_no_password_and_refuses_one() -> None:
    (problem,) = _problems(_account(password_env="X"))
    assert "remove the password source" in problem


def test_auth_oauth2_needs_the_table_and_the_table_needs_auth_oauth2() -> None:
    without_table = {k: v for k, v in GMAIL.items() if k != "oauth2"}
    assert "needs an [accounts.oauth2] table" in _problems(without_table)[0]
    assert 'needs auth = "oauth2"' in _problems(_account(auth="password"))[0]


def test_oauth2_is_allowed_on_imap_and_pop3_but_apop_only_on_pop3() -> None:
    parse_config({"accounts": [_account(protocol="pop3")]})
    (problem,) = _problems(
        {"name": "x", "host": "h", "username": "u", "password_env": "P", "auth": "apop"}
    )
    assert "only for protocol" in problem


def test_an_inline_client_secret_is_refused_without_echoing_it() -> None:
    (problem,) = _problems(_oauth2(client_secret="hunter2-secret"))
    assert "hunter2" not in problem
    assert "unknown key 'client_secret'" in problem
    assert "client_secret_env, client_secret_file or client_secret_command" in problem


def test_an_inline_token_is_refused_with_where_tokens_come_from() -> None:
    (problem,) = _problems(_oauth2(refresh_token="1//0g-secret"))
    assert "1//0g" not in problem
    assert "`syncer auth login` stores them, or token_command prints one" in problem


def test_two_client_secret_sources_are_refused() -> None:
    (problem,) = _problems(_oauth2(client_secret_file="/x"))
    assert "two client secret sources given (client_secret_env, client_secret_file)" in problem


def test_a_generic_provider_must_name_its_endpoints() -> None:
    (problem,) = _problems(_oauth2(provider="generic"))
    assert "token_url is required" in problem
    (problem,) = _problems(_oauth2(provider="generic", token_url="https://id.example/token"))
    assert "needs authorize_url" in problem  # no device URL either: the browser flow


def test_endpoints_must_be_https_except_on_loopback() -> None:
    (problem,) = _problems(_oauth2(token_url="http://id.example.com/token"))
    assert "expected an https:// URL" in problem
    parse_config({"accounts": [_oauth2(token_url="http://127.0.0.1:8080/token")]})


def test_token_command_replaces_the_sign_in_keys() -> None:
    helper = _account(oauth2={"token_command": ["oauth2ms", "--token"]})
    assert parse_config({"accounts": [helper]}).accounts[0].oauth2 is not None
    (problem,) = _problems(_account(oauth2={"token_command": ["t"], "client_id": "x"}))
    assert "token_command prints the access token itself; remove client_id" in problem


def test_token_file_goes_with_the_file_store_only() -> None:
    (problem,) = _problems(_oauth2(token_store="keyring", token_file="/t.json"))
    assert 'token_file is only used with token_store = "file"' in problem


def test_plain_security_with_oauth2_speaks_of_the_access_token() -> None:
    (problem,) = _problems(_account(security="plain"))
    assert "would send the access token unencrypted" in problem


def test_an_smtp_server_signs_in_with_oauth2_given_a_username() -> None:
    smtp = {"name": "out", "host": "smtp.gmail.com", "oauth2": GMAIL["oauth2"]}
    with pytest.raises(ConfigError, match="needs username"):
        parse_config({"smtp": [smtp]})
    config = parse_config({"smtp": [{**smtp, "username": "me@gmail.com"}]})
    assert config.smtp[0].oauth2 is not None
