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
