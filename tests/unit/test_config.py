"""The configuration file: what is accepted, and how each mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.config.schema import load_config, parse_config
from syncer.errors import ConfigError
from syncer.secrets import resolve_secret

REPO = Path(__file__).resolve().parents[2]

GOOD_ACCOUNT: dict[str, object] = {
    "name": "work",
    "host": "imap.example.com",
    "username": "me",
    "password_env": "WORK_PASS",
}


def _problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, path=Path("/etc/syncer.toml"))
    return info.value.problems


def test_the_example_file_loads_and_documents_every_key() -> None:
    cfg = load_config(REPO / "syncer" / "config" / "examples" / "syncer.example.toml")
    assert cfg.accounts[0].name == "work"
    assert cfg.smtp[0].effective_port == 587
    text = (REPO / "syncer" / "config" / "examples" / "syncer.example.toml").read_text()
    from syncer.config.oauth import OAuth2Config
    from syncer.config.relay import DigestConfig, ForwardConfig, OutboxConfig
    from syncer.config.retention import RetentionPolicy, RetentionSettings
    from syncer.config.schema import (
        AccountConfig,
        ArchiveConfig,
        MetricsConfig,
        SchedulerConfig,
        SMTPConfig,
    )
    from syncer.config.web import WebConfig

    for model in (
        AccountConfig,
        ArchiveConfig,
        SMTPConfig,
        SchedulerConfig,
        MetricsConfig,
        RetentionPolicy,
        RetentionSettings,
        DigestConfig,
        ForwardConfig,
        OutboxConfig,
        OAuth2Config,
        WebConfig,
    ):
        for key, field in model.model_fields.items():
            key = field.alias or key  # e.g. `from`
            assert key in text, f"{model.__name__}.{key} is not documented in the example"


def test_defaults_give_the_protocol_port_for_the_security() -> None:
    cfg = parse_config({"accounts": [GOOD_ACCOUNT]})
    assert cfg.accounts[0].effective_port == 993
    starttls = parse_config({"accounts": [{**GOOD_ACCOUNT, "security": "starttls"}]})
    assert starttls.accounts[0].effective_port == 143
    pop = parse_config({"accounts": [{**GOOD_ACCOUNT, "protocol": "pop3"}]})
    assert pop.accounts[0].effective_port == 995


def test_relative_sqlite_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config({"archive": {"url": "sqlite:///a/archive.db"}}, path=tmp_path / "s.toml")
    assert cfg.archive_url == f"sqlite:///{tmp_path}/a/archive.db"
    cfg = parse_config({"archive": {"blob_store": "fs:blobs"}}, path=tmp_path / "s.toml")
    assert cfg.blob_store == f"fs:{tmp_path}/blobs"


def test_unknown_key_names_the_key_path() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "colour": "blue"}]})
    assert problem == "/etc/syncer.toml: accounts[0] (work): unknown key 'colour'"


def test_an_inline_password_is_refused_without_echoing_it() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "password": "hunter2"}]})
    assert "hunter2" not in problem
    assert "unknown key 'password'" in problem
    assert "password_env, password_file or password_command" in problem


def test_wrong_type_says_what_was_expected() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "port": "nine"}]})
    assert problem.startswith("/etc/syncer.toml: accounts[0] (work).port: ")
    assert "integer" in problem and "'nine'" in problem


def test_two_secret_sources_are_refused() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "password_file": "/x"}]})
    assert "two secret sources given (password_env, password_file)" in problem


def test_plain_with_a_password_needs_allow_insecure() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "security": "plain"}]})
    assert "unencrypted" in problem and "allow_insecure = true" in problem
    ok = parse_config({"accounts": [{**GOOD_ACCOUNT, "security": "plain", "allow_insecure": True}]})
    assert ok.accounts[0].effective_port == 143


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        {
            "archive": {"url": "mysql://x", "bogus": 1},
            "accounts": [{**GOOD_ACCOUNT, "port": 0}, {"name": "b"}],
        }
    )
    assert len(problems) >= 4
    assert any("archive.url" in p for p in problems)
    assert any("accounts[1] (b).host: required key is missing" in p for p in problems)


def test_duplicate_account_names_are_refused() -> None:
    (problem,) = _problems({"accounts": [GOOD_ACCOUNT, GOOD_ACCOUNT]})
    assert "'work' is used twice" in problem


def test_bad_schedule_is_refused() -> None:
    (problem,) = _problems({"accounts": [{**GOOD_ACCOUNT, "schedule": "every day"}]})
    assert "not a cron expression" in problem


def test_unknown_account_lists_the_configured_ones() -> None:
    cfg = parse_config({"accounts": [GOOD_ACCOUNT]}, path=Path("/etc/syncer.toml"))
    with pytest.raises(ConfigError, match="These are the configured accounts: work"):
        cfg.account("home")


def test_secret_from_env_file_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORK_PASS", "s3cret-env")
    cfg = parse_config({"accounts": [GOOD_ACCOUNT]})
    assert resolve_secret(cfg.accounts[0], owner="account 'work'") == "s3cret-env"

    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret-file\n")
    acc = {**GOOD_ACCOUNT, "password_env": None, "password_file": str(secret_file)}
    cfg = parse_config({"accounts": [acc]})
    assert resolve_secret(cfg.accounts[0], owner="a") == "s3cret-file"

    acc = {**GOOD_ACCOUNT, "password_env": None, "password_command": ["echo", "s3cret-cmd"]}
    cfg = parse_config({"accounts": [acc]})
    assert resolve_secret(cfg.accounts[0], owner="a") == "s3cret-cmd"


def test_missing_env_var_is_a_config_error() -> None:
    cfg = parse_config({"accounts": [GOOD_ACCOUNT]})
    with pytest.raises(ConfigError, match="environment variable WORK_PASS"):
        resolve_secret(cfg.accounts[0], owner="account 'work'")


def test_failing_password_command_is_a_config_error() -> None:
    acc = {**GOOD_ACCOUNT, "password_env": None, "password_command": ["false"]}
    cfg = parse_config({"accounts": [acc]})
    with pytest.raises(ConfigError, match="exited with status 1"):
        resolve_secret(cfg.accounts[0], owner="a")


def test_the_web_section_is_checked() -> None:
    from syncer.config.schema import parse_config
    from syncer.errors import ConfigError

    config = parse_config({"web": {"enabled": True, "listen": "[::1]:8443"}})
    assert config.web.enabled and config.web.address == ("::1", 8443)
    for bad, says in (
        ({"listen": "8080"}, "host:port"),
        ({"cert": "/c.pem"}, "cert and key go together"),
        ({"sso_header": "X-Remote-User"}, "needs trusted_proxies"),
        ({"session_secret_env": "A", "session_secret_file": "/f"}, "two session secret sources"),
        ({"session_secret": "inline"}, "unknown key"),
    ):
        with pytest.raises(ConfigError, match=says):
            parse_config({"web": bad})
