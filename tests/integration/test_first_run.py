"""A new user's first runs against Dovecot: the dry run tells the truth and changes nothing,
and a long sync is never silent (progress events off a terminal, a bar with ETA on one)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from tests.corpus import generate
from tests.integration.test_sync_cli import Run, _message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser) -> Run:
    """An account on Dovecot and a configuration; no archive yet (no `syncer init`)."""
    run = Run(tmp_path, dovecot, dovecot_user)
    with run.config.open("a") as f:
        f.write('[accounts.folders]\nexclude = ["Trash"]\n')
    return run


def _seed_corpus(run: Run, count: int, size_profile: str = "small") -> list[bytes]:
    corpus = list(generate(count, seed=19, size_profile=size_profile))  # type: ignore[arg-type]
    run.server.seed(run.user.name, ((m.folder, m.raw, m.flags, m.internaldate) for m in corpus))
    return [m.raw for m in corpus]


def _digest(path: Path) -> str:
    """The archive's bytes: the database and its write-ahead log."""
    digest = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    digest.update(wal.read_bytes() if wal.exists() else b"")
    return digest.hexdigest()


def test_the_dry_run_counts_what_the_sync_archives_and_changes_nothing(fresh: Run) -> None:
    raws = _seed_corpus(fresh, 120)
    for n in range(3):
        fresh.server.append(fresh.user.name, "Trash", _message(n))
    archive = fresh.tmp / "archive.db"

    dry = fresh("sync", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    (plan,) = json.loads(dry.stdout)
    assert not archive.exists(), "a dry run creates no archive"
    folders = {f["name"]: f for f in plan["folders"]}
    assert folders["Trash"]["excluded"] == "exclude 'Trash'"
    assert folders["Trash"]["messages"] == 3
    assert (plan["new_messages"], plan["new_bytes"]) == (len(raws), sum(map(len, raws)))
    human = fresh("sync", "--dry-run")
    assert f"first sync: {len(raws):,} messages" in human.stdout
    assert "skip (exclude 'Trash')" in human.stdout

    first = fresh("sync", "--json", "--no-normalize")
    assert first.returncode == 0, first.stderr
    assert '"event": "archive.created"' in first.stderr
    (summary,) = json.loads(first.stdout)
    assert (summary["new"], summary["bytes"]) == (plan["new_messages"], plan["new_bytes"])

    for n in range(5):
        fresh.server.append(fresh.user.name, "INBOX", _message(100 + n, 500))
    before = _digest(archive)
    again = fresh("sync", "--dry-run", "--json")
    assert again.returncode == 0, again.stderr
    (plan2,) = json.loads(again.stdout)
    assert _digest(archive) == before, "the dry run wrote nothing to the archive"
    assert plan2["new_messages"] == 5 and plan2["first_sync"] is False
    second = fresh("sync", "--json", "--no-normalize")
    assert json.loads(second.stdout)[0]["new"] == 5


def test_a_dry_run_of_an_account_that_does_not_answer_exits_1(fresh: Run) -> None:
    text = fresh.config.read_text().replace(f"port = {fresh.server.ports.imaps}", "port = 1")
    fresh.config.write_text(text)
    result = fresh("sync", "--dry-run")
    assert result.returncode == 1
    assert "mail: failed" in result.stdout


def test_off_a_terminal_a_sync_logs_progress_with_totals_rate_and_eta(fresh: Run) -> None:
    raws = _seed_corpus(fresh, 400, "realistic")
    with fresh.config.open("a") as f:
        f.write('\n[logging]\nprogress_every = "0.2s"\n')
    text = fresh.config.read_text()
    # [logging] must come before the account's tables: move it to the top.
    body, _, logging = text.partition("\n[logging]\n")
    fresh.config.write_text(f"[logging]\n{logging}\n{body}")
    stderr_file = fresh.tmp / "stderr.log"
    with stderr_file.open("w") as err:
        result = subprocess.run(
            fresh.argv("sync", "--no-normalize"), env=fresh.env, stdout=subprocess.PIPE, stderr=err
        )
    assert result.returncode == 0, stderr_file.read_text()
    events = [json.loads(line) for line in stderr_file.read_text().splitlines() if line]
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) >= 2, events
    last = progress[-1]
    assert last["messages_total"] == len(raws)
    assert last["bytes_total"] == sum(map(len, raws))  # STATUS=SIZE, before any download
    assert last["messages"] == len(raws)
    assert all(
        {"messages_per_second", "bytes_per_second", "eta_seconds", "folder"} <= set(e)
        for e in progress
    )
    assert any(e["eta_seconds"] is not None for e in progress)
    assert not [e for e in events if e["event"] not in ("progress",) and e["level"] == "info"], (
        "info lines stay off stderr unless asked"
    )


def test_on_a_terminal_a_sync_shows_an_overall_bar_with_eta(fresh: Run) -> None:
    _seed_corpus(fresh, 300, "realistic")
    primary, secondary = pty.openpty()
    env = {**fresh.env, "TERM": "xterm-256color", "COLUMNS": "160"}
    process = subprocess.Popen(
        fresh.argv("sync", "--no-normalize"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert process.wait(60) == 0
    text = screen.decode(errors="replace")
    assert "Syncing" in text and "ETA" in text and "/300 msgs" in text, text[-2000:]


def test_a_pop3_dry_run_says_what_would_be_deleted_and_deletes_nothing(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    from tests.integration.test_pop3_cli import Run as POP3Run
    from tests.integration.test_pop3_cli import message as pop3_message

    run = POP3Run(tmp_path, dovecot, dovecot_user, leave_on_server=False, delete_after_days=30)
    raws = [pop3_message(n) for n in range(4)]
    for raw in raws:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    dry = run("sync", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    (plan,) = json.loads(dry.stdout)
    assert (plan["new_messages"], plan["new_bytes"]) == (4, sum(map(len, raws)))
    assert plan["deletions"][0] == "would delete 0 message(s) archived more than 30 days ago"
    assert plan["deletions"][-1].startswith("the 4 new message(s) on or after ")
    assert len(dovecot.uids(dovecot_user.name, "INBOX")) == 4
    synced = run("sync", "--json", "--no-normalize")
    (summary,) = json.loads(synced.stdout)
    assert (summary["new"], summary["bytes"]) == (plan["new_messages"], plan["new_bytes"])
    human = run("sync", "--dry-run")
    assert "pop (pop3): next sync: 0 messages" in human.stdout
    assert "next deletion on " in human.stdout and "(4 waiting)" in human.stdout
