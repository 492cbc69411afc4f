"""Legal holds protect mail before normalization, against real Dovecot (issue 16, items 1, 5).

The reproduction of the issue, as a user runs it: ``syncer sync --no-normalize``,
``syncer hold add h 'subject:r*'``, ``syncer retention apply``; the hold matches
nothing yet (holds see normalized fields), and retention used to delete and
expunge all of Sent. Now nothing a hold cannot see is deleted while a hold is
active. The POP3 half: ``delete_after_days`` used to DELE held messages and
leave no audit event. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.store import ArchiveStore
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.integration
PASSWORD_ENV = "TEST_HOLD_PASSWORD"


def _message(n: int, subject: str) -> bytes:
    return (
        f"From: me@example.com\r\nTo: you{n}@example.com\r\nMessage-ID: <h{n}@example.com>\r\n"
        f"Date: Mon, 02 Jan 2017 10:00:00 +0000\r\nSubject: {subject} {n}\r\n\r\nbody {n}\r\n"
    ).encode()


class _Run:
    def __init__(
        self, tmp: Path, url: str, server: DovecotServer, user: MailUser, **account: Any
    ) -> None:
        self.url = url
        self.config = tmp / "syncer.toml"
        fields = {
            "name": "mail",
            "host": server.host,
            "security": "tls",
            "ca_file": str(server.tls.ca),
            "username": user.name,
            "password_env": PASSWORD_ENV,
            **account,
        }
        body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
        policy = (
            '[[retention]]\nname = "purge"\nmatch = ""\ndelete_after_days = 0\n'
            "expunge_server_after_days = 0\n"
        )
        self.config.write_text(f'[archive]\nurl = "{url}"\n\n[[accounts]]\n{body}\n{policy}')
        self.env = {**os.environ, PASSWORD_ENV: user.password}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "syncer", "--config", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done


def _on_server(server: DovecotServer, user: MailUser, folder: str) -> int:
    out = server.doveadm("mailbox", "status", "-u", user.name, "-t", "messages", folder)
    return int(out.split("=")[-1])


def test_retention_deletes_nothing_a_hold_cannot_see_yet(
    tmp_path: Path, archive_url: str, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    dovecot.doveadm("mailbox", "create", "-u", dovecot_user.name, "Sent")
    for n in range(1, 10):
        dovecot.append(dovecot_user.name, "Sent", _message(n, "report"))
    run = _Run(tmp_path, archive_url, dovecot, dovecot_user, port=dovecot.ports.imaps)
    run("init")
    run("sync", "--no-normalize")
    run("hold", "add", "h", "subject:r*")

    plan = json.loads(run("retention", "plan", "--json").stdout)
    assert plan["delete"]["messages"] == 0 and plan["expunge"]["messages"] == 0
    assert plan["kept_unseen_by_holds"] == {"awaiting normalization": 9}
    assert "9 awaiting normalization" in run("retention", "plan").stdout
    run("retention", "apply")
    with ArchiveStore.open(run.url) as store:
        assert store.message_count() == 9
    assert _on_server(dovecot, dovecot_user, "Sent") == 9

    run("normalize")
    dovecot.append(dovecot_user.name, "Sent", _message(10, "other"))
    run("sync")  # normalizes what it archived
    plan = json.loads(run("retention", "plan", "--json").stdout)
    assert plan["kept_by_holds"] == 9 and plan["kept_unseen_by_holds"] == {}
    run("retention", "apply", "--force")
    with ArchiveStore.open(run.url) as store:
        assert store.message_count() == 9, "only the one no hold covers went"
    assert _on_server(dovecot, dovecot_user, "Sent") == 9


def test_pop3_delete_after_days_respects_holds_and_is_audited(
    tmp_path: Path, archive_url: str, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    for n in range(1, 4):
        dovecot.append(dovecot_user.name, "INBOX", _message(n, "report"))
    for n in range(4, 8):
        dovecot.append(dovecot_user.name, "INBOX", _message(n, "lunch"))
    run = _Run(
        tmp_path,
        archive_url,
        dovecot,
        dovecot_user,
        protocol="pop3",
        port=dovecot.ports.pop3s,
        leave_on_server=False,
        delete_after_days=0,
    )
    run("init")
    run("hold", "add", "h", "subject:r*")

    # The first run archives all 7; none is normalized yet when DELE would be sent.
    run("sync")
    assert _on_server(dovecot, dovecot_user, "INBOX") == 7
    # Now normalized: the 4 no hold covers go, the 3 held ones stay.
    run("sync")
    assert _on_server(dovecot, dovecot_user, "INBOX") == 3
    with ArchiveStore.open(run.url) as store:
        events = [e for e in store.audit_events() if e.kind == "pop3.deleted"]
        assert store.audit_verify().ok
    (event,) = events
    details = event.details
    assert details["account"] == "mail" and len(details["uidls"]) == 4
    assert details["rule"] == "delete_after_days = 0"
