"""`syncer sync` normalizes what it archived, unless `--no-normalize`; against Dovecot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mail_samples import mail
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.integration


def _syncer(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncer", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
    )


def test_sync_normalizes_unless_told_not_to(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    config = tmp_path / "syncer.toml"
    config.write_text(
        '[archive]\nurl = "sqlite:///archive.db"\n\n[[accounts]]\nname = "mail"\n'
        f'host = "{dovecot.host}"\nport = {dovecot.ports.imaps}\nsecurity = "tls"\n'
        f'ca_file = "{dovecot.tls.ca}"\nusername = "{dovecot_user.name}"\n'
        'password_env = "TEST_IMAP_PASSWORD"\n'
    )
    env = {**os.environ, "TEST_IMAP_PASSWORD": dovecot_user.password}
    assert _syncer(config, env, "init").returncode == 0
    dovecot.append(dovecot_user.name, "INBOX", mail("30-euc-kr-rfc2047"))

    raw_only = _syncer(config, env, "sync", "--no-normalize")
    assert raw_only.returncode == 0, raw_only.stderr
    status = json.loads(_syncer(config, env, "status", "--json").stdout)
    assert status["totals"]["awaiting_normalization"] == 1

    dovecot.append(dovecot_user.name, "INBOX", mail("87-auth-results-fail-phishing"))
    synced = _syncer(config, env, "sync")
    assert synced.returncode == 0, synced.stderr
    assert "Normalized 2 messages." in synced.stdout
    status = json.loads(_syncer(config, env, "status", "--json").stdout)
    assert status["totals"]["awaiting_normalization"] == 0

    shown = _syncer(config, env, "show", "1", "--json")
    assert json.loads(shown.stdout)["parse"]["status"] == "ok"
