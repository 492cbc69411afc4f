"""The audit trail is a hash chain: tampering with it is found, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from sqlalchemy import delete, select, update

from syncer.archive.models import audit_events
from syncer.archive.store import ArchiveStore


def _fill(store: ArchiveStore, n: int = 5) -> None:
    for i in range(1, n + 1):
        store.audit("test.event", actor="tester", subject=f"s{i}", details={"i": i, "ü": "ß"})


def _row(store: ArchiveStore, event_id: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(select(audit_events).where(audit_events.c.id == event_id)).one()
    return dict(row._mapping)


def _set(store: ArchiveStore, event_id: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.id == event_id).values(**values))


def test_an_intact_chain_verifies_and_exports_with_its_hashes(archive_store: ArchiveStore) -> None:
    _fill(archive_store)
    report = archive_store.audit_verify()
    assert report.ok and report.events == 5
    events = archive_store.audit_events()
    assert [e.details["i"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash is None
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


def test_an_edited_row_is_named(archive_store: ArchiveStore) -> None:
    _fill(archive_store)
    _set(archive_store, 3, details='{"i":33,"ü":"ß"}')
    report = archive_store.audit_verify()
    assert not report.ok and report.broken_at == 3
    assert "altered" in (report.problem or "")


def test_a_deleted_row_is_found_at_the_row_after_it(archive_store: ArchiveStore) -> None:
    _fill(archive_store)
    with archive_store.engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.id == 3))
    report = archive_store.audit_verify()
    assert not report.ok and report.broken_at == 4
    assert "removed" in (report.problem or "")


def test_removing_the_newest_rows_is_found_through_the_recorded_head(
    archive_store: ArchiveStore,
) -> None:
    _fill(archive_store)
    with archive_store.engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.id >= 4))
    report = archive_store.audit_verify()
    assert not report.ok and "newest events were removed" in (report.problem or "")


def test_a_swapped_pair_is_found(archive_store: ArchiveStore) -> None:
    _fill(archive_store)
    two, three = _row(archive_store, 2), _row(archive_store, 3)
    fields = ("at", "kind", "actor", "subject", "details", "prev_hash")
    # hash is unique: park one first.
    _set(archive_store, 2, hash="x" * 64)
    _set(archive_store, 3, hash=two["hash"], **{f: two[f] for f in fields})
    _set(archive_store, 2, hash=three["hash"], **{f: three[f] for f in fields})
    report = archive_store.audit_verify()
    assert not report.ok and report.broken_at == 2
    assert "reordered" in (report.problem or "")


def test_concurrent_appends_keep_one_chain(archive_url: str) -> None:
    stores = [ArchiveStore.open(archive_url, migrate=True) for _ in range(3)]
    try:

        def work(store: ArchiveStore, k: int) -> None:
            for i in range(8):
                store.audit("test.concurrent", subject=f"{k}-{i}")

        threads = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = stores[0].audit_verify()
        assert report.ok and report.events == 24
    finally:
        for store in stores:
            store.close()


def _head_set(store: ArchiveStore, event_id: int | None, digest: str | None) -> None:
    """What someone with write access does to hide a cut: move the recorded head."""
    from syncer.archive.models import job_state

    with store.engine.begin() as conn:
        if event_id is None:
            conn.execute(delete(job_state).where(job_state.c.kind == "audit"))
        else:
            data = json.dumps({"hash": digest, "id": event_id})
            conn.execute(update(job_state).where(job_state.c.kind == "audit").values(data=data))


def _cut_after(store: ArchiveStore, event_id: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.id > event_id))


def test_a_cut_tail_with_a_moved_head_is_found_only_through_an_anchor(
    archive_store: ArchiveStore,
) -> None:
    # Issue 16, item 9: cutting the newest events and moving (or deleting) the recorded
    # head leaves a shorter chain that is intact on its own; only a head kept outside the
    # database shows it.
    from syncer.archive.audit import Anchor

    store = archive_store
    _fill(store, 6)
    report = store.audit_verify()
    assert report.ok and report.head_id is not None and report.head_hash is not None
    anchor = Anchor(report.events, report.head_id, report.head_hash)
    assert Anchor.from_json(anchor.to_json()) == anchor
    assert store.audit_verify(anchor).ok
    store.audit("later", actor="t")
    assert store.audit_verify(anchor).ok, "a longer chain extends the anchor"

    keep = _row(store, report.head_id - 2)
    _cut_after(store, keep["id"])
    _head_set(store, keep["id"], keep["hash"])
    assert store.audit_verify().ok, "the chain alone cannot tell"
    cut = store.audit_verify(anchor)
    assert not cut.ok and cut.problem is not None and "anchored head" in cut.problem

    _cut_after(store, 0)
    _head_set(store, None, None)
    assert store.audit_verify().ok and store.audit_verify().events == 0
    assert not store.audit_verify(anchor).ok
