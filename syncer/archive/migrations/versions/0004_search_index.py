"""Full-text search index: extracted attachment text, FTS5 on SQLite, tsvector + GIN on PostgreSQL.

What is indexed: one document per message (``messages.id``) with four fields,
``subject``; ``addresses`` (every address and display name); ``body``
(``message_texts.text``); ``attachments`` (file names and the text extracted
from text/*, HTML, PDF, docx, xlsx and pptx attachments, which normalization
now stores in the new table ``attachment_texts``). The index is derived data:
``syncer index --rebuild`` refills it from those rows.

Why the text is tokenized in Python and not by the databases: the SQLite and
PostgreSQL archives must answer a query with the same messages. PostgreSQL's
text-search parser depends on the database's locale (under the C locale
non-ASCII letters are not word characters) and treats e-mail addresses, URLs
and hyphenated words specially, and SQLite's ``unicode61`` tokenizer knows
Unicode 6.1 only (later letters become separators) and neither splits CJK.
So :mod:`syncer.archive.search.tokens` turns text into tokens (case-folded,
diacritics stripped, runs of letters and digits; CJK, Thai and similar runs as
overlapping bigrams plus the run's last character, so ``메일`` finds ``메일을``)
and both databases store exactly those tokens:

* SQLite: the FTS5 table ``search_fts`` with the ``ascii`` tokenizer, fed the
  tokens joined by spaces. ``ascii`` (rather than ``unicode61 remove_diacritics
  0``) because it treats every non-ASCII character as part of a token and
  only splits at ASCII punctuation and spaces, so it passes our tokens through
  unchanged whatever Unicode version they come from. It stores its content
  (not contentless): SQLite 3.40 (Debian 12) has no ``contentless_delete``,
  and a contentless table cannot forget a message without being handed the
  exact text it indexed, which retention must be able to do.
* PostgreSQL: the table ``search_chunks`` with one ``tsvector`` per row and a
  GIN index, built from a tsvector literal (lexemes with positions and a
  weight per field: subject A, addresses B, attachments C, body D) and
  queried with a tsquery literal (``<->`` phrases, ``:*`` prefixes, weights
  for one field), never through ``to_tsvector``.

Why chunks: a tsvector keeps positions only up to 16383 and at most 256 per
lexeme (the rest are dropped), and may not exceed 1 MB. A long message is
therefore indexed as several rows ("chunks") of at most 16,000 positions, 250
occurrences of any token and 512 KB, overlapping by 32 tokens so a phrase of
up to 33 tokens is always inside one chunk. Both databases index the same
chunks, so phrase results agree. FTS5 rows are keyed ``rowid = message id *
256 + chunk``; at most 256 chunks per message are indexed (several megabytes
of text; normalization keeps 1 MB of body text anyway).

PostgreSQL also gets trigram indexes (``pg_trgm``) for the field terms that
match substrings, ``from:``/``to:``/``cc:`` and ``filename:``: GIN indexes on
``translate(column, 'A..Z', 'a..z')`` (the ASCII case folding the query
compiler applies, :mod:`syncer.archive.search.compile`) of
``addresses.address``, ``addresses.display_name`` and ``attachments.filename``,
which serve its ``LIKE '%...%'``. ``CREATE EXTENSION`` needs a privilege the
archive's database user may lack (pg_trgm is a trusted extension since
PostgreSQL 13, so a database owner can): without it the migration goes on
without these indexes, and those terms scan the tables instead. SQLite cannot
index infix ``LIKE``.

Neither the FTS5 table (a virtual table) nor ``search_chunks`` and the
trigram indexes (PostgreSQL only) are described in ``syncer.archive.models``;
the model comparison test skips them by name
(:data:`syncer.archive.models.SEARCH_INDEX_TABLES`, ``SEARCH_INDEX_INDEXES``).

Reviewed by hand: new tables, and on PostgreSQL the extension and three
indexes on existing tables (built once, while the migration holds its
transaction; minutes on millions of addresses). Existing archives get an empty index: the
normalizer version goes up, so the next ``syncer normalize`` (or sync)
re-derives every message with its attachment text and indexes it; ``syncer
index`` indexes normalized messages missing from the index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment_texts",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("part_path", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_attachment_texts_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("message_pk", "part_path", name="pk_attachment_texts"),
    )
    if op.get_context().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "subject, addresses, body, attachments, tokenize='ascii', detail=full)"
        )
    else:
        op.execute(
            "CREATE TABLE search_chunks ("
            "message_pk integer NOT NULL"
            " CONSTRAINT fk_search_chunks_message_pk_messages REFERENCES messages (id),"
            " chunk smallint NOT NULL,"
            " doc tsvector NOT NULL,"
            " CONSTRAINT pk_search_chunks PRIMARY KEY (message_pk, chunk))"
        )
        op.execute("CREATE INDEX ix_search_chunks_doc ON search_chunks USING gin (doc)")
        if _trigrams_available():
            for name, table, column in _TRIGRAM_INDEXES:
                op.execute(
                    f"CREATE INDEX {name} ON {table} USING gin "
                    f"(translate({column}, '{_UPPER}', '{_UPPER.lower()}') gin_trgm_ops)"
                )


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TRIGRAM_INDEXES = (
    ("ix_addresses_address_trgm", "addresses", "address"),
    ("ix_addresses_display_name_trgm", "addresses", "display_name"),
    ("ix_attachments_filename_trgm", "attachments", "filename"),
)


def _trigrams_available() -> bool:
    """Create pg_trgm if we may; False (and nothing changed) when we may not."""
    conn = op.get_bind()
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    else:
        op.execute("DROP TABLE search_chunks")
        for name, _table, _column in _TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_table("attachment_texts")
