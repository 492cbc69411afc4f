"""`syncer sync` and `syncer check` end to end against Dovecot: as a user runs them,
including a run killed with SIGKILL mid-sync and a connection cut mid-FETCH.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.admin_views import RunView
from syncer.archive.store import ArchiveStore
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.proxy import CuttingProxy

pytestmark = pytest.mark.integration


def _message(n: int, size: int = 200) -> bytes:
    return (
        (
            f"From: a{n}@example.com\r\nMessage-ID: <cli{n}@example.com>\r\nSubject: n{n}\r\n\r\n"
        ).encode()
        + (b"0123456789abcdef" * (size // 16 + 1))[:size]
        + b"\r\n"
    )


class Run:
    def __init__(self, tmp: Path, server: DovecotServer, user: MailUser, **account: Any) -> None:
        self.tmp, self.server, self.user = tmp, server, user
        self.config = tmp / "syncer.toml"
        fields = {
            "name": "mail",
            "host": server.host,
            "port": server.ports.imaps,
            "security": "tls",
            "ca_file": str(server.tls.ca),
            "username": user.name,
            "password_env": "TEST_IMAP_PASSWORD",
            **account,
        }
        body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
        self.config.write_text(f'[archive]\nurl = "sqlite:///archive.db"\n\n[[accounts]]\n{body}')
        self.env = {**os.environ, "TEST_IMAP_PASSWORD": user.password}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncer", "--config", str(self.config), *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True)

    def store(self) -> ArchiveStore:
        return ArchiveStore.open(f"sqlite:///{self.tmp}/archive.db")


@pytest.fixture
def run(tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser) -> Run:
    r = Run(tmp_path, dovecot, dovecot_user)
    assert r("init").returncode == 0
    return r


def test_sync_json_summary_then_check_proves_completeness(run: Run) -> None:
    user = run.user.name
    for n in range(5):
        run.server.append(user, "INBOX", _message(n))
    run.server.append(user, "Sent", _message(10))

    first = run("sync", "--json")
    assert first.returncode == 0, first.stderr
    (summary,) = json.loads(first.stdout)
    assert summary["ok"] is True and summary["new"] == 6
    folders = {f["folder"]: f for f in summary["folders"]}
    assert folders["INBOX"]["new"] == 5
    assert set(folders["INBOX"]) >= {"new", "flags_changed", "expunged", "bytes", "seconds"}

    second = json.loads(run("sync", "--json").stdout)[0]
    assert second["new"] == 0
    assert all(f["skipped"] for f in second["folders"])

    check = run("check", "--json")
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)[0]["complete"] is True

    # A message the archive does not have yet makes check fail and name it.
    uid = run.server.append(user, "INBOX", _message(99))
    check = run("check", "--json")
    assert check.returncode == 1
    (report,) = json.loads(check.stdout)
    (inbox,) = [f for f in report["folders"] if f["folder"] == "INBOX"]
    assert inbox["missing_uids"] == [uid]


def test_folder_glob_narrows_the_sync(run: Run) -> None:
    run.server.append(run.user.name, "INBOX", _message(1))
    run.server.append(run.user.name, "Archive/2024", _message(2))
    out = json.loads(run("sync", "--folder", "Archive/*", "--json").stdout)[0]
    assert [f["folder"] for f in out["folders"]] == ["Archive/2024"]


def test_a_second_run_on_a_leased_account_says_who_holds_it(run: Run) -> None:
    with run.store() as store:
        store.ensure_account("mail", "imap")
        store.acquire_lease("account:mail", "otherhost:4242", 600)
    result = run("sync")
    assert result.returncode == 1
    assert "otherhost:4242" in result.stdout + result.stderr


def test_wait_queues_behind_the_lease_holder_instead_of_failing(run: Run) -> None:
    run.server.append(run.user.name, "INBOX", _message(1))
    with run.store() as store:
        store.ensure_account("mail", "imap")
        store.acquire_lease("account:mail", "otherhost:4242", 600)
    started = time.monotonic()
    proc = subprocess.Popen(
        run.argv("sync", "--wait", "--json"), env=run.env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.5)
    assert proc.poll() is None, "the waiting run must not give up"
    with run.store() as store:
        store.release_lease("account:mail", "otherhost:4242")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert json.loads(out)[0]["new"] == 1
    assert time.monotonic() - started >= 1.5


def test_wrong_password_fails_that_account_clearly(run: Run) -> None:
    run.env["TEST_IMAP_PASSWORD"] = "wrong-password"
    result = run("sync")
    assert result.returncode == 1
    assert "login refused" in result.stdout.lower()
    assert "wrong-password" not in result.stdout + result.stderr


def test_certificate_for_another_host_is_refused(run: Run, tmp_path: Path) -> None:
    bad = Run(tmp_path, run.server, run.user, host="127.0.0.1")
    result = bad("sync")
    assert result.returncode == 1
    assert "certificate" in result.stdout.lower()


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_leaves_the_archive_equal_to_the_server(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    user = dovecot_user.name
    rng = random.Random(20261127)
    dovecot.seed(
        user,
        (
            (
                rng.choice(["INBOX", "Archive/2024", "Sent"]),
                _message(n, rng.randint(200, 40_000)),
                ("\\Seen",) if n % 3 else (),
                None,
            )
            for n in range(3000)
        ),
    )
    run = Run(tmp_path, dovecot, dovecot_user, batch_messages=40)
    assert run("init").returncode == 0
    kills = 0
    for delay in (0.4, 0.7, 1.0, 1.3):
        proc = subprocess.Popen(
            run.argv("sync"), env=run.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay * rng.uniform(0.8, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1, "the sync finished before any kill; make the mailbox larger"
    final = run("sync", "--json")
    assert final.returncode == 0, final.stderr
    check = run("check", "--json")
    assert check.returncode == 0, check.stdout
    assert all(
        f["missing"] == 0 and f["stale"] == 0 for f in json.loads(check.stdout)[0]["folders"]
    )
    verify = run("verify")
    assert verify.returncode == 0, verify.stdout
    with run.store() as store:
        assert store.count_entries("mail") == 3000, "every (folder, uid) present exactly once"


def test_connection_cut_mid_fetch_is_reported_and_the_next_run_completes(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    for n in range(40):
        dovecot.append(dovecot_user.name, "INBOX", _message(n, 50_000))
    with CuttingProxy("127.0.0.1", dovecot.ports.imap) as proxy:
        run = Run(
            tmp_path,
            dovecot,
            dovecot_user,
            host="127.0.0.1",
            port=proxy.port,
            security="plain",
            allow_insecure=True,
            retries=0,
            batch_messages=10,
        )
        assert run("init").returncode == 0
        proxy.cut_after = 900_000  # well inside the FETCH of the bodies
        failed = run("sync", "--json")
        assert proxy.cuts >= 1
        assert failed.returncode == 1
        (summary,) = json.loads(failed.stdout)
        assert summary["ok"] is False
        assert "connection" in summary["error"].lower()
        with run.store() as store:
            partial = store.count_entries("mail")
        assert 0 < partial < 40, "committed batches are kept"

        proxy.cut_after = None
        done = run("sync", "--json")
        assert done.returncode == 0, done.stdout
        assert json.loads(done.stdout)[0]["new"] == 40 - partial
        assert run("check").returncode == 0
        runs = _runs(run)
        assert [r.status for r in runs][:2] == ["ok", "failed"]


def _runs(run: Run) -> list[RunView]:
    with run.store() as store:
        return store.runs("mail")
