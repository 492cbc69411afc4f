"""A normalized message's search document and its index rows, without a database.

Why this module exists: the index rows of a message are computed where the
message was parsed, in normalization's worker processes, so the process that
writes to the archive only inserts them. Those workers must stay small (they
are one per core, next to a sync): this module imports neither SQLAlchemy nor
the table definitions, only the tokenizer (:mod:`syncer.archive.search.tokens`),
and that only when rows are made.

The document is what :func:`syncer.archive.search.index.index_messages` reads
back from the stored rows (text cleaned as it is stored, attachments whose
part path is too long for the table left out), so indexing from a result
and re-indexing from the archive give the same rows (a test checks both
databases).

Public API: :func:`index_document`, :func:`index_fields`, :func:`document_rows`,
:func:`clean`, :data:`IndexRow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from syncer.mime.parsed import NormalizedMessage

__all__ = ["IndexRow", "clean", "document_rows", "index_document", "index_fields"]

#: One prepared index row: (chunk number, subject, addresses, body, attachments) for
#: SQLite's FTS5 columns; (chunk number, document tsvector, subject tsvector) for PostgreSQL.
IndexRow = tuple[Any, ...]

#: PostgreSQL weight of each field (ts_rank weighs A highest), by field name.
WEIGHTS = {"subject": "A", "addresses": "B", "attachments": "C", "body": "D"}
#: The weights in FIELDS order (subject, addresses, body, attachments).
_FIELD_WEIGHTS = ("A", "B", "D", "C")
#: The subject's index in FIELDS: PostgreSQL also keeps its positions in their own column.
_SUBJECT = 0
#: The longest part path the attachments tables hold.
_MAX_PART_PATH = 64


def clean(value: str | None) -> str | None:
    """Text both databases accept: no NUL (PostgreSQL refuses it), no lone surrogate."""
    if value is None or (value.isascii() and "\x00" not in value):
        return value
    value = value.replace("\x00", "")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def index_fields(result: NormalizedMessage) -> list[str]:
    """The texts of a message's search document, in FIELDS order, as the stored rows give them."""
    names = [
        value
        for a in result.addresses
        for value in (clean(a.display_name), clean(a.address))
        if value
    ]
    texts: dict[str, list[str]] = {}
    for t in result.attachment_texts:
        if len(t.part_path) <= _MAX_PART_PATH:
            texts.setdefault(t.part_path, []).append(clean(t.text) or "")
    files: list[str] = []
    for a in result.attachments:
        if len(a.part_path) > _MAX_PART_PATH:
            continue
        filename = clean(a.filename)
        for extracted in texts.get(a.part_path, [""]):
            files.extend(value for value in (filename, extracted) if value)
    body = (clean(result.text) or "") if result.text else ""
    return [clean(result.subject) or "", "\n".join(names), body, "\n".join(files)]


def tsvector(positions: Iterable[tuple[int, int, str]], *, field_only: int | None = None) -> str:
    """A tsvector literal: each lexeme quoted, with its positions and field weights.

    :param field_only: only the positions of this field (the subject's own vector).
    """
    by_token: dict[str, list[str]] = {}
    for position, field, token in positions:
        if field_only is not None and field != field_only:
            continue
        by_token.setdefault(token, []).append(f"{position}{_FIELD_WEIGHTS[field]}")
    return " ".join(
        "'{}':{}".format(token.replace("\\", "\\\\").replace("'", "''"), ",".join(where))
        for token, where in by_token.items()
    )


def document_rows(dialect: str, fields: Sequence[str]) -> list[IndexRow]:
    """The index rows of one message's document (``fields`` in FIELDS order), ready to insert."""
    # Here, not at the top: the archive store imports clean() on every command.
    from syncer.archive.search.tokens import document_chunks

    chunks = document_chunks(fields)
    if dialect == "sqlite":
        return [(chunk.number, *chunk.field_texts()) for chunk in chunks]
    return [
        (
            chunk.number,
            tsvector(chunk.positions()),
            tsvector(chunk.positions(), field_only=_SUBJECT),
        )
        for chunk in chunks
    ]


def index_document(dialect: str, result: NormalizedMessage) -> list[IndexRow]:
    """The search index rows of a normalized message (``dialect``: sqlite or postgresql)."""
    return document_rows(dialect, index_fields(result))
