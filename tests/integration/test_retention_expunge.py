"""Retention frees server mailboxes -- against a real Dovecot, over IMAP and POP3 --
but only of messages whose archive copy exists and verifies.

Each test syncs a mailbox the way ``syncer sync`` does, tampers with one
archived blob, applies an ``expunge_server_after_days`` policy and then looks at
the server (as another client would) and at the archive's entries and audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from syncer.archive.blobs import compress
from syncer.archive.models import blobs, messages
from syncer.archive.store import ArchiveStore
from syncer.config.retention import RetentionPolicy
from syncer.config.schema import Config, parse_config
from syncer.retention.policy import apply_plan, build_plan
from syncer.sync.runner import sync_account
from tests.servers.dovecot import FULL_CAPABILITIES, DovecotServer, MailUser

pytestmark = pytest.mark.integration

PASSWORD_ENV = "TEST_RETENTION_PASSWORD"
OLD = datetime(2015, 3, 1, 12, tzinfo=UTC)
FREE_SERVER = [RetentionPolicy(name="free", match="", expunge_server_after_days=365)]


def message(n: int) -> bytes:
    return (
        f"From: a{n}@example.com\r\nMessage-ID: <x{n}@example.com>\r\nSubject: n{n}\r\n\r\n"
        f"body {n}\r\n"
    ).encode()


def config_for(
    server: DovecotServer, user: MailUser, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> Config:
    monkeypatch.setenv(PASSWORD_ENV, user.password)
    fields: dict[str, Any] = {
        "name": "acct",
        "protocol": protocol,
        "host": server.host,
        "port": server.ports.imaps if protocol == "imap" else server.ports.pop3s,
        "security": "tls",
        "ca_file": str(server.tls.ca),
        "username": user.name,
        "password_env": PASSWORD_ENV,
        "retries": 0,
    }
    return parse_config({"accounts": [fields], "retention": [r.snapshot() for r in FREE_SERVER]})


def tamper(store: ArchiveStore, message_id: str) -> None:
    """Replace the stored bytes of one message with other (well-formed) bytes."""
    with store.engine.begin() as conn:
        sha = conn.execute(
            select(messages.c.sha256).where(messages.c.message_id_header == message_id)
        ).scalar_one()
        conn.execute(
            update(blobs).where(blobs.c.sha256 == sha).values(data=compress(b"not the message"))
        )


def test_imap_expunges_only_verified_copies_and_never_what_others_marked_deleted(
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    archive_store: ArchiveStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = dovecot_user.name
    for n in (1, 2, 3):
        dovecot.append(user, "INBOX", message(n), internaldate=OLD)
    config = config_for(dovecot, dovecot_user, monkeypatch, "imap")
    assert sync_account(config.accounts[0], archive_store).ok
    # Another client marks a young message \Deleted without expunging it.
    other = dovecot.append(user, "INBOX", message(4), flags=[b"\\Deleted"])
    tamper(archive_store, "<x2@example.com>")

    plan = build_plan(archive_store, config.retention)
    assert plan.to_dict()["expunge"]["messages"] == 3
    result = apply_plan(archive_store, plan, config=config, actor="test")

    assert dovecot.uids(user, "INBOX") == [2, other], "2 does not verify; 4 was not ours"
    assert result.expunged == 2
    (problem,) = result.problems
    assert "UID 2" in problem and "does not verify" in problem
    gone = {uid: g for uid, _v, _s, _f, g in archive_store.entries("acct", "INBOX")}
    assert gone == {1: True, 2: False, 3: True}
    (event,) = [e for e in archive_store.audit_events() if e.kind == "retention.expunged"]
    assert event.details["uids"] == [1, 3] and event.details["policies"] == ["free"]
    assert archive_store.message_count() == 3, "expunging from the server keeps the archive"


def test_imap_without_uidplus_is_refused_rather_than_expunged_blanket(
    make_dovecot: Any, archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: DovecotServer = make_dovecot(
        capabilities=" ".join(c for c in FULL_CAPABILITIES.split() if c != "UIDPLUS")
    )
    user = server.add_user()
    server.append(user.name, "INBOX", message(1), internaldate=OLD)
    config = config_for(server, user, monkeypatch, "imap")
    assert sync_account(config.accounts[0], archive_store).ok

    result = apply_plan(archive_store, build_plan(archive_store, config.retention), config=config)

    assert result.expunged == 0
    (problem,) = result.problems
    assert "does not offer UIDPLUS" in problem and "nothing was removed" in problem
    assert server.uids(user.name, "INBOX") == [1]


def test_pop3_deletes_only_verified_copies(
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    archive_store: ArchiveStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = dovecot_user.name
    for n in (1, 2, 3):
        dovecot.append(user, "INBOX", message(n))
    config = config_for(dovecot, dovecot_user, monkeypatch, "pop3")
    assert sync_account(config.accounts[0], archive_store).ok
    tamper(archive_store, "<x3@example.com>")
    # POP3 messages have no INTERNALDATE: their age counts from the Date header, else
    # from when they were archived -- a year later, as far as retention is concerned.
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 2)

    plan = build_plan(archive_store, config.retention, now=later)
    result = apply_plan(archive_store, plan, config=config)

    left = [dovecot.fetch_raw(user, "INBOX", uid) for uid in dovecot.uids(user, "INBOX")]
    assert left == [message(3)]
    assert result.expunged == 2
    (problem,) = result.problems
    assert "does not verify" in problem
    seen = archive_store.pop3_seen("acct")
    assert sorted(row.deleted_at is not None for row in seen.values()) == [False, True, True]
    assert [e.kind for e in archive_store.audit_events()][-2:] == [
        "retention.expunged",
        "retention.run",
    ]
