"""Faster search on PostgreSQL (newest-first index, the subject's own tsvector); first_seen_at.

Why: on PostgreSQL, ``search()`` (newest first: ``ORDER BY date DESC NULLS
LAST, id DESC LIMIT n``) could not use ``ix_messages_date`` (ascending, nulls
last: read backwards it gives nulls first, and no ``id``), so every query read
and sorted all of ``messages`` before the first hit (50 ms at 100,000). The
index ``ix_messages_date_newest`` has exactly that order, so the planner walks
it and probes the full-text rows of each message until it has ``n`` hits, or,
for a rare term, looks the term up in the GIN index first, as before.
PostgreSQL only: SQLite cannot say ``NULLS LAST`` in an index and already walks
``ix_messages_date`` (see ``compile_query``'s ``probe``); so it is not in
``syncer.archive.models`` but in ``SEARCH_INDEX_INDEXES``.

A ``subject:`` term asked the GIN index of
``search_chunks.doc`` for every message containing the word anywhere, then read
back (de-TOASTed) each of those documents to check that a position carried the
subject's weight: about 100 ms at 100,000 messages whatever the limit. Now each
chunk row also keeps the subject's positions in a small column ``subject``
(a tsvector, stored inline) with its own GIN index, so ``subject:word`` is
answered by that index alone and ``subject:"a phrase"`` rechecks only the
subject (docs/performance.md, "## Search").

Existing archives: the column is filled from the rows already there with
``ts_filter(doc, '{a}')`` (the subject is the field of weight A), which is the
same vector the indexer now writes, so no rebuild is needed. This rewrites
``search_chunks`` and its indexes once, holding an exclusive lock on it
(about a minute per million messages).

Also, on both databases, an index on ``messages.first_seen_at``: "archived
since" selections (a digest's first run) range over it instead of scanning
``messages``.

SQLite's FTS5 table already keeps one column per field; nothing changes there
but the index on ``first_seen_at``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_first_seen_at", "messages", ["first_seen_at"])
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE search_chunks ADD COLUMN subject tsvector")
        # Filled by a rewrite of the table (ALTER ... TYPE with USING) rather than an UPDATE,
        # which would leave every row and GIN entry twice and the planner preferring seq scans.
        op.execute(
            "ALTER TABLE search_chunks ALTER COLUMN subject TYPE tsvector"
            " USING ts_filter(doc, '{a}')"
        )
        op.execute("ALTER TABLE search_chunks ALTER COLUMN subject SET NOT NULL")
        op.execute("CREATE INDEX ix_search_chunks_subject ON search_chunks USING gin (subject)")
        op.execute(
            "CREATE INDEX ix_messages_date_newest ON messages (date DESC NULLS LAST, id DESC)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_messages_date_newest")
        op.execute("DROP INDEX ix_search_chunks_subject")
        op.execute("ALTER TABLE search_chunks DROP COLUMN subject")
    op.drop_index("ix_messages_first_seen_at", table_name="messages")
