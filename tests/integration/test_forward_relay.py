"""Forward rules end to end: archive -> rules -> outbox -> real SMTP server (both databases)."""

from __future__ import annotations

import email
import re

import pytest

from syncer.archive.store import ArchiveStore
from syncer.relay.compose import MARKER
from syncer.relay.forwards import apply_forwards, select_rules
from syncer.relay.outbox import flush_outbox
from tests.fixtures_smtp import archive_mail, make_mail, relay_config
from tests.servers.smtp import SMTPTestServer

pytestmark = pytest.mark.integration

INVOICES = {
    "name": "invoices",
    "query": "subject:invoice",
    "smtp": "out",
    "from": "Syncer <syncer@example.com>",
    "envelope_from": "bounces@example.com",
    "to": ["accounting@example.net"],
}
MIGRATE = {
    "name": "migrate",
    "query": "",
    "smtp": "out",
    "from": "me@old.example.com",
    "to": "me@new.example.net",
    "mode": "redirect",
}


def start_rules(store: ArchiveStore, config) -> None:  # type: ignore[no-untyped-def]
    """First sight of the rules: they start after what the archive holds now."""
    runs = apply_forwards(store, select_rules(config))
    assert all(run.started for run in runs)


def test_redirect_sends_the_original_bytes_after_the_resent_headers(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, forwards=[MIGRATE])
    start_rules(archive_store, config)
    original = make_mail("moving house", body="line one\r\n.line with a dot\r\nline three")
    archive_mail(archive_store, [original])

    apply_forwards(archive_store, select_rules(config))
    assert flush_outbox(archive_store, config).ok

    [got] = smtp_server.received
    assert got.mail_from == "me@old.example.com" and got.rcpt_tos == ("me@new.example.net",)
    head, original_again = got.data[: -len(original)], got.data[-len(original) :]
    assert original_again == original  # byte for byte
    names = [line.split(b":")[0] for line in re.split(rb"\r\n(?![ \t])", head.rstrip(b"\r\n"))]
    assert names == [
        b"Resent-Date",
        b"Resent-From",
        b"Resent-To",
        b"Resent-Message-ID",
        MARKER.encode(),
    ]
    assert b"Resent-To: me@new.example.net\r\n" in head


def test_attach_wraps_the_original_as_message_rfc822(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, forwards=[INVOICES])
    start_rules(archive_store, config)
    original = make_mail("Invoice 2026-11", sender="vendor@example.org")
    archive_mail(archive_store, [original, make_mail("lunch")])

    [run] = apply_forwards(archive_store, select_rules(config))
    flush_outbox(archive_store, config)

    assert len(run.ids) == 1
    [got] = smtp_server.received
    assert got.mail_from == "bounces@example.com"
    assert got.rcpt_tos == ("accounting@example.net",)
    message = email.message_from_bytes(got.data)
    assert message["From"] == "Syncer <syncer@example.com>"
    assert message["Subject"] == "Fwd: Invoice 2026-11"
    assert message["Auto-Submitted"] == "auto-forwarded"
    assert message[MARKER] == "invoices"
    assert [p.get_content_type() for p in message.walk()][:3] == [
        "multipart/mixed",
        "text/plain",
        "message/rfc822",
    ]
    # The attached original is the archived bytes, unchanged, between the part's
    # headers and the closing delimiter.
    boundary = message.get_boundary()
    assert boundary is not None
    attached = got.data.split(b"Content-Transfer-Encoding: 7bit\r\n\r\n")[-1]
    assert attached == original + f"\r\n--{boundary}--\r\n".encode()


def test_a_message_matching_two_rules_goes_to_both_and_to_each_once(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, forwards=[INVOICES, MIGRATE])
    start_rules(archive_store, config)
    [pk] = archive_mail(archive_store, [make_mail("invoice 7")])

    for _ in range(2):
        runs = apply_forwards(archive_store, select_rules(config))
        flush_outbox(archive_store, config)
    apply_forwards(archive_store, select_rules(config), backfill=True)  # the whole archive
    flush_outbox(archive_store, config)

    assert sorted(r.rcpt_tos for r in smtp_server.received) == [
        ("accounting@example.net",),
        ("me@new.example.net",),
    ]
    assert [run.ids for run in runs] == [[], []]  # the second pass found nothing new
    assert {row.idem_key.rsplit(":", 1)[0] for row in archive_store.outbox_list()} == {
        "forward:invoices",
        "forward:migrate",
    }
    assert pk


def test_a_forwarded_message_that_comes_back_is_not_forwarded_again(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    # The destination of "migrate" is itself archived, and "invoices" would match too.
    config = relay_config(smtp_server, forwards=[MIGRATE, INVOICES])
    start_rules(archive_store, config)
    archive_mail(archive_store, [make_mail("invoice 8")])
    apply_forwards(archive_store, select_rules(config))
    flush_outbox(archive_store, config)
    came_back = [got.data for got in smtp_server.received]
    assert len(came_back) == 2  # one redirect, one attach
    smtp_server.reset()

    back_ids = archive_mail(archive_store, came_back)
    runs = apply_forwards(archive_store, select_rules(config))
    flush_outbox(archive_store, config)

    assert smtp_server.received == []
    assert all(sorted(run.looped) == sorted(back_ids) for run in runs)


def test_a_new_rule_starts_now_and_backfill_covers_the_back_catalogue(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    old = archive_mail(archive_store, [make_mail("invoice 1"), make_mail("invoice 2")])
    config = relay_config(smtp_server, forwards=[INVOICES])

    [first] = apply_forwards(archive_store, select_rules(config))
    assert first.started and first.until == max(old)
    [dry] = apply_forwards(archive_store, select_rules(config), backfill=True, dry_run=True)
    assert sorted(dry.ids) == sorted(old) and archive_store.outbox_list() == []

    [backfill] = apply_forwards(archive_store, select_rules(config), backfill=True)
    flush_outbox(archive_store, config)
    assert backfill.queued == 2 and len(smtp_server.received) == 2
