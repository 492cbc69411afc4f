"""`syncer sync` and `syncer check` on a POP3 account, end to end, as a user runs them,
including runs killed with SIGKILL at exact points of the POP3 conversation.

The kills come from a :class:`~tests.servers.proxy.TripwireProxy` in front of
Dovecot's plain POP3 port: it SIGKILLs the syncer process just before it would
forward a given command, so the process dies

- after some RETRs but before their batch was committed (at the next RETR),
- after a committed batch, with the next one half retrieved,
- after some DELEs but before QUIT (at the next DELE, or at QUIT itself).

There are no test hooks in syncer itself. After each kill the next run (which
takes over the dead process's lease) must end with every message archived
exactly once and deleted from the server, and at no point may a message be
missing from both places.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.store import ArchiveStore
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.proxy import TripwireProxy

pytestmark = pytest.mark.integration

PASSWORD_ENV = "TEST_POP3_PASSWORD"


def message(n: int) -> bytes:
    head = f"From: a{n}@example.com\r\nMessage-ID: <crash{n}@example.com>\r\nSubject: n{n}\r\n\r\n"
    return head.encode() + b"0123456789abcdef" * (200 + 37 * n) + b"\r\n"


class Run:
    """A syncer configuration in ``tmp`` with one POP3 account, and a way to run the CLI."""

    def __init__(self, tmp: Path, server: DovecotServer, user: MailUser, **account: Any) -> None:
        self.tmp = tmp
        self.config = tmp / "syncer.toml"
        fields = {
            "name": "pop",
            "protocol": "pop3",
            "host": server.host,
            "port": server.ports.pop3s,
            "security": "tls",
            "ca_file": str(server.tls.ca),
            "username": user.name,
            "password_env": PASSWORD_ENV,
            **account,
        }
        body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
        self.config.write_text(f'[archive]\nurl = "sqlite:///archive.db"\n\n[[accounts]]\n{body}')
        self.env = {**os.environ, PASSWORD_ENV: user.password}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncer", "--config", str(self.config), *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env, capture_output=True, text=True, timeout=120
        )

    def store(self) -> ArchiveStore:
        return ArchiveStore.open(f"sqlite:///{self.tmp}/archive.db")


def count_on_server(server: DovecotServer, user: MailUser) -> int:
    out = server.doveadm("mailbox", "status", "-u", user.name, "-t", "messages", "INBOX")
    return int(out.split("=")[-1])


def test_sync_json_summary_check_and_status(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    for n in range(4):
        dovecot.append(dovecot_user.name, "INBOX", message(n))
    run = Run(tmp_path, dovecot, dovecot_user)
    assert run("init").returncode == 0

    first = run("sync", "--json")
    assert first.returncode == 0, first.stderr
    (summary,) = json.loads(first.stdout)
    assert summary["ok"] is True and summary["new"] == 4 and summary["warnings"] == []
    (inbox,) = summary["folders"]
    assert inbox["folder"] == "INBOX" and inbox["new"] == 4
    assert set(inbox) >= {"new", "flags_changed", "expunged", "bytes", "seconds"}

    assert json.loads(run("sync", "--json").stdout)[0]["new"] == 0

    check = run("check", "--json")
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)[0]["complete"] is True
    dovecot.append(dovecot_user.name, "INBOX", message(9))
    check = run("check", "--json")
    assert check.returncode == 1
    assert json.loads(check.stdout)[0]["folders"][0]["missing"] == 1

    status = json.loads(run("status", "--json").stdout)
    assert status["accounts"]["pop"]["protocol"] == "pop3"
    assert status["accounts"]["pop"]["messages"] == 4
    with run.store() as store:
        assert [r.status for r in store.runs("pop")] == ["ok", "ok"]


def test_folder_glob_that_excludes_inbox_skips_a_pop3_account(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    dovecot.append(dovecot_user.name, "INBOX", message(1))
    run = Run(tmp_path, dovecot, dovecot_user)
    assert run("init").returncode == 0
    (summary,) = json.loads(run("sync", "--folder", "Archive/*", "--json").stdout)
    assert summary["ok"] is True and summary["new"] == 0
    assert summary["folders"][0]["skipped"] is True


MESSAGES = 15
BATCH = 10


@pytest.mark.parametrize(
    ("command", "nth", "archived_at_kill"),
    [
        pytest.param(b"RETR", 4, 0, id="after-3-RETRs-before-any-commit"),
        pytest.param(b"RETR", 13, BATCH, id="after-a-commit-mid-next-batch"),
        pytest.param(b"DELE", 3, MESSAGES, id="after-2-DELEs-before-QUIT"),
        pytest.param(b"QUIT", 1, MESSAGES, id="after-every-DELE-at-QUIT"),
    ],
)
def test_sigkill_at_a_protocol_point_then_the_next_run_loses_nothing(
    tmp_path: Path,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    command: bytes,
    nth: int,
    archived_at_kill: int,
) -> None:
    sent = [message(n) for n in range(MESSAGES)]
    for raw in sent:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    with TripwireProxy("127.0.0.1", dovecot.ports.pop3) as proxy:
        run = Run(
            tmp_path,
            dovecot,
            dovecot_user,
            host="127.0.0.1",
            port=proxy.port,
            security="plain",
            allow_insecure=True,
            leave_on_server=False,
            delete_after_archive=True,
            batch_messages=BATCH,
            retries=0,
        )
        assert run("init").returncode == 0
        victim: list[subprocess.Popen[bytes]] = []
        proxy.trip_on(command, nth, lambda: os.kill(victim[0].pid, signal.SIGKILL))
        victim.append(
            subprocess.Popen(
                run.argv("sync"), env=run.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        assert victim[0].wait(timeout=60) == -signal.SIGKILL
        assert proxy.fired == 1

        # Right after the kill: nothing was deleted, and the archive holds exactly
        # what was committed.
        assert count_on_server(dovecot, dovecot_user) == MESSAGES
        with run.store() as store:
            assert store.count_entries("pop") == archived_at_kill
            assert all(row.deleted_at is None for row in store.pop3_seen("pop").values())

        proxy.disarm()
        final = run("sync", "--json")
    assert final.returncode == 0, final.stdout + final.stderr
    (summary,) = json.loads(final.stdout)
    assert summary["new"] == MESSAGES - archived_at_kill
    assert count_on_server(dovecot, dovecot_user) == 0
    with run.store() as store:
        archived = sorted(
            store.get_raw(sha) for _u, _v, sha, _f, _g in store.entries("pop", "INBOX")
        )
        assert archived == sorted(sent), "every message archived, exactly once"
        rows = store.pop3_seen("pop")
        assert len(rows) == MESSAGES and all(r.deleted_at is not None for r in rows.values())
        runs = store.runs("pop")
    assert runs[0].status == "ok"
    assert runs[1].status != "ok", "the killed run is not recorded as a success"
    verify = run("verify")
    assert verify.returncode == 0, verify.stdout
