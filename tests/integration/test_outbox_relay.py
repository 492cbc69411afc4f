"""The outbox against a real SMTP server: retries, permanent failures, and crashes.

The crash tests kill a real ``syncer`` process (SIGKILL, no clean-up of any
kind) at the two instants that matter: after a message was queued and before
it was sent, and after the server took the message but before the outbox could
record it as sent.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncer.archive.relay_views import OutboxEntry
from syncer.archive.store import ArchiveStore
from syncer.relay.digests import digest_config, run_digest
from syncer.relay.forwards import apply_forwards, select_rules
from syncer.relay.outbox import flush_outbox
from tests.fixtures_smtp import archive_mail, make_mail, relay_config, smtp_entry
from tests.servers.smtp import Received, SMTPTestServer

pytestmark = pytest.mark.integration

DIGEST = {
    "name": "daily",
    "schedule": "0 7 * * *",
    "smtp": "out",
    "from": "syncer@example.com",
    "to": ["me@example.com"],
}
OUTBOX = {"max_attempts": 3, "retry_first": "1m", "retry_max": "10m"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def queue_digest(store: ArchiveStore, config) -> None:  # type: ignore[no-untyped-def]
    archive_mail(store, [make_mail("news")])
    assert run_digest(store, digest_config(config, "daily")).queued


def only_row(store: ArchiveStore) -> OutboxEntry:
    [row] = store.outbox_list()
    return row


def test_a_4xx_reply_is_retried_with_backoff_then_sent(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[DIGEST], outbox=OUTBOX)
    queue_digest(archive_store, config)
    smtp_server.script("DATA", "451 4.3.0 Please try again later")
    clock = Clock()

    first = flush_outbox(archive_store, config, now=clock)
    row = only_row(archive_store)
    assert first.deferred == [row.id] and not first.ok
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451 4.3.0 Please try again later" in (row.last_error or "")
    assert row.next_attempt_at == clock.now + timedelta(minutes=1)

    assert flush_outbox(archive_store, config, now=clock).sent == []  # not due yet
    clock.now += timedelta(minutes=1)
    assert flush_outbox(archive_store, config, now=clock).sent == [row.id]
    assert only_row(archive_store).status == "sent"
    assert len(smtp_server.received) == 1


def test_a_5xx_reply_fails_for_good_with_the_reply_stored_until_retried_by_hand(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[DIGEST], outbox=OUTBOX)
    queue_digest(archive_store, config)
    smtp_server.script("DATA", "554 5.7.1 Rejected by content policy")

    assert flush_outbox(archive_store, config).failed
    row = only_row(archive_store)
    assert row.status == "failed"
    assert "554 5.7.1 Rejected by content policy" in (row.last_error or "")
    assert flush_outbox(archive_store, config).sent == []  # never retried on its own

    archive_store.outbox_retry(row.id, datetime.now(UTC))
    assert flush_outbox(archive_store, config).sent == [row.id]


def test_transient_failures_give_up_after_max_attempts(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[DIGEST], outbox=OUTBOX)
    queue_digest(archive_store, config)
    clock = Clock()
    waits = []
    for _ in range(3):
        smtp_server.script("MAIL", "421 4.7.0 Too busy")
        flush_outbox(archive_store, config, now=clock)
        row = only_row(archive_store)
        if row.next_attempt_at:
            waits.append(row.next_attempt_at - clock.now)
            clock.now = row.next_attempt_at
    assert waits == [timedelta(minutes=1), timedelta(minutes=2)]  # doubling
    assert (row.status, row.attempts) == ("failed", 3)
    assert "421 4.7.0 Too busy" in (row.last_error or "")


def test_an_unreachable_or_untrusted_server_defers_its_mail(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    # The certificate names "localhost"; dialled as 127.0.0.1 it must be refused.
    untrusted = smtp_entry(smtp_server, "starttls", host="127.0.0.1")
    config = relay_config(smtp_server, digests=[DIGEST], smtp=[untrusted], outbox=OUTBOX)
    queue_digest(archive_store, config)
    queue_digest(archive_store, config)  # a second period: two messages for one server

    result = flush_outbox(archive_store, config)

    assert len(result.deferred) == len(archive_store.outbox_list()) == 2
    for row in archive_store.outbox_list():
        assert "TLS certificate for 127.0.0.1 did not verify" in (row.last_error or "")
    assert smtp_server.received == []


# --------------------------------------------------------------------------- crashes


def write_config(tmp_path: Path, server: SMTPTestServer) -> Path:
    path = tmp_path / "syncer.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [archive]
            url = "sqlite:///archive.db"

            [[smtp]]
            name = "out"
            host = "localhost"
            port = {server.ports["plain"]}
            security = "plain"

            [[digests]]
            name = "daily"
            schedule = "0 7 * * *"
            smtp = "out"
            from = "syncer@example.com"
            to = ["me@example.com"]
            """
        )
    )
    return path


def syncer(config: Path, *args: str, **popen: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "syncer", "--config", str(config), *args],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def test_a_crash_between_queueing_and_sending_then_a_retry_sends_exactly_once(
    tmp_path: Path, smtp_server: SMTPTestServer
) -> None:
    config = write_config(tmp_path, smtp_server)
    with ArchiveStore.open(f"sqlite:///{tmp_path / 'archive.db'}", migrate=True) as store:
        archive_mail(store, [make_mail("news")])
    # A real process queues the digest (one transaction: outbox row + cursor) and is
    # killed before it sends anything.
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, signal
                from syncer.archive.store import ArchiveStore
                from syncer.config.schema import load_config
                from syncer.relay.digests import digest_config, run_digest
                config = load_config({str(config)!r})
                store = ArchiveStore.open(config.archive_url)
                assert run_digest(store, digest_config(config, "daily")).queued
                os.kill(os.getpid(), signal.SIGKILL)
                """
            ),
        ],
        capture_output=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert smtp_server.received == []

    again = syncer(config, "digest", "send", "daily")  # the period is covered: nothing new
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert b"nothing new matched; nothing sent" in out
    flush = syncer(config, "outbox", "flush")
    out, err = flush.communicate(timeout=60)
    assert flush.returncode == 0, err.decode()
    assert b"Outbox: 1 sent." in out
    assert len(smtp_server.received) == 1


def test_a_crash_after_the_server_took_the_message_duplicates_it_once_with_one_message_id(
    tmp_path: Path, smtp_server: SMTPTestServer
) -> None:
    config = write_config(tmp_path, smtp_server)
    with ArchiveStore.open(f"sqlite:///{tmp_path / 'archive.db'}", migrate=True) as store:
        archive_mail(store, [make_mail("news")])
        cfg = relay_config(smtp_server, digests=[DIGEST])
        assert run_digest(store, digest_config(cfg, "daily")).queued
    # The server takes the message, then kills the sender before its 250 goes out:
    # the outbox row is left 'sending'.
    flush = syncer(config, "outbox", "flush")

    def kill_sender(_got: Received) -> None:
        os.kill(flush.pid, signal.SIGKILL)

    smtp_server.handler.on_accept = kill_sender
    flush.communicate(timeout=60)
    assert flush.returncode == -signal.SIGKILL
    smtp_server.handler.on_accept = None
    with ArchiveStore.open(f"sqlite:///{tmp_path / 'archive.db'}") as store:
        assert only_row(store).status == "sending"

    retry = syncer(config, "outbox", "flush")  # takes over the dead process's lease
    out, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, err.decode()
    assert b"1 sent, 1 resent after an interrupted flush" in out

    first, second = smtp_server.received
    assert first.data == second.data
    ids = {email.message_from_bytes(got.data)["Message-ID"] for got in (first, second)}
    assert len(ids) == 1
    with ArchiveStore.open(f"sqlite:///{tmp_path / 'archive.db'}") as store:
        row = only_row(store)
        assert row.status == "sent" and row.message_id in ids


def test_a_sent_messages_body_goes_after_keep_sent_and_it_is_never_queued_again(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    rule = {
        "name": "all",
        "query": "",
        "smtp": "out",
        "from": "syncer@example.com",
        "to": ["me@new.example.net"],
    }
    config = relay_config(smtp_server, forwards=[rule], outbox={**OUTBOX, "keep_sent": "30d"})
    archive_mail(archive_store, [make_mail("invoice 8")])
    apply_forwards(archive_store, select_rules(config), backfill=True)
    clock = Clock()
    assert flush_outbox(archive_store, config, now=clock).sent
    assert (only_row(archive_store).size or 0) > 0  # kept for inspection at first

    clock.now += timedelta(days=29)
    assert flush_outbox(archive_store, config, now=clock).pruned == 0
    clock.now += timedelta(days=2)
    assert flush_outbox(archive_store, config, now=clock).pruned == 1
    row = only_row(archive_store)
    assert row.status == "sent" and row.size is None

    # The row and its key remain: a backfill over the whole archive queues nothing again.
    [run] = apply_forwards(archive_store, select_rules(config), backfill=True)
    assert run.queued == 0
    flush_outbox(archive_store, config, now=clock)
    assert len(archive_store.outbox_list()) == 1
    assert len(smtp_server.received) == 1
