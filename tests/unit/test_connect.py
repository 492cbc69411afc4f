"""syncer.connect: the one config -> adapter factory and its lazy registry.

Connecting for real is tested through its callers against Dovecot and aiosmtpd
(test_sync_dovecot, test_pop3_dovecot, test_push, test_outbox_relay); here the
registry, the settings it builds from a configuration entry, and that building
an IMAP adapter imports no POP3 or SMTP code.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from syncer import connect
from syncer.config.schema import AccountConfig, SMTPConfig
from syncer.errors import ConfigError, SyncerError, UsageError
from syncer.sources.imap.source import IMAPSource
from syncer.sources.imap.target import IMAPTarget
from syncer.sources.pop3.source import POP3Source


def account(**keys: Any) -> AccountConfig:
    keys.setdefault("password_env", "SYNCER_TEST_CONNECT_PW")
    return AccountConfig(name="work", host="mail.example.com", username="me", **keys)


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCER_TEST_CONNECT_PW", "s3cret")


def test_every_registered_adapter_loads_and_takes_its_settings() -> None:
    assert set(connect.ADAPTERS) == {"imap", "imap-target", "pop3", "smtp"}
    for name, entry in connect.ADAPTERS.items():
        adapter = connect.ADAPTERS.load(entry.adapter)
        settings = connect.ADAPTERS.load(entry.settings)
        assert adapter.__name__ in entry.adapter and settings.__name__ in entry.settings, name


def test_an_unknown_adapter_lists_the_known_ones() -> None:
    with pytest.raises(SyncerError) as caught:
        connect.build("nntp", {})
    assert caught.value.message == (
        "No adapter named 'nntp'; these exist: imap, imap-target, pop3, smtp."
    )


def test_imap_settings_come_from_the_account() -> None:
    config = account(port=1993, namespaces=["personal", "shared"], max_bytes_per_second=4096)
    source = connect.build("imap", connect.account_values(config))
    assert isinstance(source, IMAPSource)
    settings = source.settings
    assert (settings.host, settings.port, settings.security) == ("mail.example.com", 1993, "tls")
    assert (settings.username, settings.password, settings.account) == ("me", "s3cret", "work")
    assert settings.namespaces == ("personal", "shared")
    assert settings.max_bytes_per_second == 4096
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(source)


def test_pop3_settings_come_from_the_account() -> None:
    config = account(protocol="pop3", auth="apop", security="starttls")
    source = connect.build("pop3", connect.account_values(config))
    assert isinstance(source, POP3Source)
    assert (source.settings.port, source.settings.auth) == (110, "apop")


def test_the_wrong_protocol_is_refused_before_anything_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SYNCER_TEST_CONNECT_PW")  # reading it would be a ConfigError
    with pytest.raises(
        SyncerError, match="is a pop3 account, not IMAP; open it with open_maildrop"
    ):
        connect.open_source(account(protocol="pop3"))
    with pytest.raises(SyncerError, match="is a imap account, not POP3; open it with open_source"):
        connect.open_maildrop(account())
    with pytest.raises(UsageError, match="is a pop3 account; push needs an IMAP one"):
        connect.open_target(account(protocol="pop3"))


def test_an_unreadable_password_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCER_TEST_CONNECT_PW")
    with pytest.raises(ConfigError):
        connect.open_source(account())


def test_the_push_target_is_an_imap_target() -> None:
    target = connect.build("imap-target", connect.account_values(account()))
    assert isinstance(target, IMAPTarget)
    assert target.source.settings.account == "work"


def test_smtp_settings_and_relay() -> None:
    server = SMTPConfig(
        name="out", host="smtp.example.com", username="me", password_env="SYNCER_TEST_CONNECT_PW"
    )
    settings = connect.smtp_settings(server)
    assert (settings.port, settings.security, settings.label) == (587, "starttls", "out")
    assert settings.password == "s3cret"
    relay = connect.smtp_relay(server)
    assert relay.settings == settings and not relay.connected


def test_an_imap_account_imports_no_pop3_or_smtp_code() -> None:
    script = (
        "import sys\n"
        "from syncer import connect\n"
        "from syncer.config.schema import AccountConfig\n"
        "import syncer.sync.runner\n"
        "a = AccountConfig(name='w', host='h', username='u',"
        " password_env='SYNCER_TEST_CONNECT_PW')\n"
        "connect.build('imap', connect.account_values(a))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('syncer.sources.pop3', "
        "'syncer.smtp')))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
