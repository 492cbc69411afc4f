"""Digests end to end: archive -> digest -> outbox -> real SMTP server (both databases)."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest

from syncer.archive.store import ArchiveStore
from syncer.errors import ArchiveError
from syncer.relay.digests import digest_config, run_digest
from syncer.relay.outbox import flush_outbox
from tests.fixtures_smtp import archive_mail, make_mail, relay_config
from tests.servers.smtp import SMTPTestServer

pytestmark = pytest.mark.integration

MORNING = {
    "name": "morning",
    "query": "from:boss@example.com",
    "schedule": "0 7 * * *",
    "smtp": "out",
    "from": "Syncer <syncer@example.com>",
    "envelope_from": "bounces@example.com",
    "to": ["me@example.com", "Deputy <deputy@example.com>"],
    "subject": "{{ name }}: {{ count }} new <b>bold</b>",
}


def parts(data: bytes) -> tuple[Message, str, str]:
    message = email.message_from_bytes(data)
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()  # type: ignore[union-attr]
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    return message, text, html


def test_a_digest_lists_what_matched_since_the_last_run_escaped_and_linked(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[MORNING])
    digest = digest_config(config, "morning")
    ids = archive_mail(
        archive_store,
        [
            make_mail("<script>alert('x')</script> Q3 & Q4"),
            make_mail("lunch?", sender="friend@example.org"),
            make_mail("budget"),
        ],
    )

    run = run_digest(archive_store, digest)
    result = flush_outbox(archive_store, config)

    assert run.count == 2 and run.queued and result.sent and result.ok
    [got] = smtp_server.received
    assert got.mail_from == "bounces@example.com"
    assert got.rcpt_tos == ("me@example.com", "deputy@example.com")
    message, text, html = parts(got.data)
    assert message["Subject"] == "morning: 2 new <b>bold</b>"  # shown as written
    assert message["Message-ID"] == run.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    # Each item is named by its archive id, with the command that shows it.
    for pk in (ids[0], ids[2]):
        assert f"[{pk}]" in text and f"syncer show {pk}" in text
        assert f"syncer show {pk}" in html
    assert f"syncer show {ids[1]}" not in text  # did not match the query
    # The subject of an archived message is shown, never executed.
    assert "Subject: <script>alert('x')</script> Q3 & Q4" in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Q3 &amp; Q4" in html
    assert "work/INBOX" in text

    # The next run covers only what was archived since.
    [later] = archive_mail(archive_store, [make_mail("board meeting")])
    smtp_server.reset()
    second = run_digest(archive_store, digest)
    flush_outbox(archive_store, config)
    assert second.after == run.until and second.count == 1
    _, text, _ = parts(smtp_server.received[0].data)
    assert f"[{later}]" in text and f"[{ids[0]}]" not in text


def test_an_empty_period_sends_nothing_unless_send_empty(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    quiet = {**MORNING, "name": "quiet", "query": "from:nobody@example.com"}
    chatty = {**quiet, "name": "chatty", "send_empty": True, "subject": "{{ name }}"}
    config = relay_config(smtp_server, digests=[quiet, chatty])
    archive_mail(archive_store, [make_mail("hello")])

    assert not run_digest(archive_store, digest_config(config, "quiet")).queued
    assert run_digest(archive_store, digest_config(config, "chatty")).queued
    assert run_digest(archive_store, digest_config(config, "chatty")).queued  # one per run
    flush_outbox(archive_store, config)

    assert len(smtp_server.received) == 2
    _, text, _ = parts(smtp_server.received[0].data)
    assert "Nothing new matched" in text


def test_max_items_lists_the_first_and_counts_the_rest(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[{**MORNING, "max_items": 2}])
    ids = sorted(archive_mail(archive_store, [make_mail(f"report {n}") for n in range(5)]))

    run = run_digest(archive_store, digest_config(config, "morning"))
    flush_outbox(archive_store, config)

    assert (run.count, run.listed) == (5, 2)
    _, text, html = parts(smtp_server.received[0].data)
    assert f"[{ids[1]}]" in text and f"[{ids[2]}]" not in text
    assert "... and 3 more" in text and "and 3 more" in html


def test_messages_awaiting_normalization_wait_for_the_next_period(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[MORNING])
    digest = digest_config(config, "morning")
    [first] = archive_mail(archive_store, [make_mail("one")])
    [pending] = archive_mail(archive_store, [make_mail("two")], normalize=False)

    run = run_digest(archive_store, digest)
    assert (run.count, run.until) == (1, first)  # "two" is not judged before it is parsed

    archive_mail(archive_store, [])  # normalizes what waits
    assert run_digest(archive_store, digest).count == 1
    assert archive_store.job_cursor("digest", "morning").cursor_pk == pending  # type: ignore[union-attr]


def test_a_first_run_looks_back_one_day_and_a_dry_run_changes_nothing(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[MORNING])
    digest = digest_config(config, "morning")
    archive_mail(archive_store, [make_mail("yesterday's news")])
    tomorrow = datetime.now(UTC) + timedelta(days=1, minutes=1)

    assert run_digest(archive_store, digest, now=tomorrow).count == 0  # older than a day

    preview = run_digest(
        archive_store,
        digest_config(relay_config(smtp_server, digests=[{**MORNING, "name": "new"}]), "new"),
        dry_run=True,
    )
    assert preview.count == 1 and not preview.queued and preview.rendered is not None
    assert archive_store.job_cursor("digest", "new") is None
    assert archive_store.outbox_list() == []


def test_a_period_is_queued_once_even_when_two_runs_race(
    archive_store: ArchiveStore, smtp_server: SMTPTestServer
) -> None:
    config = relay_config(smtp_server, digests=[MORNING])
    digest = digest_config(config, "morning")
    archive_mail(archive_store, [make_mail("one")])
    run_digest(archive_store, digest)
    archive_mail(archive_store, [make_mail("two")])
    seen = archive_store.job_cursor("digest", "morning")
    assert seen is not None

    run_digest(archive_store, digest)  # another process closes the period first ...
    with pytest.raises(ArchiveError, match="was run by someone else meanwhile"):
        archive_store.queue_outgoing(  # ... so this one, which read the old cursor, loses
            [],
            kind="digest",
            name="morning",
            cursor_pk=archive_store.highest_message_pk(),
            expect=seen.cursor_pk,
        )
    assert len(archive_store.outbox_list()) == 2
