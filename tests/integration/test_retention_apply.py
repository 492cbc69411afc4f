"""Retention plans and their application, on SQLite and PostgreSQL.

Messages are archived the way a sync archives them (``archive_batch``, with
INTERNALDATEs in the past), policies select them with the real query language,
and each test looks at what is left: messages, derived rows, blobs (rows and
files), the audit trail, and ``verify``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from syncer.archive.models import (
    addresses,
    blobs,
    entries,
    message_texts,
    messages,
    outbox,
    pop3_seen,
)
from syncer.archive.store import ArchiveStore
from syncer.archive.store_retention import ServerCopy
from syncer.config.retention import RetentionPolicy
from syncer.errors import UsageError
from syncer.model import RemoteMessage
from syncer.retention.expunge import ExpungeOutcome
from syncer.retention.policy import RetentionRefused, apply_plan, build_plan
from syncer.sync.normalize import normalize_pending

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def raw_message(n: int, subject: str = "hello") -> bytes:
    return (
        f"From: a{n}@example.com\r\nTo: b@example.com\r\nMessage-ID: <m{n}@example.com>\r\n"
        f"Subject: {subject} {n}\r\n\r\nbody of message {n}\r\n"
    ).encode()


def archive(
    store: ArchiveStore,
    folder: str,
    items: list[tuple[int, datetime]],
    *,
    account: str = "work",
    uidvalidity: int = 7,
) -> None:
    """Archive message ``n`` with INTERNALDATE ``when`` at UID ``n`` of ``folder``."""
    store.ensure_account(account, "imap")
    batch = [
        RemoteMessage(folder=folder, uid=n, raw=raw_message(n), internaldate=when)
        for n, when in items
    ]
    store.archive_batch(account, folder, uidvalidity, batch, None)


def policy(name: str, match: str = "", **periods: int) -> RetentionPolicy:
    return RetentionPolicy(name=name, match=match, **periods)


def subjects_left(store: ArchiveStore) -> set[int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(messages.c.message_id_header)).scalars()
        return {int(mid[2:].split("@")[0]) for mid in rows}


def count(store: ArchiveStore, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def fs_store(archive_url: str, tmp_path: Path) -> Iterator[ArchiveStore]:
    store = ArchiveStore.open(archive_url, f"fs:{tmp_path / 'blobs'}", migrate=True)
    try:
        yield store
    finally:
        store.close()


def test_apply_does_exactly_what_the_plan_says_and_leaves_nothing_behind(
    fs_store: ArchiveStore, tmp_path: Path
) -> None:
    store = fs_store
    archive(store, "INBOX", [(1, days_ago(10)), (2, days_ago(400)), (3, days_ago(800))])
    archive(store, "Legal", [(4, days_ago(400)), (5, days_ago(4000))])
    archive(store, "Old", [(6, days_ago(40)), (7, days_ago(5))])
    store.mark_gone("work", "Old", 7, [6, 7], None)
    # A POP3 copy of message 3 (its UIDL row must survive, unlinked).
    with store.engine.begin() as conn:
        account_id = store.ensure_account("pop", "pop3")
        pk3 = conn.execute(
            select(messages.c.id).where(messages.c.message_id_header == "<m3@example.com>")
        ).scalar_one()
        conn.execute(pop3_seen.insert().values(account_id=account_id, uidl="u3", message_pk=pk3))
    policies = [
        policy("mirror", "is:gone", delete_after_days=30),
        policy("yearly", "folder:INBOX OR folder:Legal", delete_after_days=365),
        policy("legal", "folder:Legal", keep_min_days=3650),
    ]
    files_before = sorted(p.name for p in (tmp_path / "blobs").rglob("*.zst"))
    assert len(files_before) == 7
    normalize_pending(store, workers=0)  # addresses, texts and search index rows too
    assert store.count_messages("body") == 7

    plan = build_plan(store, policies, now=NOW)
    data = plan.to_dict()
    assert data["delete"]["messages"] == 4
    assert [p["delete"]["messages"] for p in data["policies"]] == [1, 3, 0]
    assert data["kept_by_floors"] == 1, "message 4 is a year old, but Legal keeps 10 years"
    planned = {s["sha256"] for p in data["policies"] for s in p["sample"] if s["delete"]}

    result = apply_plan(store, plan, force=True)
    assert subjects_left(store) == {1, 4, 7}
    assert result.deleted == 4
    assert set(result.deleted_sha256) == planned
    # Everything derived went with the messages; blobs (rows and files) too.
    assert count(store, entries) == 3
    assert count(store, blobs) == 3
    assert count(store, addresses) == 6 and count(store, message_texts) == 3
    assert store.count_messages("body") == 3, "the search index forgot them"
    assert len(list((tmp_path / "blobs").rglob("*.zst"))) == 3
    with store.engine.connect() as conn:
        assert conn.execute(select(pop3_seen.c.message_pk)).scalars().all() == [None]
    assert store.verify() == []
    # The audit trail proves what went: every deleted SHA-256, per policy.
    events = store.audit_events()
    deleted = [e for e in events if e.kind == "retention.deleted"]
    assert {sha for e in deleted for sha in e.details["sha256"]} == planned
    assert {e.subject for e in deleted} == {"mirror", "yearly"}
    assert events[-1].kind == "retention.run"
    assert store.audit_verify().ok
    # A second run finds nothing more to do.
    assert build_plan(store, policies, now=NOW).delete_messages == 0


def test_a_floor_beats_a_delete_and_the_longest_keep_wins(archive_store: ArchiveStore) -> None:
    store = archive_store
    archive(store, "INBOX", [(1, days_ago(100)), (2, days_ago(500)), (3, days_ago(900))])
    policies = [
        policy("short", "", delete_after_days=30),
        policy("long", "folder:INBOX", delete_after_days=400),
        policy("floor", "", keep_min_days=600),
    ]
    plan = build_plan(store, policies, now=NOW)
    assert [len(p.delete) for p in plan.policies] == [0, 1, 0]
    assert plan.floored == 1  # message 2: due after 400 days, but the floor is 600
    apply_plan(store, plan, force=True)
    assert subjects_left(store) == {1, 2}


def test_holds_beat_everything_including_messages_archived_after_the_hold(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    store.add_hold("case-17", "folder:Case", "litigation", actor="test")
    archive(store, "Case", [(1, days_ago(5000)), (2, days_ago(10))])
    archive(store, "INBOX", [(3, days_ago(5000))])
    normalize_pending(store, workers=1)  # else no hold can see message 3 (kept, see below)
    policies = [policy("purge", "", delete_after_days=0, expunge_server_after_days=0)]

    plan = build_plan(store, policies, now=NOW)
    assert len(plan.policies[0].delete) == 1
    assert plan.held == 2
    assert {c.uid for c in plan.policies[0].expunge} == {3}, "held messages stay on the server"
    apply_plan(store, plan, force=True, expunger=_NoServers())
    assert subjects_left(store) == {1, 2}

    store.release_hold("case-17", actor="test")
    apply_plan(store, build_plan(store, policies, now=NOW), force=True, expunger=_NoServers())
    assert subjects_left(store) == set()
    kinds = [e.kind for e in store.audit_events()]
    assert kinds[0] == "hold.added" and "hold.released" in kinds
    assert store.audit_verify().ok


def test_while_a_hold_is_active_what_it_cannot_see_is_kept(
    archive_store: ArchiveStore,
) -> None:
    # Issue 16, item 1: holds match normalized fields; before normalization a hold on
    # `subject:r*` matched nothing and retention deleted everything it covers.
    store = archive_store
    store.ensure_account("work", "imap")
    deep = "<div>" * 300 + "retained words" + "</div>" * 300
    partial = (f"Message-ID: <deep@x>\r\nContent-Type: text/html\r\n\r\n{deep}\r\n").encode()
    batch = [
        RemoteMessage(
            folder="Sent", uid=n, raw=raw_message(n, "report"), internaldate=days_ago(900)
        )
        for n in range(1, 10)
    ]
    batch.append(RemoteMessage(folder="Sent", uid=10, raw=partial, internaldate=days_ago(900)))
    store.archive_batch("work", "Sent", 7, batch, None)
    purge = [policy("purge", "", delete_after_days=30, expunge_server_after_days=30)]
    store.add_hold("h", "subject:r*", None, actor="test")

    plan = build_plan(store, purge, now=NOW)
    assert plan.delete_messages == 0 and plan.held == 0
    assert plan.unseen == {"awaiting normalization": 10}
    assert plan.to_dict()["kept_unseen_by_holds"] == {"awaiting normalization": 10}
    assert plan.policies[0].expunge == [], "server copies are kept too"
    apply_plan(store, plan, force=True, expunger=_NoServers())
    assert store.message_count() == 10

    normalize_pending(store, workers=1)
    archive(store, "INBOX", [(20, days_ago(900))])  # subject "hello 20": not held
    normalize_pending(store, workers=1)
    plan = build_plan(store, purge, now=NOW)
    assert plan.held == 9 and plan.unseen == {"normalized partially": 1}
    assert plan.delete_messages == 1
    apply_plan(store, plan, force=True, expunger=_NoServers())
    assert store.message_count() == 10

    store.release_hold("h", actor="test")
    plan = build_plan(store, purge, now=NOW)
    assert plan.delete_messages == 10 and plan.unseen == {}, "no hold: nothing to be blind to"


def test_a_hold_placed_during_a_run_stops_the_batches_after_it(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    archive(store, "INBOX", [(n, days_ago(100)) for n in range(1, 7)])
    plan = build_plan(store, [policy("all", "", delete_after_days=1)], now=NOW)
    assert plan.delete_messages == 6
    store.add_hold("late", "folder:INBOX", None, actor="test")
    result = apply_plan(store, plan, force=True)
    assert result.deleted == 0 and result.skipped_by_new_holds == 6
    assert subjects_left(store) == set(range(1, 7))


def test_a_run_deleting_too_large_a_share_stops_and_asks_for_force(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    archive(store, "INBOX", [(1, days_ago(100)), (2, days_ago(1)), (3, days_ago(1))])
    plan = build_plan(store, [policy("p", "", delete_after_days=30)], now=NOW)
    with pytest.raises(RetentionRefused) as info:
        apply_plan(store, plan)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert "33.3%" in info.value.message and "--force" in (info.value.hint or "")
    assert subjects_left(store) == {1, 2, 3}
    assert store.audit_events()[-1].details["outcome"] == "refused"


class _NoServers:
    """Expunger for tests whose archive has no reachable server: expunges nothing."""

    def expunge(
        self,
        store: ArchiveStore,
        copies: Sequence[ServerCopy],
        *,
        owner: dict[int, str],
        actor: str | None,
        run_id: str,
    ) -> ExpungeOutcome:
        return ExpungeOutcome()


# --------------------------------------------------------------------------- time travel

YEARS = range(2016, 2026)
FOLDERS = ("INBOX", "Newsletters", "Legal", "Case")
TIME_POLICIES = [
    policy("default", "NOT folder:Newsletters", delete_after_days=7 * 365),
    policy("newsletters", "folder:Newsletters", delete_after_days=365),
    policy("legal", "folder:Legal", keep_min_days=10 * 365),
]


def _expected(archived: dict[int, tuple[str, datetime]], now: datetime) -> set[int]:
    """Computed from the rules as a person reads them, not from the code under test."""
    keep = set()
    for n, (folder, when) in archived.items():
        age = now - when
        if folder == "Case":
            keep.add(n)  # the hold
        elif folder == "Newsletters":
            if age < timedelta(days=365):
                keep.add(n)
        elif folder == "Legal":
            # default deletes after 7 years, the 10-year floor wins.
            if age < timedelta(days=3650):
                keep.add(n)
        elif age < timedelta(days=7 * 365):
            keep.add(n)
    return keep


def test_time_travel_ten_years_three_policies_and_a_hold(archive_store: ArchiveStore) -> None:
    store = archive_store
    store.add_hold("case", "folder:Case", "placed before any of its mail arrived", actor="t")
    archived: dict[int, tuple[str, datetime]] = {}
    n = 0
    for year in [*YEARS, *range(2026, 2031)]:
        if year in YEARS:
            by_folder: dict[str, list[tuple[int, datetime]]] = {}
            for month in range(1, 13):
                n += 1
                folder = FOLDERS[n % len(FOLDERS)]
                when = datetime(year, month, 1 + n % 27, 12, tzinfo=UTC)
                by_folder.setdefault(folder, []).append((n, when))
                archived[n] = (folder, when)
            for folder, items in by_folder.items():
                archive(store, folder, items)
            normalize_pending(store, workers=1)  # what a hold cannot see yet is kept
        now = datetime(year + 1, 1, 1, tzinfo=UTC)
        plan = build_plan(store, TIME_POLICIES, now=now)
        apply_plan(store, plan, force=True)
        assert subjects_left(store) == _expected(archived, now), f"after {year}"
    assert store.verify() == []
    assert store.audit_verify().ok


def test_a_blob_an_unsent_outbox_message_uses_stays_until_it_is_sent(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    archive(store, "INBOX", [(1, days_ago(100)), (2, days_ago(100))])
    with store.engine.begin() as conn:
        rows = conn.execute(select(messages.c.message_id_header, messages.c.sha256))
        sha = {mid: digest for mid, digest in rows}
        for key, status, n in (("pending", "pending", 1), ("sent", "sent", 2)):
            conn.execute(
                outbox.insert().values(
                    idem_key=key,
                    kind="forward",
                    smtp="out",
                    envelope_from="a@example.com",
                    recipients='["b@example.com"]',
                    body_sha256=sha[f"<m{n}@example.com>"],
                    status=status,
                )
            )
    result = apply_plan(
        store, build_plan(store, [policy("p", "", delete_after_days=1)]), force=True
    )
    assert result.deleted == 2 and result.blobs_removed == 1
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.idem_key, outbox.c.body_sha256))
        left = {key: digest for key, digest in rows}
        assert left == {"pending": sha["<m1@example.com>"], "sent": None}
        assert conn.execute(select(blobs.c.sha256)).scalars().all() == [sha["<m1@example.com>"]]
    assert store.verify() == []


def test_age_counts_from_internaldate_else_the_date_header_else_first_archived(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    store.ensure_account("pop", "pop3")
    dated = b"Date: Tue, 01 Jan 2019 10:00:00 +0200\r\nMessage-ID: <d@x>\r\n\r\nbody\r\n"
    undated = b"Message-ID: <u@x>\r\n\r\nbody\r\n"
    both = b"Date: Tue, 01 Jan 2019 10:00:00 +0000\r\nMessage-ID: <b@x>\r\n\r\nbody\r\n"
    store.archive_batch(
        "pop",
        "INBOX",
        0,
        [
            RemoteMessage(folder="INBOX", uid=1, raw=dated),
            RemoteMessage(folder="INBOX", uid=2, raw=undated),
            RemoteMessage(folder="INBOX", uid=3, raw=both, internaldate=days_ago(7)),
        ],
        None,
    )
    normalize_pending(store, workers=0)
    with store.engine.connect() as conn:
        ids = {
            mid: pk for mid, pk in conn.execute(select(messages.c.message_id_header, messages.c.id))
        }
    facts = store.message_facts(list(ids.values()))
    assert facts[ids["<d@x>"]].aged_from == datetime(2019, 1, 1, 8, tzinfo=UTC)
    assert facts[ids["<b@x>"]].aged_from == days_ago(7)
    first_seen = facts[ids["<u@x>"]].aged_from
    assert datetime.now(UTC) - first_seen < timedelta(minutes=5)
