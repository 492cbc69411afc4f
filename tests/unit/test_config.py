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


# A file with a good [archive], a broken account and a broken [web], a digest naming a
# missing [[smtp]] server, and an unknown top-level key.
MIXED: dict[str, object] = {
    "archive": {"url": "sqlite:///a.db"},
    "accounts": [{**GOOD_ACCOUNT, "port": 0}],
    "web": {"listen": "nowhere"},
    "digests": [
        {
            "name": "d",
            "smtp": "relay",
            "query": "x",
            "to": "a@b.example",
            "from": "c@d.example",
            "schedule": "0 8 * * *",
        }
    ],
    "colour": "blue",
}


def _problems_of(data: dict[str, object], sections: list[str] | None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, path=Path("/etc/syncer.toml"), sections=sections)
    return info.value.problems


def test_a_command_reads_only_its_sections_with_the_same_errors() -> None:
    every = _problems_of(MIXED, None)
    assert len(every) == 3  # the digest's reference is checked once the sections are valid
    # Each section's problem is reported word for word as when reading the whole file;
    # an unknown top-level key is refused by every command.
    unknown = [p for p in every if "unknown key 'colour'" in p]
    assert _problems_of(MIXED, []) == unknown
    assert _problems_of(MIXED, ["accounts"]) == [
        p for p in every if "accounts[0]" in p or p in unknown
    ]
    assert _problems_of(MIXED, ["web"]) == [p for p in every if "web.listen" in p or p in unknown]
    # A digest brings the [[smtp]] servers it names along.
    fixed = {k: v for k, v in MIXED.items() if k != "colour"}
    assert _problems_of(fixed, ["digests"]) == [
        "/etc/syncer.toml: digests[0] (d).smtp: no [[smtp]] named 'relay' (configured: none)"
    ]
    cfg = parse_config(fixed, path=Path("/etc/syncer.toml"), sections=[])
    assert cfg.archive_url == "sqlite:////etc/a.db"
    assert cfg.logging.format == "auto"


def test_duplicate_names_are_refused_when_only_accounts_are_read() -> None:
    problems = _problems_of({"accounts": [GOOD_ACCOUNT, GOOD_ACCOUNT]}, ["accounts"])
    assert problems == [
        "/etc/syncer.toml: accounts: the name 'work' is used twice; give each entry its own"
    ]


def test_a_section_not_read_refuses_any_use() -> None:
    cfg = parse_config({"accounts": [GOOD_ACCOUNT], "web": {"listen": "nowhere"}}, sections=[])
    with pytest.raises(RuntimeError, match=r"the \[accounts\] section was not read"):
        list(cfg.accounts)
    with pytest.raises(RuntimeError, match=r"the \[web\] section was not read"):
        _ = cfg.web.listen
    read = parse_config({"accounts": [GOOD_ACCOUNT]}, sections=["accounts"])
    assert [a.name for a in read.accounts] == ["work"]
    with pytest.raises(ValueError, match="not sections of the configuration"):
        parse_config({}, sections=["acounts"])


def test_oauth2_token_files_are_anchored_in_the_sections_read(tmp_path: Path) -> None:
    account = {
        "name": "work",
        "host": "imap.example.com",
        "username": "me",
        "auth": "oauth2",
        "oauth2": {"provider": "google", "client_id": "id"},
    }
    cfg = parse_config({"accounts": [account]}, path=tmp_path / "s.toml", sections=["accounts"])
    whole = parse_config({"accounts": [account]}, path=tmp_path / "s.toml")
    assert cfg.accounts[0].oauth2 == whole.accounts[0].oauth2
    assert cfg.accounts[0].oauth2 is not None and cfg.accounts[0].oauth2.token_file is not None
    assert cfg.accounts[0].oauth2.token_file.is_absolute()


def test_reading_the_archive_section_builds_no_other_model(tmp_path: Path) -> None:
    """What ``syncer search`` pays: the models of the sections it does not read are
    defined but never built (pydantic ``defer_build``), in a fresh interpreter."""
    import subprocess
    import sys

    config = tmp_path / "s.toml"
    config.write_text('[archive]\nurl = "sqlite:///a.db"\n\n[web]\nlisten = "127.0.0.1:1"\n')
    script = (
        "import sys\n"
        "from syncer.config import schema, web\n"
        "schema.load_config(sys.argv[1], sections=())\n"
        "models = (schema.Config, schema.AccountConfig, schema.SMTPConfig, web.WebConfig)\n"
        "print(sorted(m.__name__ for m in models if m.__pydantic_complete__))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(config)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
