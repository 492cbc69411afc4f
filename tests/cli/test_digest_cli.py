"""`syncer digest send`, `syncer forward run` and `syncer outbox ...` through the CLI."""

from __future__ import annotations

import json

import pytest

from syncer.archive.store import ArchiveStore
from tests.cli.conftest import Syncer
from tests.fixtures_smtp import archive_mail, make_mail
from tests.servers.smtp import SMTPTestServer

pytestmark = pytest.mark.integration


def configure(cli: Syncer, server: SMTPTestServer) -> ArchiveStore:
    cli.write_config(
        f"""
[archive]
url = "sqlite:///archive.db"

[[smtp]]
name = "out"
host = "localhost"
port = {server.ports["starttls"]}
ca_file = "{server.tls.ca}"
username = "relay"
password_env = "SMTP_PASSWORD"

[[digests]]
name = "morning"
query = "from:boss@example.com"
schedule = "0 7 * * *"
smtp = "out"
from = "Syncer <syncer@example.com>"
to = "me@example.com"

[[forwards]]
name = "invoices"
query = "subject:invoice"
smtp = "out"
from = "syncer@example.com"
to = "accounting@example.net"
mode = "redirect"
"""
    )
    return ArchiveStore.open(f"sqlite:///{cli.tmp_path / 'archive.db'}", migrate=True)


ENV = {"SMTP_PASSWORD": "s3cret-pw"}


def test_digest_send_dry_run_then_for_real(syncer_cli: Syncer, smtp_server: SMTPTestServer) -> None:
    with configure(syncer_cli, smtp_server) as store:
        [pk] = archive_mail(store, [make_mail("Quarterly <numbers>")])

    preview = syncer_cli("digest", "send", "morning", "--dry-run", env=ENV)
    assert preview.exit_code == 0, preview.output
    assert preview.stdout.startswith("Subject: morning: 1 new message\n")
    assert f"syncer show {pk}" in preview.stdout and "Quarterly <numbers>" in preview.stdout
    assert smtp_server.received == []

    sent = syncer_cli("digest", "send", "morning", env=ENV)
    assert sent.exit_code == 0, sent.output
    assert sent.stdout == "Digest 'morning': 1 message (1 listed). Outbox: 1 sent.\n"
    assert smtp_server.handler.logins == [("CRAM-MD5", "relay")]

    again = syncer_cli("digest", "send", "morning", env=ENV)
    assert again.stdout == "Digest 'morning': nothing new matched; nothing sent.\n"
    assert len(smtp_server.received) == 1


def test_an_unknown_digest_lists_the_configured_ones(
    syncer_cli: Syncer, smtp_server: SMTPTestServer
) -> None:
    configure(syncer_cli, smtp_server).close()
    result = syncer_cli("digest", "send", "evening")
    assert result.exit_code == 2
    assert "These are the configured digests: morning." in result.stderr


def test_forward_run_starts_then_forwards_and_the_outbox_shows_it(
    syncer_cli: Syncer, smtp_server: SMTPTestServer
) -> None:
    store = configure(syncer_cli, smtp_server)
    archive_mail(store, [make_mail("invoice 1")])

    first = syncer_cli("forward", "run", env=ENV)
    assert first.exit_code == 0, first.output
    assert "Forward 'invoices': starts with the messages archived after id 1" in first.stdout

    [pk] = archive_mail(store, [make_mail("invoice 2")])
    store.close()
    dry = syncer_cli("forward", "run", "invoices", "--dry-run", env=ENV)
    assert f"Forward 'invoices': would forward 1 message (ids {pk})." in dry.stdout
    done = syncer_cli("forward", "run", "--json", env=ENV)
    data = json.loads(done.stdout)
    assert data["rules"][0]["queued"] == 1 and len(data["flush"]["sent"]) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [("accounting@example.net",)]

    [row] = syncer_cli.json("outbox", "list")
    assert row["status"] == "sent" and row["idem_key"].startswith("forward:invoices:")
    refused = syncer_cli("outbox", "retry", str(row["id"]))
    assert refused.exit_code == 2
    assert f"Error: Outbox message {row['id']} is sent (at " in refused.stderr


def test_outbox_retry_and_drop_by_hand(syncer_cli: Syncer, smtp_server: SMTPTestServer) -> None:
    with configure(syncer_cli, smtp_server) as store:
        archive_mail(store, [make_mail("news")])
    smtp_server.script("DATA", "550 5.7.1 Not today")
    failed = syncer_cli("digest", "send", "morning", env=ENV)
    assert failed.exit_code == 1
    assert "550 5.7.1 Not today" in failed.stderr

    listed = syncer_cli("outbox", "list", "--status", "failed")
    assert "failed   digest   digest:morning:" in listed.stdout
    assert "550 5.7.1 Not today" in listed.stdout
    row_id = syncer_cli.json("outbox", "list")[0]["id"]

    retried = syncer_cli("outbox", "retry", str(row_id))
    assert retried.stdout.startswith(f"Outbox message {row_id} (digest:morning:")
    dropped = syncer_cli("outbox", "drop", str(row_id))
    assert dropped.stdout.endswith("dropped; it will not be sent.\n")
    flushed = syncer_cli("outbox", "flush", env=ENV)
    assert flushed.exit_code == 0 and flushed.stdout == "Outbox: 0 sent.\n"
    assert smtp_server.received == []

    missing = syncer_cli("outbox", "drop", "999")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: There is no outbox message 999.\n")


def test_run_once_queues_the_digest_and_the_outbox_job_sends_it(
    syncer_cli: Syncer, smtp_server: SMTPTestServer
) -> None:
    with configure(syncer_cli, smtp_server) as store:
        archive_mail(store, [make_mail("news")])
    jobs = {job["job"]: job for job in syncer_cli.json("status")["jobs"]}
    assert jobs["digest:morning"]["schedule"] == "cron 0 7 * * *"
    assert jobs["outbox"]["schedule"] == "every 1m"

    result = syncer_cli("run", "--once", env=ENV)

    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) == 1
    jobs = {job["job"]: job for job in syncer_cli.json("status")["jobs"]}
    assert jobs["digest:morning"]["outcome"] == "ok"
