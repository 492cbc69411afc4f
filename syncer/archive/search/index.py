"""The full-text index: FTS5 on SQLite, tsvector + GIN on PostgreSQL, behind four functions.

Why this module exists: search (:mod:`syncer.archive.search.store`) needs "the
messages whose text contains this phrase" as a SQL condition it can combine
with its other terms, on both databases, with the same answers; normalization
and retention need to keep the index current. The tables are created by
migration 0004 (see its docstring for the design; 0005 gave PostgreSQL's rows
the subject's own vector, ``search_chunks.subject``); the tokens come from
:mod:`syncer.archive.search.tokens`.

Public API:

* :func:`text_match` ``(dialect, scope, text, *, prefix=False)``: a condition on
  ``messages.c.id`` that is true when the message's indexed text in ``scope``
  (``all``, ``subject``, ``body``, ``addresses``, ``attachments``) contains
  ``text`` as a phrase. Text without any letter or digit matches nothing.
* :func:`text_match_any` ``(dialect, [(scope, text, prefix), ...])``: the OR of
  :func:`text_match` terms; one index lookup per column on PostgreSQL.
* :func:`relevance` ``(dialect, texts)``: a score per message (higher is
  better) for ``ORDER BY``, correlated with ``messages.c.id``; 0 without a match.
* :func:`index_messages` ``(conn, pks)``: (re)index messages from their stored
  rows (subject, addresses, text, attachment names and text), inside the
  caller's transaction. Normalization's save calls it; so does the rebuild.
* :func:`insert_rows` ``(conn, rows)``: insert rows made by
  :func:`syncer.archive.search.document.index_document` (in normalization's
  worker processes), in bulk.
* :func:`remove_messages` ``(conn, pks)``: forget messages: their index rows
  and their extracted attachment text. Retention calls it before deleting them.
* :func:`unindexed_message_ids`, :func:`clear_index`, :func:`optimize_index`,
  :func:`index_stats`: for ``syncer index``.

What a document holds: ``subject``; ``addresses`` (each address with its
display name); ``body`` (``message_texts.text``, which normalization caps at
1 MB); ``attachments`` (each file name and its extracted text). User text only
ever reaches the database as a bound parameter: an FTS5 expression whose every
token is double-quoted, or a tsquery literal of quoted lexemes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import UserDefinedType

from syncer.archive.models import (
    addresses,
    attachment_texts,
    attachments,
    message_texts,
    messages,
)
from syncer.archive.search.document import WEIGHTS, IndexRow, document_rows
from syncer.archive.search.tokens import QueryToken, query_tokens

__all__ = [
    "Scope",
    "clear_index",
    "index_messages",
    "index_stats",
    "insert_rows",
    "optimize_index",
    "relevance",
    "remove_messages",
    "text_match",
    "text_match_any",
    "unindexed_message_ids",
]

Scope = Literal["all", "subject", "body", "addresses", "attachments"]

#: FTS5 rowid = message id * _ROWS_PER_MESSAGE + chunk number.
_ROWS_PER_MESSAGE = 256
_SHIFT = 8
#: insert_rows reads the stored rows of ids at most this far apart with one range query.
_RUN_GAP = 64
#: Messages per statement group in index_messages / remove_messages.
_BATCH = 500
#: PostgreSQL weight of each field (ts_rank weighs A highest); None for "all".
_WEIGHTS = WEIGHTS
#: SQLite bm25 weight of each column, in FIELDS order.
_BM25_WEIGHTS = (4.0, 2.0, 1.0, 1.0)

_fts = table(
    "search_fts",
    column("rowid", Integer),
    column("subject", String),
    column("addresses", String),
    column("body", String),
    column("attachments", String),
)
_chunks = table(
    "search_chunks",
    column("message_pk", Integer),
    column("chunk", Integer),
    column("doc", String),
    column("subject", String),
)


class _TSQuery(UserDefinedType[str]):
    """PostgreSQL ``tsquery``, for a ``CAST`` of a bound literal (no dialect import)."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "tsquery"


class _TSVector(UserDefinedType[str]):
    """PostgreSQL ``tsvector``."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "tsvector"


# --------------------------------------------------------------------------- queries


def _fts_phrase(phrase: Sequence[QueryToken]) -> str:
    # Tokens are letters, digits and marks only (search_tokens), so no quote can occur;
    # each is quoted anyway so that no FTS5 operator (AND, NEAR, ^, :) can be formed.
    quoted = " ".join(token.text.replace('"', '""') for token in phrase)
    return f'"{quoted}"' + (" *" if phrase[-1].prefix else "")


def _fts_expression(scope: str, phrase: Sequence[QueryToken]) -> str:
    expression = _fts_phrase(phrase)
    return expression if scope == "all" else f"{{{scope}}} : {expression}"


def _tsquery(scope: str, phrase: Sequence[QueryToken]) -> str:
    weight = _WEIGHTS.get(scope, "")
    parts = []
    for token in phrase:
        lexeme = token.text.replace("\\", "\\\\").replace("'", "''")
        label = ("*" if token.prefix else "") + weight
        parts.append(f"'{lexeme}'" + (f":{label}" if label else ""))
    return " <-> ".join(parts)


def _match_sqlite(expression: str) -> ColumnElement[bool]:
    return literal_column("search_fts").op("MATCH")(bindparam(None, expression, String))


def _match_postgresql(query: str, vector: ColumnElement[Any]) -> ColumnElement[bool]:
    return vector.op("@@")(cast(bindparam(None, query, String), _TSQuery()))


def _check(dialect: str) -> None:
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"The search index supports sqlite and postgresql, not {dialect!r}.")


def text_match(
    dialect: str, scope: Scope, text: str, *, prefix: bool = False
) -> ColumnElement[bool]:
    """True for messages whose indexed text in ``scope`` contains ``text`` as a phrase.

    :param text: as the user wrote it, without quotes or a trailing ``*``.
    :param prefix: the last token is a prefix (``invoic*``).
    :raises ValueError: for an unknown dialect or scope.
    """
    _check(dialect)
    _check_scope(scope)
    if dialect == "postgresql":
        return text_match_any(dialect, [(scope, text, prefix)])
    phrase = query_tokens(text, prefix=prefix)
    if not phrase:
        return false()
    rows = select(_fts.c.rowid.op(">>")(literal_column(str(_SHIFT)))).where(
        _match_sqlite(_fts_expression(scope, phrase))
    )
    return messages.c.id.in_(rows)


def text_match_any(
    dialect: str, terms: Sequence[tuple[Scope, str, bool]], *, walk: bool = False
) -> ColumnElement[bool]:
    """True for messages that :func:`text_match` any of ``terms`` (``(scope, text, prefix)``).

    On PostgreSQL the terms read from the same column become one tsquery
    ``(q1) | (q2)``: a message has a chunk matching q1 or a chunk matching q2
    exactly when it has a chunk matching either, so the answer is the same as
    the OR of the terms, from one index lookup instead of one set per term.
    ``subject:`` terms read the subject's own vector (small and untoasted, so
    a word needs no recheck of its weight); the others the whole document.
    SQLite: the OR of :func:`text_match`.

    :param walk: PostgreSQL: the caller reads messages newest first and stops
        after a page. The condition is then an ``EXISTS``, which the planner
        also turns into a probe per message under a NOT (an anti join:
        ``deadline -meeting`` in 3 ms instead of 30 at 100,000 messages);
        otherwise an ``IN``, whose NOT collects the excluded word's messages
        once, cheaper when every match is wanted (counting: 105 against 135 ms).
    :raises ValueError: for an unknown dialect or scope.
    """
    _check(dialect)
    if dialect == "sqlite":
        return or_(*(text_match(dialect, s, t, prefix=p) for s, t, p in terms), false())
    by_column: dict[str, list[str]] = {}
    for scope, value, prefix in terms:
        _check_scope(scope)
        phrase = query_tokens(value, prefix=prefix)
        if not phrase:
            continue
        if scope == "subject":
            by_column.setdefault("subject", []).append(_tsquery("all", phrase))
        else:
            by_column.setdefault("doc", []).append(_tsquery(scope, phrase))
    found: list[ColumnElement[bool]] = []
    for name, queries in by_column.items():
        vector = _chunks.c[name]
        tsquery = " | ".join(f"({q})" for q in queries) if len(queries) > 1 else queries[0]
        if walk:
            found.append(
                exists().where(
                    _chunks.c.message_pk == messages.c.id, _match_postgresql(tsquery, vector)
                )
            )
        else:
            found.append(
                messages.c.id.in_(
                    select(_chunks.c.message_pk).where(_match_postgresql(tsquery, vector))
                )
            )
    if not found:
        return false()
    return found[0] if len(found) == 1 else or_(*found)


def _check_scope(scope: str) -> None:
    if scope != "all" and scope not in _WEIGHTS:
        raise ValueError(f"Unknown search scope {scope!r}.")


def relevance(dialect: str, texts: Sequence[str]) -> ColumnElement[float]:
    """How well each message matches any of ``texts`` (phrases, all fields); higher is better.

    SQLite: BM25 over the message's chunks (subject weighs most); PostgreSQL:
    ``ts_rank`` with the field weights. 0 for a message that matches none.
    """
    _check(dialect)
    phrases = [phrase for phrase in (query_tokens(t) for t in texts) if phrase]
    if not phrases:
        return literal(0.0, Float)
    if dialect == "sqlite":
        expression = " OR ".join(f"({_fts_phrase(phrase)})" for phrase in phrases)
        low = messages.c.id * _ROWS_PER_MESSAGE
        bm25 = func.bm25(literal_column("search_fts"), *_BM25_WEIGHTS)
        # bm25() cannot sit inside an aggregate: the best chunk is the first by bm25.
        score = (
            select(-bm25)
            .where(
                _match_sqlite(expression),
                _fts.c.rowid >= low,
                _fts.c.rowid < low + _ROWS_PER_MESSAGE,
            )
            .order_by(bm25)
            .limit(1)
            .scalar_subquery()
        )
    else:
        query = " | ".join(f"({_tsquery('all', phrase)})" for phrase in phrases)
        score = (
            select(func.max(func.ts_rank(_chunks.c.doc, cast(bindparam(None, query), _TSQuery()))))
            .where(_chunks.c.message_pk == messages.c.id)
            .scalar_subquery()
        )
    return func.coalesce(score, 0.0, type_=Float)


# --------------------------------------------------------------------------- maintenance


def _documents(conn: Connection, pks: Sequence[int]) -> dict[int, list[list[str]]]:
    """The texts of each message's fields (FIELDS order), for the existing messages among pks."""
    docs: dict[int, list[list[str]]] = {}
    for pk, subject in conn.execute(
        select(messages.c.id, messages.c.subject).where(messages.c.id.in_(pks))
    ):
        docs[pk] = [[subject or ""], [], [], []]
    for pk, name, address in conn.execute(
        select(addresses.c.message_pk, addresses.c.display_name, addresses.c.address)
        .where(addresses.c.message_pk.in_(pks))
        .order_by(addresses.c.message_pk, addresses.c.id)
    ):
        if pk in docs:
            docs[pk][1].extend(value for value in (name, address) if value)
    for pk, body in conn.execute(
        select(message_texts.c.message_pk, message_texts.c.text).where(
            message_texts.c.message_pk.in_(pks)
        )
    ):
        if pk in docs:
            docs[pk][2].append(body)
    for pk, filename, extracted in conn.execute(
        select(attachments.c.message_pk, attachments.c.filename, attachment_texts.c.text)
        .select_from(
            attachments.outerjoin(
                attachment_texts,
                and_(
                    attachment_texts.c.message_pk == attachments.c.message_pk,
                    attachment_texts.c.part_path == attachments.c.part_path,
                ),
            )
        )
        .where(attachments.c.message_pk.in_(pks))
        .order_by(attachments.c.message_pk, attachments.c.id)
    ):
        if pk in docs:
            docs[pk][3].extend(value for value in (filename, extracted) if value)
    return docs


def _delete_rows(conn: Connection, pks: Sequence[int]) -> None:
    if not pks:
        return
    if conn.dialect.name == "sqlite":
        conn.execute(
            text("DELETE FROM search_fts WHERE rowid >= :low AND rowid < :high"),
            [{"low": pk * _ROWS_PER_MESSAGE, "high": (pk + 1) * _ROWS_PER_MESSAGE} for pk in pks],
        )
    else:
        conn.execute(delete(_chunks).where(_chunks.c.message_pk.in_(pks)))


def _stored_sqlite(conn: Connection, pks: Sequence[int]) -> dict[int, list[tuple[Any, ...]]]:
    """The FTS5 rows stored for ``pks``, by message id, in rowid order.

    Read by rowid ranges over runs of nearby ids (a batch of normalization is a
    run of ids), so ids far apart never make one query read all between them.
    """
    stored: dict[int, list[tuple[Any, ...]]] = {}
    wanted = sorted(set(pks))
    runs: list[list[int]] = []
    for pk in wanted:
        if runs and pk - runs[-1][-1] <= _RUN_GAP:
            runs[-1].append(pk)
        else:
            runs.append([pk])
    select_rows = (
        "SELECT rowid, subject, addresses, body, attachments FROM search_fts "
        "WHERE rowid >= ? AND rowid < ? ORDER BY rowid"
    )
    keep = set(wanted)
    for run in runs:
        low, high = run[0] * _ROWS_PER_MESSAGE, (run[-1] + 1) * _ROWS_PER_MESSAGE
        for row in conn.exec_driver_sql(select_rows, (low, high)):
            pk = row[0] >> _SHIFT
            if pk in keep:
                stored.setdefault(pk, []).append(tuple(row))
    return stored


def insert_rows(conn: Connection, rows: Sequence[tuple[int, Sequence[IndexRow]]]) -> None:
    """Replace the index rows of messages by ``(message id, document_rows(...))``, in bulk.

    The caller makes sure the messages exist (PostgreSQL's foreign key would
    refuse others; SQLite's FTS5 table has none).

    SQLite: a message whose stored rows are already exactly these is left
    alone. Why: FTS5 pays for a deleted row about twice what it pays to insert
    one (it re-tokenizes the old text to write delete markers), and a
    ``syncer normalize --rebuild`` mostly derives what is already indexed:
    reading the stored rows back costs a few per cent of replacing them
    (docs/performance.md, "Normalize stage CPU").
    """
    if conn.dialect.name == "sqlite":
        stored = _stored_sqlite(conn, [pk for pk, _ in rows])
        flat: list[tuple[Any, ...]] = []
        changed: list[int] = []
        for pk, prepared in rows:
            mine = [
                (pk * _ROWS_PER_MESSAGE + number, subject, names, body, files)
                for number, subject, names, body, files in prepared
            ]
            if stored.get(pk, []) != mine:  # unchanged rows are neither deleted nor written
                changed.extend([pk] if pk in stored else [])
                flat.extend(mine)
        _delete_rows(conn, changed)
        if flat:
            # One executemany through the driver: the rows are plain tuples already.
            conn.exec_driver_sql(
                "INSERT INTO search_fts (rowid, subject, addresses, body, attachments) "
                "VALUES (?, ?, ?, ?, ?)",
                flat,
            )
        return
    _delete_rows(conn, [pk for pk, _ in rows])
    params = [
        {"b_pk": pk, "b_chunk": number, "b_doc": doc, "b_subject": subject}
        for pk, prepared in rows
        for number, doc, subject in prepared
    ]
    if params:
        conn.execute(
            _chunks.insert().values(
                message_pk=bindparam("b_pk"),
                chunk=bindparam("b_chunk"),
                doc=cast(bindparam("b_doc", type_=String), _TSVector()),
                subject=cast(bindparam("b_subject", type_=String), _TSVector()),
            ),
            params,
        )


def index_messages(conn: Connection, message_pks: Sequence[int]) -> None:
    """(Re)index these messages from their stored rows, in the caller's transaction.

    Idempotent: a message's old rows are replaced. Ids of messages that do not
    exist are ignored (and anything indexed under them removed).
    """
    wanted = sorted(set(message_pks))
    dialect = conn.dialect.name
    for start in range(0, len(wanted), _BATCH):
        part = wanted[start : start + _BATCH]
        docs = _documents(conn, part)
        _delete_rows(conn, [pk for pk in part if pk not in docs])  # insert_rows replaces the rest
        insert_rows(
            conn,
            [
                (pk, document_rows(dialect, ["\n".join(texts) for texts in docs[pk]]))
                for pk in sorted(docs)
            ],
        )


def remove_messages(conn: Connection, message_pks: Sequence[int]) -> None:
    """Forget these messages in the index: their rows and their extracted attachment text.

    Called by retention inside its deletion transaction, before the messages
    go; afterwards no token of theirs is left in the index.
    """
    wanted = sorted(set(message_pks))
    for start in range(0, len(wanted), _BATCH):
        part = wanted[start : start + _BATCH]
        _delete_rows(conn, part)
        conn.execute(delete(attachment_texts).where(attachment_texts.c.message_pk.in_(part)))


def _indexed(conn: Connection) -> ColumnElement[bool]:
    if conn.dialect.name == "sqlite":
        return exists().where(_fts.c.rowid == messages.c.id * _ROWS_PER_MESSAGE)
    return exists().where(_chunks.c.message_pk == messages.c.id, _chunks.c.chunk == 0)


def unindexed_message_ids(conn: Connection, *, after: int = 0, limit: int = 1000) -> list[int]:
    """Normalized messages missing from the index, by id, with ids above ``after``."""
    query = (
        select(messages.c.id)
        .where(messages.c.id > after, messages.c.normalizer_version.is_not(None))
        .where(~_indexed(conn))
        .order_by(messages.c.id)
        .limit(limit)
    )
    return [int(pk) for pk in conn.execute(query).scalars()]


def clear_index(conn: Connection) -> None:
    """Empty the index (not the extracted attachment text), for a rebuild."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("DELETE FROM search_fts"))
    else:
        conn.execute(text("TRUNCATE search_chunks"))


def optimize_index(conn: Connection) -> None:
    """Merge the index after bulk work (FTS5 segments; PostgreSQL's GIN pending list, ANALYZE)."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('optimize')"))
        return
    try:
        with conn.begin_nested():  # a user that does not own the index may not; no matter
            for index in ("ix_search_chunks_doc", "ix_search_chunks_subject"):
                conn.execute(text(f"SELECT gin_clean_pending_list('{index}'::regclass)"))
            # Fresh statistics: the planner's estimate of how many messages a word matches.
            conn.execute(text("ANALYZE search_chunks"))
    except SQLAlchemyError:
        pass


def index_stats(conn: Connection) -> dict[str, int]:
    """Counts for ``syncer index --status``: messages, normalized, indexed, index rows."""
    total = conn.execute(select(func.count()).select_from(messages)).scalar_one()
    normalized = conn.execute(
        select(func.count()).where(messages.c.normalizer_version.is_not(None))
    ).scalar_one()
    indexed = conn.execute(
        select(func.count()).select_from(messages).where(_indexed(conn))
    ).scalar_one()
    if conn.dialect.name == "sqlite":
        rows = conn.execute(select(func.count()).select_from(_fts)).scalar_one()
    else:
        rows = conn.execute(select(func.count()).select_from(_chunks)).scalar_one()
    return {
        "messages": int(total),
        "normalized": int(normalized),
        "indexed": int(indexed),
        "index_rows": int(rows),
    }
