"""Index rows computed in the normalizer's workers equal those built from the stored rows.

Normalization tokenizes each message where it was parsed (a pool process) and
the saving process only inserts the rows; ``syncer index --rebuild`` builds
them from the archive's rows. Both must give the same index, on both databases,
for the golden corpus (hostile messages included).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.golden import corpus


def _rows(store: ArchiveStore) -> list[tuple[object, ...]]:
    query = (
        "SELECT rowid, subject, addresses, body, attachments FROM search_fts ORDER BY rowid"
        if store.engine.dialect.name == "sqlite"
        else "SELECT message_pk, chunk, doc::text, subject::text FROM search_chunks ORDER BY 1, 2"
    )
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(query))]


def _key(value: object) -> int:
    assert isinstance(value, int)
    return value


def test_prepared_index_rows_equal_a_rebuild_from_the_stored_rows(
    archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.POOL_THRESHOLD", 100)
    raws = list(dict.fromkeys(raw for name, raw in corpus() if not name.startswith("bench/")))
    archive_store.ensure_account("work", "imap")
    for start in range(0, len(raws), 200):
        batch = [
            RemoteMessage(folder="INBOX", uid=start + i + 1, raw=raw)
            for i, raw in enumerate(raws[start : start + 200])
        ]
        archive_store.archive_batch("work", "INBOX", 1, batch, None)
    counts = normalize_pending(archive_store, workers=2)
    assert counts.processed == len(raws) and counts.workers == 2
    prepared = _rows(archive_store)
    assert len(prepared) >= len(raws)
    archive_store.rebuild_index()
    assert _rows(archive_store) == prepared


def test_a_rebuild_keeps_the_index_and_rewrites_only_what_changed(
    archive_store: ArchiveStore,
) -> None:
    """insert_rows leaves a message's rows alone when they are already what it would
    write (SQLite: nothing written at all), and replaces them whole otherwise: a longer
    or shorter list of chunks, or a chunk whose text differs."""
    from syncer.archive.search.index import insert_rows

    raws = list(dict.fromkeys(raw for name, raw in corpus() if name.startswith("mail/")))[:30]
    archive_store.ensure_account("work", "imap")
    batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=raw) for i, raw in enumerate(raws)]
    archive_store.archive_batch("work", "INBOX", 1, batch, None)
    normalize_pending(archive_store, workers=1)
    indexed = _rows(archive_store)
    counts = normalize_pending(archive_store, rebuild=True, workers=1)
    assert counts.processed == len(raws) and counts.failed == 0
    assert _rows(archive_store) == indexed

    sqlite = archive_store.engine.dialect.name == "sqlite"
    first, second = sorted({_key(row[0]) >> 8 if sqlite else _key(row[0]) for row in indexed})[:2]
    two_chunks = (
        [(0, "subject", "names", "body", "files"), (1, None, None, "more", None)]
        if sqlite
        else [(0, "'body':1D", "'subject':1A"), (1, "'more':3D", "")]
    )
    with archive_store.engine.begin() as conn:
        insert_rows(conn, [(first, two_chunks), (second, two_chunks)])
    with archive_store.engine.begin() as conn:
        raw_conn = conn.connection.dbapi_connection
        before = raw_conn.total_changes if sqlite else 0  # type: ignore[union-attr]
        insert_rows(conn, [(first, two_chunks), (second, two_chunks)])
        if sqlite:  # nothing written (FTS5's own tables included)
            assert raw_conn.total_changes == before  # type: ignore[union-attr]
        insert_rows(conn, [(first, two_chunks), (second, two_chunks[:1])])
    rows = {
        (_key(row[0]) >> 8, _key(row[0]) & 255) if sqlite else row[:2]
        for row in _rows(archive_store)
    }
    assert {(first, 0), (first, 1), (second, 0)} <= rows and (second, 1) not in rows
