"""Searching the archive with the query language: :class:`StoreSearch`.

Why this module exists: search (``syncer search``), retention, legal holds,
digests, forwards and export all select messages with the same query language
(:mod:`syncer.query`); this mixin of :class:`~syncer.archive.store.ArchiveStore`
is the one way they do it:

* :meth:`StoreSearch.select_message_ids` — matching ``messages.id`` values,
  ascending, in batches (each batch its own short read transaction, so a caller
  may delete between batches);
* :meth:`StoreSearch.count_messages`;
* :meth:`StoreSearch.search` — one :class:`~syncer.model.SearchHit` per message,
  sorted and paged, with its folders and a snippet.

The query is compiled by :func:`compile_query` (see
:mod:`syncer.archive.search.compile` for what every term means).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, false, func, select

from syncer.archive.models import accounts as accounts_table
from syncer.archive.models import entries, folders, message_texts, messages
from syncer.archive.store_base import StoreCore
from syncer.errors import UsageError
from syncer.model import SearchHit

# The parser, the compiler, the index and the snippets are imported by the methods that use
# them: every ArchiveStore (a no-change sync's included) imports this mixin.

__all__ = ["SORTS", "StoreSearch"]

#: The orders :meth:`StoreSearch.search` knows; ``-`` means descending.
SORTS = ("-date", "date", "size", "-size", "relevance")


class StoreSearch(StoreCore):
    """Query-language selection over the archive (see the module docstring)."""

    def _where(self, query: str, accounts: Sequence[str] | None = None) -> ColumnElement[bool]:
        """:raises QuerySyntaxError: for a malformed query."""
        from syncer.archive.search.compile import compile_query
        from syncer.query import parse

        return _within(compile_query(parse(query), self._caps.dialect), accounts)

    def select_message_ids(
        self,
        query: str,
        *,
        after_pk: int | None = None,
        batch_size: int = 1000,
        now: datetime | None = None,
        accounts: Sequence[str] | None = None,
    ) -> Iterator[list[int]]:
        """The ids of the messages matching ``query``, ascending, ``batch_size`` at a time.

        :param query: the query language; the empty string matches every message.
        :param after_pk: only ids above it (messages archived since that one).
        :param now: the clock for relative terms; the language has none yet, so
            it is accepted and ignored (callers pass it so they need not change).
        :param accounts: only messages in (or once in) a folder of these accounts
            (see :func:`_within`); None: every message.
        :raises QuerySyntaxError: for a malformed query (before the first batch).
        :raises ArchiveError: when the database fails.
        """
        del now
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, not {batch_size}.")
        where = self._where(query, accounts)
        return self._batches(where, after_pk, batch_size)

    def _batches(
        self, where: ColumnElement[bool], after_pk: int | None, batch_size: int
    ) -> Iterator[list[int]]:
        last = after_pk
        while True:
            statement = select(messages.c.id).where(where).order_by(messages.c.id).limit(batch_size)
            if last is not None:
                statement = statement.where(messages.c.id > last)
            with self._query("selecting messages by query") as conn:
                batch = [int(pk) for pk in conn.execute(statement).scalars()]
            if batch:
                yield batch
            if len(batch) < batch_size:
                return
            last = batch[-1]

    def count_messages(
        self, query: str, *, at_most: int | None = None, accounts: Sequence[str] | None = None
    ) -> int:
        """How many messages match ``query``.

        :param at_most: stop counting past this many (the answer is then
            ``at_most + 1``): a page showing "more than 10,000" need not read
            every match of a broad query.
        :param accounts: as for :meth:`select_message_ids`.
        :raises QuerySyntaxError: for a malformed query.
        """
        where = self._where(query, accounts)
        if at_most is None:
            statement = select(func.count()).select_from(messages).where(where)
        else:
            matches = select(messages.c.id).where(where).limit(at_most + 1).subquery()
            statement = select(func.count()).select_from(matches)
        with self._query("counting messages by query") as conn:
            return int(conn.execute(statement).scalar_one())

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        offset: int = 0,
        sort: str = "-date",
        accounts: Sequence[str] | None = None,
        snippets: bool = True,
    ) -> list[SearchHit]:
        """The messages matching ``query``, one hit each, sorted and paged.

        :param sort: one of :data:`SORTS`. ``date`` is the Date header (messages
            without one come last either way), ``relevance`` ranks by the free
            text and ``subject:``/``body:`` terms (newest first without any).
        :param accounts: as for :meth:`select_message_ids`.
        :param snippets: False: every hit's ``snippet`` is ``""``, and the texts are
            not read (a caller that prints no snippet, such as ``syncer search``'s
            columns, pays neither the reads nor the snippet module's import).
        :raises QuerySyntaxError: for a malformed query.
        :raises UsageError: for an unknown sort or a negative limit or offset.
        """
        if sort not in SORTS:
            raise UsageError(f"Unknown sort {sort!r}; use one of {', '.join(SORTS)}.")
        if limit < 0 or offset < 0:
            raise UsageError("limit and offset must not be negative.")
        from syncer.archive.search.compile import compile_query, positive_texts
        from syncer.query import parse

        parsed = parse(query)
        where = _within(compile_query(parsed, self._caps.dialect, probe=sort == "-date"), accounts)
        texts = positive_texts(parsed)
        statement = (
            select(
                messages.c.id,
                messages.c.sha256,
                messages.c.date,
                messages.c.sender,
                messages.c.subject,
                messages.c.size,
            )
            .where(where)
            .order_by(*self._order(sort, texts))
            .limit(limit)
            .offset(offset)
        )
        with self._query("searching the archive") as conn:
            rows = conn.execute(statement).all()
            pks = [int(row.id) for row in rows]
            where_found = _folders_of(conn, pks)
            snippet_of = _snippets_of(conn, pks, texts) if snippets else {}
        return [
            SearchHit(
                id=int(row.id),
                sha256=row.sha256,
                date=row.date,
                sender=row.sender,
                subject=row.subject,
                size=int(row.size),
                folders=where_found.get(int(row.id), ()),
                snippet=snippet_of.get(int(row.id), ""),
            )
            for row in rows
        ]

    def _order(self, sort: str, texts: Sequence[str]) -> list[Any]:
        newest = [messages.c.date.desc().nulls_last(), messages.c.id.desc()]
        if sort == "relevance":
            if not texts:
                return newest
            from syncer.archive.search.index import relevance

            return [relevance(self._caps.dialect, texts).desc(), *newest]
        if sort == "date":
            return [messages.c.date.asc().nulls_last(), messages.c.id.asc()]
        if sort == "size":
            return [messages.c.size.asc(), messages.c.id.asc()]
        if sort == "-size":
            return [messages.c.size.desc(), messages.c.id.desc()]
        return newest


def _within(where: ColumnElement[bool], accounts: Sequence[str] | None) -> ColumnElement[bool]:
    """``where`` limited to messages with an entry (live or gone) in a folder of ``accounts``.

    Why not the query language's ``account:`` terms: those are ``IN`` lists that
    SQLite materializes whole (every entry of the account) before the first hit;
    this is a correlated ``EXISTS`` on ``entries.message_pk``, probed only for
    the candidates the rest of the query yields (the web archive confines a
    reader with it on every search).
    """
    if accounts is None:
        return where
    if not accounts:
        return false()
    chosen = select(folders.c.id).where(
        folders.c.account_id.in_(
            select(accounts_table.c.id).where(accounts_table.c.name.in_(accounts))
        )
    )
    held = exists(
        select(entries.c.id).where(
            entries.c.message_pk == messages.c.id, entries.c.folder_id.in_(chosen)
        )
    )
    return and_(where, held)


def _folders_of(conn: Connection, pks: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The display names of the folders each message is (or was) in, sorted, without repeats."""
    if not pks:
        return {}
    rows = conn.execute(
        select(entries.c.message_pk, folders.c.display_name)
        .join(folders, folders.c.id == entries.c.folder_id)
        .where(entries.c.message_pk.in_(pks))
        .distinct()
    )
    found: dict[int, set[str]] = {}
    for pk, name in rows:
        found.setdefault(int(pk), set()).add(name)
    return {pk: tuple(sorted(names)) for pk, names in found.items()}


def _snippets_of(conn: Connection, pks: Sequence[int], terms: Sequence[str]) -> dict[int, str]:
    """Each message's snippet: a line of the first
    :data:`~syncer.archive.search.snippet.SNIPPET_SOURCE` characters of its text around
    ``terms`` (a message without text has none here, and gets ``""``)."""
    from syncer.archive.search.snippet import SNIPPET_SOURCE, snippet

    if not pks:
        return {}
    rows = conn.execute(
        select(
            message_texts.c.message_pk, func.substr(message_texts.c.text, 1, SNIPPET_SOURCE)
        ).where(message_texts.c.message_pk.in_(pks))
    )
    return {int(pk): snippet(text, terms) for pk, text in rows}
