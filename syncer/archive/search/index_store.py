"""The search index's side of the store: catch up, rebuild, status (``syncer index``).

Why this module exists: normalization keeps the index current message by
message (:func:`~syncer.archive.search.index.index_messages` runs in its save
transaction); these methods do the same for the whole archive, in batches of
one transaction each, so they can be interrupted at any point:

* :meth:`StoreSearchIndex.index_missing`: index normalized messages that have
  no index rows (an archive upgraded to schema 0004, or after a crash between
  versions).
* :meth:`StoreSearchIndex.rebuild_index`: re-index every message, by id.
  Search keeps working meanwhile (each message's rows are replaced, not
  dropped first). The position is kept in ``job_state`` (kind
  ``search_index``, name ``rebuild``), so a rebuild that was interrupted goes
  on where it stopped when started again; rows of messages that no longer
  exist are removed at the end and the index is merged.
* :meth:`StoreSearchIndex.index_status`: counts and the index's size.

:class:`~syncer.archive.store.ArchiveStore` inherits :class:`StoreSearchIndex`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from syncer.archive.admin_views import IndexStatus
from syncer.archive.models import job_state, messages, utcnow
from syncer.archive.store_base import StoreCore

__all__ = ["IndexCounts", "StoreSearchIndex"]

_KIND = "search_index"
_REBUILD = "rebuild"
#: Messages per transaction.
BATCH = 500
#: A catch-up of at least this many messages ends by merging the index.
_OPTIMIZE_AFTER = 10_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class IndexCounts:
    """What one ``syncer index`` run did.

    :ivar resumed: a rebuild went on from message id ``resumed`` (0: from the start).
    """

    indexed: int
    seconds: float
    resumed: int = 0


class StoreSearchIndex(StoreCore):
    """Index maintenance for the whole archive (see :class:`ArchiveStore`)."""

    def index_missing(self, *, progress: Progress | None = None) -> IndexCounts:
        """Index every normalized message that is not in the index yet."""
        import time

        from syncer.archive.search import index

        started = time.monotonic()
        with self._read("counting messages missing from the search index") as conn:
            stats = index.index_stats(conn)
        total = max(0, stats["normalized"] - stats["indexed"])
        done = after = 0
        while True:
            with self._write("indexing messages for search") as conn:
                pks = index.unindexed_message_ids(conn, after=after, limit=BATCH)
                if not pks:
                    break
                index.index_messages(conn, pks)
            done += len(pks)
            after = pks[-1]
            if progress is not None:
                progress(done, max(total, done))
        if done >= _OPTIMIZE_AFTER:  # FTS5's automerge copes with less; this rewrites it all
            with self._write("merging the search index") as conn:
                index.optimize_index(conn)
        return IndexCounts(indexed=done, seconds=time.monotonic() - started)

    def rebuild_index(self, *, progress: Progress | None = None) -> IndexCounts:
        """Re-index every message; goes on from where an interrupted rebuild stopped."""
        import time

        from syncer.archive.search import index

        started = time.monotonic()
        with self._write("starting a search index rebuild") as conn:
            cursor = conn.execute(
                select(job_state.c.cursor_pk).where(
                    job_state.c.kind == _KIND, job_state.c.name == _REBUILD
                )
            ).one_or_none()
            if cursor is None:
                conn.execute(
                    job_state.insert().values(
                        kind=_KIND, name=_REBUILD, cursor_pk=0, cursor_at=utcnow()
                    )
                )
            after = resumed = int(cursor[0] or 0) if cursor is not None else 0
        with self._read("counting messages to index") as conn:
            total = int(
                conn.execute(select(func.count()).where(messages.c.id > after)).scalar_one()
            )
        done = 0
        while True:
            with self._write("rebuilding the search index") as conn:
                pks = [
                    int(pk)
                    for pk in conn.execute(
                        select(messages.c.id)
                        .where(messages.c.id > after)
                        .order_by(messages.c.id)
                        .limit(BATCH)
                    ).scalars()
                ]
                if not pks:
                    break
                index.index_messages(conn, pks)
                after = pks[-1]
                conn.execute(
                    update(job_state)
                    .where(job_state.c.kind == _KIND, job_state.c.name == _REBUILD)
                    .values(cursor_pk=after, cursor_at=utcnow())
                )
            done += len(pks)
            if progress is not None:
                progress(done, max(total, done))
        with self._write("finishing the search index rebuild") as conn:
            if conn.dialect.name == "sqlite":
                # Rows of messages deleted without remove_messages (PostgreSQL's foreign key
                # makes that impossible there).
                conn.execute(
                    text(
                        "DELETE FROM search_fts WHERE (rowid >> 8) NOT IN (SELECT id FROM messages)"
                    )
                )
            index.optimize_index(conn)
            conn.execute(
                delete(job_state).where(job_state.c.kind == _KIND, job_state.c.name == _REBUILD)
            )
        return IndexCounts(indexed=done, seconds=time.monotonic() - started, resumed=resumed)

    def index_status(self) -> IndexStatus:
        """Messages, normalized, indexed, index rows, index bytes (None if unknown), and
        where an interrupted rebuild stopped."""
        from syncer.archive.search import index

        with self._read("reading the search index status") as conn:
            stats = index.index_stats(conn)
            size = _index_bytes(conn)
            cursor = conn.execute(
                select(job_state.c.cursor_pk).where(
                    job_state.c.kind == _KIND, job_state.c.name == _REBUILD
                )
            ).one_or_none()
        return IndexStatus(
            messages=stats["messages"],
            normalized=stats["normalized"],
            indexed=stats["indexed"],
            index_rows=stats["index_rows"],
            index_bytes=size,
            rebuild_at=int(cursor[0] or 0) if cursor is not None else None,
        )


def _index_bytes(conn: Any) -> int | None:
    """The index's size on disk; None where the database cannot tell (no dbstat)."""
    try:
        if conn.dialect.name == "sqlite":
            found = conn.execute(
                text("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search_fts%'")
            ).scalar()
        else:
            found = conn.execute(text("SELECT pg_total_relation_size('search_chunks')")).scalar()
    except SQLAlchemyError:
        return None
    return int(found) if found is not None else 0
