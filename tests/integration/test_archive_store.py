"""ArchiveStore behaviour on SQLite and PostgreSQL, read as the specification of the store.

Why: the pipeline relies on these properties for "never lose mail" and
"incremental is the normal case": byte-exact storage, deduplication, idempotent
re-runs, cursors committed with the data they describe, flags and expunges
recorded without deleting anything, UIDVALIDITY resets handled by relinking.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from syncer.archive.store import ArchiveStore, Link
from syncer.errors import ArchiveError
from syncer.model import FlagState, FolderCursor, FolderStatus, RemoteMessage, header_end

ACCOUNT = "work"
WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


def raw_message(n: int, body: bytes = b"", *, crlf: bool = True) -> bytes:
    nl = b"\r\n" if crlf else b"\n"
    head = nl.join(
        [
            b"From: Alice <alice@example.org>",
            b"To: bob@example.org",
            b"Subject: message %d" % n,
            b"Message-ID: <msg-%d@example.org>" % n,
            b"Date: Fri, 17 May 2024 09:30:00 +0000",
        ]
    )
    return head + nl + nl + (body or b"Hello number %d." % n) + nl


def remote(
    uid: int, raw: bytes, *, flags: tuple[str, ...] = (), modseq: int | None = None
) -> RemoteMessage:
    return RemoteMessage(
        folder="INBOX",
        uid=uid,
        raw=raw,
        flags=flags,
        internaldate=WHEN,
        size=len(raw),
        modseq=modseq,
    )


@pytest.fixture
def store(archive_store: ArchiveStore) -> ArchiveStore:
    archive_store.ensure_account(ACCOUNT, "imap")
    return archive_store


def test_archive_batch_stores_byte_exact_blobs(store: ArchiveStore) -> None:
    raws = [
        raw_message(1),
        raw_message(2, crlf=False),
        b"",
        b"no header separator at all",
        bytes(range(256)) * 40,
        raw_message(3, b"\x00\xff binary \r\n\r\n" * 1000),
    ]
    batch = [remote(uid, raw, flags=("\\Seen",)) for uid, raw in enumerate(raws, start=1)]
    assert store.archive_batch(ACCOUNT, "INBOX", 42, batch, FolderCursor(42, 7)) == len(raws)
    for raw in raws:
        assert store.get_raw(hashlib.sha256(raw).hexdigest()) == raw
    listed = store.entries(ACCOUNT, "INBOX")
    assert [(uid, uv, sha) for uid, uv, sha, _, _ in listed] == [
        (uid, 42, hashlib.sha256(raw).hexdigest()) for uid, raw in enumerate(raws, start=1)
    ]
    assert all(flags == ("\\Seen",) and not gone for *_, flags, gone in listed)
    assert store.verify() == []


def test_identical_raw_in_two_folders_is_one_blob_and_one_message(store: ArchiveStore) -> None:
    raw = raw_message(1)
    assert store.archive_batch(ACCOUNT, "INBOX", 1, [remote(10, raw)], None) == 1
    assert store.archive_batch(ACCOUNT, "Archive", 5, [remote(99, raw)], None) == 1
    # And twice within one batch, under two UIDs.
    assert store.archive_batch(ACCOUNT, "Sent", 3, [remote(1, raw), remote(2, raw)], None) == 2
    totals = store.status().totals
    assert totals.blobs == 1
    assert totals.messages == 1
    assert totals.raw_bytes == len(raw)
    assert store.count_entries() == 4
    assert store.count_entries(ACCOUNT) == 4
    assert store.count_entries("nobody") == 0


def test_rerunning_a_batch_inserts_nothing(store: ArchiveStore) -> None:
    batch = [remote(uid, raw_message(uid)) for uid in range(1, 21)]
    assert store.archive_batch(ACCOUNT, "INBOX", 1, batch, FolderCursor(1, 21)) == 20
    before = store.status().totals
    assert store.archive_batch(ACCOUNT, "INBOX", 1, batch, FolderCursor(1, 21)) == 0
    # A re-run that overlaps (crash after half a batch) adds only the rest.
    more = batch[10:] + [remote(uid, raw_message(uid)) for uid in range(21, 26)]
    assert store.archive_batch(ACCOUNT, "INBOX", 1, more, FolderCursor(1, 26)) == 5
    after = store.status().totals
    assert after.blobs == before.blobs + 5
    assert store.count_entries() == 25


def test_batches_larger_than_one_statement_can_bind(store: ArchiveStore) -> None:
    batch = [remote(uid, raw_message(uid)) for uid in range(1, 1202)]
    assert store.archive_batch(ACCOUNT, "INBOX", 1, batch, FolderCursor(1, 1202)) == 1201
    assert len(store.live_uids(ACCOUNT, "INBOX", 1)) == 1201
    changes = [FlagState(uid, ("\\Seen",)) for uid in range(1, 1202)]
    assert store.update_flags(ACCOUNT, "INBOX", 1, changes, None) == 1201
    assert store.mark_gone(ACCOUNT, "INBOX", 1, range(1, 1202), None) == 1201


def test_cursor_is_committed_with_the_batch(store: ArchiveStore) -> None:
    assert store.folders(ACCOUNT) == {}
    store.archive_batch(
        ACCOUNT, "INBOX", 7, [remote(1, raw_message(1))], FolderCursor(7, 2, 100, 1)
    )
    record = store.folders(ACCOUNT)["INBOX"]
    assert record.cursor == FolderCursor(uidvalidity=7, uidnext=2, highestmodseq=100, messages=1)
    assert record.last_synced_at is not None and record.last_synced_at.tzinfo is not None


def test_a_failure_inside_the_transaction_leaves_neither_entries_nor_cursor(
    store: ArchiveStore,
) -> None:
    store.archive_batch(ACCOUNT, "INBOX", 7, [remote(1, raw_message(1))], FolderCursor(7, 2))

    def crash_on_cursor(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The cursor update is the last statement of the transaction: entries, messages
        # and blobs have been written by then.
        if statement.lstrip().upper().startswith("UPDATE FOLDERS"):
            raise RuntimeError("simulated crash before commit")

    event.listen(store.engine, "before_cursor_execute", crash_on_cursor)
    try:
        batch = [remote(uid, raw_message(uid)) for uid in range(2, 6)]
        with pytest.raises(RuntimeError, match="simulated crash"):
            store.archive_batch(ACCOUNT, "INBOX", 7, batch, FolderCursor(7, 6))
    finally:
        event.remove(store.engine, "before_cursor_execute", crash_on_cursor)

    assert store.live_uids(ACCOUNT, "INBOX", 7) == {1}
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(7, 2)
    assert store.status().totals.messages == 1
    # The re-run after the "crash" completes the batch.
    assert store.archive_batch(ACCOUNT, "INBOX", 7, batch, FolderCursor(7, 6)) == 4
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(7, 6)


def test_a_cursor_for_another_uidvalidity_is_refused(store: ArchiveStore) -> None:
    with pytest.raises(ArchiveError, match="UIDVALIDITY"):
        store.archive_batch(ACCOUNT, "INBOX", 7, [remote(1, raw_message(1))], FolderCursor(8, 2))
    assert store.count_entries() == 0


def test_unknown_account_is_refused_with_the_known_ones(store: ArchiveStore) -> None:
    with pytest.raises(
        ArchiveError, match=r"'home' is not in the archive \(known accounts: work\)"
    ):
        store.archive_batch("home", "INBOX", 1, [remote(1, raw_message(1))], None)
    assert store.live_uids("home", "INBOX", 1) == set()
    assert store.folders("home") == {}


def test_update_flags_counts_only_real_changes(store: ArchiveStore) -> None:
    batch = [
        remote(1, raw_message(1), flags=("\\Seen",), modseq=10),
        remote(2, raw_message(2), flags=("\\Flagged", "\\Seen"), modseq=10),
        remote(3, raw_message(3), modseq=10),
    ]
    store.archive_batch(ACCOUNT, "INBOX", 1, batch, FolderCursor(1, 4, 10))
    changes = [
        FlagState(1, ("\\Seen",), modseq=11),  # same flags, newer modseq: not counted
        FlagState(2, ("\\Seen", "\\Flagged"), modseq=None),  # same set, other order
        FlagState(3, ("$Forwarded", "\\Answered"), modseq=12),  # a real change
        FlagState(99, ("\\Seen",), modseq=13),  # unknown UID: ignored
    ]
    cursor = FolderCursor(1, 4, 13)
    assert store.update_flags(ACCOUNT, "INBOX", 1, changes, cursor) == 1
    assert store.entry_flags(ACCOUNT, "INBOX", 1) == {
        1: ("\\Seen",),
        2: ("\\Flagged", "\\Seen"),
        3: ("$Forwarded", "\\Answered"),
    }
    assert store.folders(ACCOUNT)["INBOX"].cursor == cursor
    assert store.update_flags(ACCOUNT, "INBOX", 1, changes, cursor) == 0
    assert store.update_flags(ACCOUNT, "INBOX", 1, [FlagState(3, ())], None) == 1
    assert store.entry_flags(ACCOUNT, "INBOX", 1)[3] == ()


def test_mark_gone_keeps_the_message(store: ArchiveStore) -> None:
    raws = {uid: raw_message(uid) for uid in (1, 2, 3)}
    store.archive_batch(ACCOUNT, "INBOX", 1, [remote(u, r) for u, r in raws.items()], None)
    assert store.mark_gone(ACCOUNT, "INBOX", 1, [2, 3, 77], FolderCursor(1, 4, None, 1)) == 2
    assert store.mark_gone(ACCOUNT, "INBOX", 1, iter([2]), None) == 0
    assert store.live_uids(ACCOUNT, "INBOX", 1) == {1}
    assert set(store.entry_flags(ACCOUNT, "INBOX", 1)) == {1}
    gone = {uid: g for uid, _, _, _, g in store.entries(ACCOUNT, "INBOX")}
    assert gone == {1: False, 2: True, 3: True}
    assert store.get_raw(hashlib.sha256(raws[2]).hexdigest()) == raws[2]
    assert store.status().totals.messages == 3
    assert store.status().accounts[ACCOUNT].messages == 1
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(1, 4, None, 1)


def test_uidvalidity_reset_closes_old_entries_and_relinks_bodies(store: ArchiveStore) -> None:
    raws = {uid: raw_message(uid) for uid in (1, 2, 3)}
    store.archive_batch(
        ACCOUNT, "INBOX", 100, [remote(u, r, flags=("\\Seen",)) for u, r in raws.items()], None
    )
    index = store.header_index(ACCOUNT, "INBOX")
    expected = {
        (len(raw), hashlib.sha256(raw[: header_end(raw)]).hexdigest()): hashlib.sha256(
            raw
        ).hexdigest()
        for raw in raws.values()
    }
    assert index == expected

    assert store.close_uidvalidity(ACCOUNT, "INBOX", 100) == 3
    assert store.close_uidvalidity(ACCOUNT, "INBOX", 100) == 0
    assert store.live_uids(ACCOUNT, "INBOX", 100) == set()

    links: list[Link] = [
        (uid + 10, hashlib.sha256(raw).hexdigest(), ("\\Seen", "\\Answered"), WHEN, 5, f"E{uid}")
        for uid, raw in raws.items()
    ]
    assert store.link_existing(ACCOUNT, "INBOX", 200, links) == 3
    assert store.link_existing(ACCOUNT, "INBOX", 200, links) == 0
    assert store.live_uids(ACCOUNT, "INBOX", 200) == {11, 12, 13}
    assert store.entry_flags(ACCOUNT, "INBOX", 200)[11] == ("\\Answered", "\\Seen")
    # Superseded entries still count for recognising bodies, and nothing was duplicated.
    assert store.header_index(ACCOUNT, "INBOX") == expected
    assert store.status().totals.blobs == 3
    assert store.count_entries() == 6
    # The server's stable ids recorded on linked entries find the bodies again, account-wide.
    assert store.emailid_index(ACCOUNT) == {
        f"E{uid}": hashlib.sha256(raw).hexdigest() for uid, raw in raws.items()
    }

    unknown = [(50, "0" * 64, (), None, None, None), *links]
    with pytest.raises(ArchiveError, match="not in the archive"):
        store.link_existing(ACCOUNT, "INBOX", 300, unknown)
    assert store.live_uids(ACCOUNT, "INBOX", 300) == set()


def test_folders_are_recorded_never_deleted(store: ArchiveStore) -> None:
    statuses = [
        FolderStatus(name="INBOX", display_name="INBOX", delimiter="/"),
        FolderStatus(
            name="&ANw-berweisungen",
            display_name="Überweisungen",
            delimiter="/",
            special_use=None,
            uidvalidity=9,
            uidnext=100,
            mailbox_id="M1",
        ),
        FolderStatus(name="Sent", display_name="Sent", delimiter="/", special_use="\\Sent"),
    ]
    store.upsert_folders(ACCOUNT, statuses)
    records = store.folders(ACCOUNT)
    assert set(records) == {"INBOX", "&ANw-berweisungen", "Sent"}
    umlaut = records["&ANw-berweisungen"]
    assert (umlaut.display_name, umlaut.mailbox_id, umlaut.deleted) == (
        "Überweisungen",
        "M1",
        False,
    )
    assert umlaut.cursor is None  # STATUS is not the archive's cursor
    assert records["Sent"].special_use == "\\Sent"

    store.archive_batch(ACCOUNT, "Sent", 4, [remote(1, raw_message(1))], FolderCursor(4, 2))
    store.mark_folder_deleted(ACCOUNT, "Sent")
    store.mark_folder_deleted(ACCOUNT, "Nope")  # unknown: ignored
    assert store.folders(ACCOUNT)["Sent"].deleted
    assert store.count_entries() == 1
    listed = {f.name: f for f in store.status().accounts[ACCOUNT].folders}
    assert listed["Sent"].deleted is True
    assert list(listed) == ["&ANw-berweisungen", "INBOX", "Sent"]  # code-point order

    store.upsert_folders(
        ACCOUNT, [FolderStatus(name="Sent", display_name="Gesendet", delimiter="/")]
    )
    sent = store.folders(ACCOUNT)["Sent"]
    assert (sent.deleted, sent.display_name, sent.cursor) == (False, "Gesendet", FolderCursor(4, 2))

    store.mark_folder_renamed(ACCOUNT, "&ANw-berweisungen", "Transfers")
    renamed = store.folders(ACCOUNT)["&ANw-berweisungen"]
    assert renamed.deleted and renamed.renamed_to == "Transfers"


def test_set_cursor_and_full_scan(store: ArchiveStore) -> None:
    scan = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    store.set_cursor(ACCOUNT, "INBOX", FolderCursor(3, 10, 55, 9))
    store.record_full_scan(ACCOUNT, "INBOX", scan)
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(3, 10, 55, 9, scan)
    store.set_cursor(ACCOUNT, "INBOX", FolderCursor(3, 11, 56, 10))
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(3, 11, 56, 10, scan)
    # An empty batch with a cursor still records it.
    assert store.archive_batch(ACCOUNT, "INBOX", 3, [], FolderCursor(3, 12, 57, 10)) == 0
    assert store.folders(ACCOUNT)["INBOX"].cursor == FolderCursor(3, 12, 57, 10, scan)


def test_runs_are_recorded(store: ArchiveStore) -> None:
    store.ensure_account("home", "pop3")
    store.start_run(ACCOUNT, "run-1")
    store.start_run("home", "run-2", kind="sync", worker="w1")
    store.finish_run("run-1", ok=True, error=None, new=3, flags_changed=2, expunged=1, bytes=1000)
    store.finish_run(
        "run-2", ok=False, error="login refused", new=0, flags_changed=0, expunged=0, bytes=0
    )
    runs = store.runs()
    assert [r.run_id for r in runs] == ["run-2", "run-1"]
    one = store.runs(ACCOUNT)
    assert len(one) == 1
    run = one[0]
    assert run.finished_at is not None and run.started_at <= run.finished_at
    assert run.seconds is not None and run.seconds >= 0
    assert isinstance(run.pid, int) and run.host
    ignored = ("started_at", "finished_at", "seconds", "pid", "host")
    assert {k: v for k, v in run.to_dict().items() if k not in ignored} == {
        "run_id": "run-1",
        "account": ACCOUNT,
        "kind": "sync",
        "status": "ok",
        "error": None,
        "new": 3,
        "flags_changed": 2,
        "expunged": 1,
        "bytes": 1000,
        "worker": None,
        "resume_at": None,
    }
    assert store.runs("home")[0].status == "failed"
    assert store.runs("home")[0].error == "login refused"
    assert store.runs(limit=1)[0].run_id == "run-2"
    with pytest.raises(ArchiveError, match="No run"):
        store.finish_run("nope", ok=True, error=None, new=0, flags_changed=0, expunged=0, bytes=0)
    with pytest.raises(ArchiveError):
        store.start_run(ACCOUNT, "run-1")


def test_status_is_json_serialisable(store: ArchiveStore) -> None:
    import json

    store.upsert_folders(ACCOUNT, [FolderStatus(name="INBOX", display_name="INBOX", delimiter="/")])
    store.archive_batch(ACCOUNT, "INBOX", 1, [remote(1, raw_message(1))], FolderCursor(1, 2))
    status = json.loads(json.dumps(store.status().to_dict()))
    assert status["blob_store"] == "db"
    assert status["accounts"][ACCOUNT]["protocol"] == "imap"
    assert status["accounts"][ACCOUNT]["folders"][0]["messages"] == 1
    assert status["accounts"][ACCOUNT]["last_synced_at"] is not None
    assert status["totals"]["stored_bytes"] > 0
    assert store.ensure_account(ACCOUNT, "imap") == store.ensure_account(ACCOUNT, "imap")


def test_get_raw_of_an_unknown_message(store: ArchiveStore) -> None:
    with pytest.raises(ArchiveError, match="No message with SHA-256"):
        store.get_raw("ab" * 32)


def test_concurrent_writers_sharing_bodies(store: ArchiveStore) -> None:
    import threading

    shared = [raw_message(n) for n in range(40)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def write(worker: int) -> None:
        # Each worker holds the shared bodies in its own order, plus some of its own.
        order = shared[worker::4] + shared[: worker * 10][::-1] + shared[worker * 10 :]
        own = [raw_message(1000 + worker * 100 + n) for n in range(10)]
        batch = [remote(uid, raw) for uid, raw in enumerate(order + own, start=1)]
        barrier.wait()
        try:
            store.archive_batch(ACCOUNT, f"folder-{worker}", 1, batch, None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_entries() == 4 * 60  # duplicates within a batch are separate UIDs
    assert store.status().totals.messages == 40 + 40
    assert store.verify() == []


def test_a_generation_moves_to_a_new_uidvalidity_on_both_databases(
    archive_store: ArchiveStore,
) -> None:
    """Issue 20 #7: the entries of a folder whose UIDVALIDITY changes on every run move
    (new UIDVALIDITY, UIDs and flags) in one statement per batch, on SQLite and
    PostgreSQL; the unmoved rest of the old generation is superseded."""
    archive_store.ensure_account(ACCOUNT, "imap")
    archive_store.upsert_folders(ACCOUNT, [FolderStatus("INBOX", "INBOX", "/")])
    messages = [remote(n, raw_message(n)) for n in range(1, 4)]
    archive_store.archive_batch(ACCOUNT, "INBOX", 7, messages, FolderCursor(7, 4))
    generation = archive_store.generation(ACCOUNT, "INBOX", 7)
    assert set(generation.headers) == {1, 2, 3} and generation.others == frozenset()
    when = datetime(2024, 5, 1, tzinfo=UTC)
    first = archive_store.move_generation(
        ACCOUNT,
        "INBOX",
        7,
        [(1, 11, ("\\Seen",), when, None), (2, 12, (), when, None)],
        FolderCursor(9, 13, None, 2),
    )
    assert first
    rows = archive_store.entries(ACCOUNT, "INBOX")
    assert [(uid, v, flags) for uid, v, _s, flags, _g in rows] == [
        (3, 7, ()),
        (11, 9, ("\\Seen",)),
        (12, 9, ()),
    ]
    assert archive_store.live_uids(ACCOUNT, "INBOX", 7) == set(), "the rest is superseded"
    assert archive_store.generation(ACCOUNT, "INBOX", 9).others == frozenset({7})
    record = archive_store.folders(ACCOUNT)["INBOX"]
    assert record.uidvalidity_unstable and record.cursor == FolderCursor(9, 13, None, 2)
    assert not archive_store.move_generation(ACCOUNT, "INBOX", 9, [], FolderCursor(10, 1))
    archive_store.set_uidvalidity_stable(ACCOUNT, "INBOX")
    assert not archive_store.folders(ACCOUNT)["INBOX"].uidvalidity_unstable
