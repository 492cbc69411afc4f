"""The POP3 pipeline against an in-memory maildrop and a real archive (SQLite and PostgreSQL).

``Maildrop`` (:class:`syncer.sources.memory.MemoryMaildrop`, checked against
Dovecot by tests/contract/test_maildrop.py) behaves like a POP3 server's
mailbox: each ``session()`` sees a snapshot numbered 1..n, DELE only marks,
and a successful QUIT removes what was marked; a session that ends any other
way removes nothing. Faults are injected per session: a truncated message, a
connection lost at the n-th RETR, a QUIT that fails. The archive is real, so
"the same transaction" and "verified before DELE" are checked on the database
itself.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, update

from syncer.archive.account import AccountArchive
from syncer.archive.models import blobs, pop3_seen
from syncer.archive.store import ArchiveStore
from syncer.errors import ArchiveError, SourceUnavailable
from syncer.model import RemoteMessage
from syncer.sources.memory import MaildropSession as Session
from syncer.sources.memory import MemoryMaildrop as Maildrop
from syncer.sync.maildrop import POP3Options, sync_maildrop

ACCOUNT = "home"
KEEP = POP3Options()
DELETE_NOW = POP3Options(delete_after_archive=True)

_numbers = itertools.count(1)


def message(subject: str = "", size: int = 300) -> bytes:
    n = next(_numbers)
    head = (
        f"From: a@example.com\r\nMessage-ID: <m{n}@example.com>\r\nSubject: {subject or n}\r\n\r\n"
    )
    return head.encode() + b"x" * size + b"\r\n"


def sync(store: ArchiveStore, source: Session, options: POP3Options = KEEP, **kw: Any) -> Any:
    return sync_maildrop(source, AccountArchive(store, ACCOUNT), options, **kw)


@pytest.fixture
def store(archive_store: ArchiveStore) -> ArchiveStore:
    archive_store.ensure_account(ACCOUNT, "pop3")
    return archive_store


def archived(store: ArchiveStore) -> list[bytes]:
    return sorted(store.get_raw(sha) for _uid, _v, sha, _f, _g in store.entries(ACCOUNT, "INBOX"))


def test_first_sync_archives_all_second_retrieves_nothing_third_gets_the_new_one(
    store: ArchiveStore,
) -> None:
    drop = Maildrop()
    drop.deliver(*(message() for _ in range(5)))
    first = drop.session()
    result = sync(store, first)
    assert (result.summary.folder, result.summary.new) == ("INBOX", 5)
    assert result.summary.bytes == sum(map(len, drop.raws()))
    assert archived(store) == sorted(drop.raws())

    second = drop.session()
    assert sync(store, second).summary.new == 0
    assert second.retrieved == []

    drop.deliver(new := message("late"))
    third = drop.session()
    assert sync(store, third).summary.new == 1
    assert third.retrieved == [6]
    assert new in archived(store)
    assert store.count_entries(ACCOUNT) == 6


def test_uidl_list_size_and_message_are_recorded_together(store: ArchiveStore) -> None:
    drop = Maildrop()
    (uidl,) = drop.deliver(raw := message())
    sync(store, drop.session())
    row = store.pop3_seen(ACCOUNT)[uidl]
    assert row.sha256 == hashlib.sha256(raw).hexdigest()
    assert row.size == len(raw)
    assert row.deleted_at is None


def test_a_batch_that_fails_to_commit_leaves_no_uidl_and_no_message(
    store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.archive_batch

    def failing(*args: Any, also: Callable[[Connection, list[int]], None], **kw: Any) -> int:
        def then_fail(conn: Connection, pks: list[int]) -> None:
            also(conn, pks)  # pop3_seen rows written...
            raise ArchiveError("disk full")  # ...and the transaction rolls back

        return real(*args, also=then_fail, **kw)

    monkeypatch.setattr(store, "archive_batch", failing)
    drop = Maildrop()
    drop.deliver(message(), message())
    with pytest.raises(ArchiveError, match="disk full"):
        sync(store, drop.session())
    assert store.pop3_seen(ACCOUNT) == {}
    assert store.count_entries(ACCOUNT) == 0
    assert store.status().totals.messages == 0


def test_batches_commit_as_they_arrive_and_a_lost_connection_keeps_whole_messages(
    store: ArchiveStore,
) -> None:
    drop = Maildrop()
    drop.deliver(*(message() for _ in range(7)))
    options = POP3Options(batch_messages=2)
    with pytest.raises(SourceUnavailable):
        sync(store, drop.session(lose_connection_at_retr=6), options)
    assert store.count_entries(ACCOUNT) == 5, "4 in full batches, 1 committed on the way out"

    retry = drop.session()
    assert sync(store, retry, options).summary.new == 2
    assert retry.retrieved == [6, 7]
    assert archived(store) == sorted(drop.raws())


def test_batches_are_bounded_by_bytes_too(store: ArchiveStore) -> None:
    drop = Maildrop()
    drop.deliver(*(message(size=40_000) for _ in range(5)))
    committed: list[int] = []
    real = store.archive_pop3

    def counting(account: str, messages: Sequence[RemoteMessage]) -> int:
        committed.append(len(messages))
        return real(account, messages)

    store.archive_pop3 = counting  # type: ignore[method-assign]
    sync(store, drop.session(), POP3Options(batch_messages=100, batch_bytes=64 * 1024))
    assert committed == [2, 2, 1]


def test_progress_sees_the_count_the_size_and_every_message(store: ArchiveStore) -> None:
    drop = Maildrop()
    drop.deliver(message(), message())
    events: list[tuple[str, int, int]] = []
    beats: list[int] = []

    class Recorder:
        def planned(self, messages: int, size: int | None) -> None:
            events.append(("planned", messages, size or 0))

        def folder_started(self, folder: str, messages: int, size: int) -> None:
            events.append((folder, messages, size))

        def advanced(self, messages: int, size: int) -> None:
            events.append(("+", messages, size))

    sync(store, drop.session(), progress=Recorder(), heartbeat=lambda: beats.append(1))
    sizes = [len(r) for r in drop.raws()]
    assert events == [
        ("planned", 2, sum(sizes)),  # POP3 LIST: the total before the first RETR
        ("INBOX", 2, sum(sizes)),
        ("+", 1, sizes[0]),
        ("+", 1, sizes[1]),
    ]
    assert beats, "the lease is renewed while downloading"


def test_leave_on_server_never_deletes(store: ArchiveStore) -> None:
    drop = Maildrop()
    drop.deliver(message(), message())
    session = drop.session()
    sync(store, session)
    assert session.marked == set() and not session.quit_ok
    assert len(drop.messages) == 2


def test_delete_after_archive_deletes_what_is_archived_and_verifies(store: ArchiveStore) -> None:
    drop = Maildrop()
    old = drop.deliver(message(), message(), message())
    sync(store, drop.session())  # archived, left on the server
    damaged = store.pop3_seen(ACCOUNT)[old[1]].sha256
    with store.engine.begin() as conn:
        conn.execute(update(blobs).where(blobs.c.sha256 == damaged).values(data=b"garbage"))
    drop.deliver(message())

    session = drop.session()
    result = sync(store, session, DELETE_NOW)

    assert session.quit_ok and session.marked == {1, 3, 4}
    assert [uidl for uidl, _ in drop.messages] == [old[1]], "the unverifiable copy stays"
    assert result.deleted == 3 and result.summary.expunged == 3
    assert result.summary.error is not None
    assert f"message 2 (UIDL {old[1]}) is left on the server" in result.summary.error
    assert "does not verify" in result.summary.error
    rows = store.pop3_seen(ACCOUNT)
    assert sorted(u for u, r in rows.items() if r.deleted_at is not None) == sorted(
        set(rows) - {old[1]}
    )


def test_delete_after_days_deletes_only_what_was_archived_long_enough_ago(
    store: ArchiveStore,
) -> None:
    drop = Maildrop()
    uidls = drop.deliver(message(), message(), message())
    sync(store, drop.session())
    # Time is controlled by writing seen_at back in the database: the archive's own
    # record of when each message was archived is what delete_after_days reads.
    with store.engine.begin() as conn:
        conn.execute(
            update(pop3_seen)
            .where(pop3_seen.c.uidl.in_(uidls[:2]))
            .values(seen_at=store.pop3_seen(ACCOUNT)[uidls[0]].seen_at - timedelta(days=10))
        )
    drop.deliver(message())

    session = drop.session()
    result = sync(store, session, POP3Options(delete_after_days=7))

    assert result.deleted == 2 and result.summary.error is None
    assert len(drop.messages) == 2 and drop.messages[0][0] == uidls[2]
    assert store.count_entries(ACCOUNT) == 4, "the archive keeps all of them"


def test_a_failed_quit_records_nothing_as_deleted_and_the_next_run_deletes(
    store: ArchiveStore,
) -> None:
    drop = Maildrop()
    drop.deliver(message(), message())
    with pytest.raises(SourceUnavailable):
        sync(store, drop.session(refuse_quit=True), DELETE_NOW)
    assert len(drop.messages) == 2
    assert all(r.deleted_at is None for r in store.pop3_seen(ACCOUNT).values())

    session = drop.session()
    result = sync(store, session, DELETE_NOW)
    assert session.retrieved == [] and result.deleted == 2
    assert drop.messages == []
    assert all(r.deleted_at is not None for r in store.pop3_seen(ACCOUNT).values())


def test_messages_gone_from_the_server_are_recorded_as_deleted(store: ArchiveStore) -> None:
    drop = Maildrop()
    uidls = drop.deliver(message(), message(), message())
    sync(store, drop.session())
    drop.messages.pop(1)  # another client deleted it (or our QUIT did, and we died after)
    result = sync(store, drop.session())
    assert result.summary.expunged == 1
    rows = store.pop3_seen(ACCOUNT)
    assert [u for u in uidls if rows[u].deleted_at is not None] == [uidls[1]]
    assert store.count_entries(ACCOUNT) == 3


def test_a_truncated_message_is_not_archived_and_nothing_is_deleted(store: ArchiveStore) -> None:
    drop = Maildrop()
    uidls = drop.deliver(message(), message(), message())
    session = drop.session(truncate=frozenset({2}))
    result = sync(store, session, DELETE_NOW)
    assert result.summary.new == 2
    assert result.summary.error is not None and "message 2" in result.summary.error
    assert session.marked == set() and not session.quit_ok
    assert len(drop.messages) == 3
    assert uidls[1] not in store.pop3_seen(ACCOUNT)

    healed = drop.session()
    assert sync(store, healed, DELETE_NOW).summary.error is None
    assert healed.retrieved == [2] and drop.messages == []


def test_without_uidl_messages_are_keyed_by_a_fingerprint_with_a_warning(
    store: ArchiveStore,
) -> None:
    drop = Maildrop(uidl=False)
    twin = message("twin")
    drop.deliver(twin, message(), twin)
    result = sync(store, drop.session())
    assert result.summary.new == 3
    (warning,) = result.warnings
    assert "has no UIDL" in warning and "less reliable" in warning
    keys = sorted(store.pop3_seen(ACCOUNT))
    assert all(k.startswith("top0 ") for k in keys)
    assert sum(k.endswith(" #2") for k in keys) == 1, "identical copies are told apart by order"

    again = drop.session()
    assert sync(store, again).summary.new == 0
    assert again.retrieved == [] and again.tops == 3


def test_duplicate_uidls_fall_back_to_fingerprints(store: ArchiveStore) -> None:
    drop = Maildrop()
    drop.deliver(message(), message())
    drop.messages[1] = (drop.messages[0][0], drop.messages[1][1])  # a server bug
    result = sync(store, drop.session())
    assert result.summary.new == 2
    assert "not unique" in result.warnings[0]


def test_a_message_recorded_as_deleted_that_comes_back_is_due_again(store: ArchiveStore) -> None:
    drop = Maildrop()
    uidls = drop.deliver(message(), message())
    sync(store, drop.session())
    kept = drop.messages.pop(0)
    sync(store, drop.session())  # recorded as deleted from the server
    assert store.pop3_seen(ACCOUNT)[uidls[0]].deleted_at is not None

    drop.messages.insert(0, kept)  # the mailbox was restored from a backup
    session = drop.session()
    result = sync(store, session, DELETE_NOW)
    assert session.retrieved == [], "already archived"
    assert result.deleted == 2 and drop.messages == []


def test_a_uidl_the_server_reuses_for_another_message_is_an_error_not_a_skip(
    store: ArchiveStore,
) -> None:
    drop = Maildrop()
    uidls = drop.deliver(message(), message())
    sync(store, drop.session())
    drop.messages[0] = (uidls[0], message("another message, same UIDL", size=900))

    session = drop.session()
    result = sync(store, session, DELETE_NOW)
    assert result.summary.error is not None
    assert f"message 1 (UIDL {uidls[0]}) has" in result.summary.error
    assert "the server seems to reuse UIDLs" in result.summary.error
    assert session.marked == set() and len(drop.messages) == 2, "nothing deleted"
