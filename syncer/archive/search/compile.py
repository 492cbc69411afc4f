"""A parsed query (:mod:`syncer.query`) → one SQLAlchemy Core condition over ``messages``.

Why this module exists: every part of syncer that selects messages (search,
retention, legal holds, digests, forwards, export) must mean the same thing by
the same query on SQLite and on PostgreSQL. The condition is built here once,
from bound parameters only (user text never becomes SQL), and every term is an
``IN``/``EXISTS`` subquery on an indexed column or a comparison on an indexed
column of ``messages``, so nothing is evaluated row by row in Python.

Every condition is two-valued (never SQL NULL), so ``NOT`` means "everything
else": a message without a Date is ``-before:2020-01-01``, not neither.

Semantics (the README's "Query language" section says the same for users):

* free words and phrases → ``text_match(..., "all", ...)``; ``subject:`` and
  ``body:`` → the "subject"/"body" scopes (:mod:`syncer.archive.search.index`).
* ``from:``/``to:``/``cc:`` → a row of ``addresses`` with that role whose
  address or display name contains the value; ``filename:`` → an attachment
  whose file name contains it. Case is folded for ASCII letters only, the same
  way on both databases (SQLite's ``lower()`` folds ASCII only, so PostgreSQL
  uses ``translate()`` rather than its locale-dependent ``lower()``).
* ``folder:`` → an entry (live or gone) in a folder whose wire or display
  name equals the value, ASCII case folded; ``account:`` → an entry in a
  folder of that account (exact name).
* ``flag:X`` → a live entry carries X (case-insensitive, :rfc:`3501` keywords
  are); a message with no live entry (gone from the server) is judged by the
  flags its entries had when they went. ``is:unread`` is ``NOT flag:seen``.
* ``label:NAME`` → an entry carries the Gmail label NAME (X-GM-LABELS, or
  ``X-Gmail-Labels`` of a Takeout import), ASCII case folded, the whole name:
  ``label:Work`` does not match ``Work/Projects``. Like ``flag:``, a message gone
  from the server is judged by the labels its entries had when they went.
* *live entry*: neither gone (expunged) nor superseded (UIDVALIDITY reset);
  a POP3 entry stops being live once its account's ``pop3_seen`` row for the
  message has ``deleted_at``. ``is:gone``: at least one entry and no live one;
  ``is:live``: exactly the messages that are not ``is:gone``.
* dates: the Date header (UTC), else the earliest INTERNALDATE, else when the
  archive first saw the message. ``before:D`` is strictly before D 00:00 UTC,
  ``after:D`` is at or after D+1 00:00 UTC (strictly after day D), ``on:D`` is
  within day D.
* ``larger:N``/``smaller:N`` compare the raw size strictly (``k`` = 1024).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Text,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.expression import FromClause, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from syncer.archive.models import (
    UTCDateTime,
    accounts,
    addresses,
    attachments,
    entries,
    folders,
    messages,
    pop3_seen,
)
from syncer.archive.search.index import Scope, text_match, text_match_any
from syncer.archive.store_pop3 import POP3_UIDVALIDITY
from syncer.query import And, Field, MatchAll, Not, Or, Query
from syncer.query import Text as TextTerm
from syncer.query.fields import SYSTEM_FLAGS, day, size_bytes

__all__ = ["compile_query", "fold_ascii", "like_contains", "positive_texts"]

Condition = ColumnElement[bool]
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())
_ESCAPE = "!"
_TEXT_SCOPES: dict[str, Scope] = {"subject": "subject", "body": "body"}
_ROLES = ("from", "to", "cc")


def compile_query(query: Query, dialect: str, *, probe: bool = False) -> Condition:
    """The condition on ``messages`` that is true exactly for the messages ``query`` matches.

    :param dialect: ``sqlite`` or ``postgresql`` (``engine.dialect.name``).
    :param probe: the caller reads messages newest first (``ORDER BY date DESC
        LIMIT n``). SQLite, which keeps no statistics, would otherwise let the
        first ``id IN (subquery)`` term drive the query: look up every match and
        sort them all, 30-40 ms for a word found in a third of 100,000 messages.
        With ``probe`` those terms are written ``+(id IN ...)``, which SQLite
        may not use as an index, so it walks the date index and stops after n
        matches (a few ms; at most ~10 ms when almost nothing matches). Terms
        on indexed columns of ``messages`` (dates, thread, Message-ID, SHA-256)
        still drive the query. On PostgreSQL, whose planner has statistics,
        full-text terms become ``EXISTS`` (see ``text_match_any``'s ``walk``).
    """
    return _Compiler(dialect, probe=probe).compile(query)


def positive_texts(query: Query) -> list[str]:
    """The free text and ``subject:``/``body:`` values not under a NOT: what to rank and mark."""
    if isinstance(query, TextTerm):
        return [query.value]
    if isinstance(query, Field) and query.name in _TEXT_SCOPES:
        return [query.value]
    if isinstance(query, And | Or):
        return [text for operand in query.operands for text in positive_texts(operand)]
    return []


def fold_ascii(text: str) -> str:
    """``text`` with ASCII letters lower-cased, as the databases fold for contains matches."""
    return text.translate(_FOLD)


def like_contains(text: str) -> str:
    """A LIKE pattern (escape ``!``) matching any string that contains ``text``."""
    escaped = text.replace(_ESCAPE, _ESCAPE * 2).replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class _Compiler:
    def __init__(self, dialect: str, *, probe: bool = False) -> None:
        self.dialect = dialect
        self.probe = probe and dialect == "sqlite"
        self.walk = probe and dialect == "postgresql"

    def member(self, condition: Condition) -> Condition:
        """An ``id IN (subquery)`` term; with ``probe``, one SQLite cannot drive the query with."""
        if not self.probe:
            return condition
        return UnaryExpression(condition.self_group(), operator=custom_op("+"), type_=Boolean())

    def compile(self, query: Query) -> Condition:
        if isinstance(query, MatchAll):
            return true()
        if isinstance(query, TextTerm):
            return self.text("all", query.value, query.prefix)
        if isinstance(query, Not):
            return not_(self.compile(query.operand))
        if isinstance(query, And):
            return and_(*(self.compile(q) for q in query.operands))
        if isinstance(query, Or):
            return or_(*self.any_of(query.operands))
        return self.field(query)

    def any_of(self, operands: tuple[Query, ...]) -> list[Condition]:
        """The operands of an OR; on PostgreSQL its text terms as one index lookup.

        ``invoice OR Rechnung`` would otherwise build the set of each word's
        messages (tens of thousands each) before the first hit could be read.
        """
        texts = [_text_term(q) for q in operands]
        if self.dialect != "postgresql" or sum(t is not None for t in texts) < 2:
            return [self.compile(q) for q in operands]
        terms = [t for t in texts if t is not None]
        rest = [self.compile(q) for q, t in zip(operands, texts, strict=True) if t is None]
        return [self.member(text_match_any(self.dialect, terms, walk=self.walk)), *rest]

    # ------------------------------------------------------------------ terms

    # Allowed (C901): one branch per field term of the query language.
    def field(self, term: Field) -> Condition:  # noqa: C901
        name, value = term.name, term.value
        if name in _TEXT_SCOPES:
            return self.text(_TEXT_SCOPES[name], value, term.prefix)
        if name in _ROLES:
            return self.address(name, value)
        if name == "filename":
            pattern = bindparam(None, like_contains(fold_ascii(value)), type_=Text)
            found = select(attachments.c.message_pk).where(
                self.like(attachments.c.filename, pattern)
            )
            return self.member(messages.c.id.in_(found))
        if name in ("folder", "account"):
            return self.in_folders(name, value)
        if name == "flag":
            return self.flag(value)
        if name == "label":
            return self.label(value)
        if name == "is":
            return self.is_(value)
        if name == "has":  # has:attachment, the only value the parser lets through
            return messages.c.has_attachments.is_(True)
        if name == "larger":
            return messages.c.size > size_bytes(value)
        if name == "smaller":
            return messages.c.size < size_bytes(value)
        if name in ("before", "after", "on"):
            return self.dates(name, day(value, name))
        if name == "thread":
            return _equals(messages.c.thread_key, value)
        if name == "message-id":
            return _equals(messages.c.message_id_header, f"<{value}>")
        # sha256, the last field the parser knows
        return messages.c.sha256 == value

    def text(self, scope: Scope, value: str, prefix: bool) -> Condition:
        if self.walk:
            return text_match_any(self.dialect, [(scope, value, prefix)], walk=True)
        return self.member(text_match(self.dialect, scope, value, prefix=prefix))

    def address(self, role: str, value: str) -> Condition:
        pattern = bindparam(None, like_contains(fold_ascii(value)), type_=Text)
        found = select(addresses.c.message_pk).where(
            addresses.c.role == role,
            or_(
                self.like(addresses.c.address, pattern),
                self.like(addresses.c.display_name, pattern),
            ),
        )
        return self.member(messages.c.id.in_(found))

    def in_folders(self, name: str, value: str) -> Condition:
        if name == "folder":
            folded = bindparam(None, fold_ascii(value), type_=Text)
            chosen = select(folders.c.id).where(
                or_(
                    self.fold(folders.c.name) == folded, self.fold(folders.c.display_name) == folded
                )
            )
        else:
            chosen = select(folders.c.id).where(
                folders.c.account_id.in_(select(accounts.c.id).where(accounts.c.name == value))
            )
        found = select(entries.c.message_pk).where(entries.c.folder_id.in_(chosen))
        return self.member(messages.c.id.in_(found))

    def flag(self, value: str) -> Condition:
        flag = fold_ascii(SYSTEM_FLAGS.get(value, value))
        pattern = bindparam(None, "% " + like_contains(flag)[1:-1] + " %", type_=Text)
        entry, other = entries.alias("e"), entries.alias("e2")
        spaced = literal(" ", Text).concat(entry.c.flags).concat(" ")
        still_live = exists().where(other.c.message_pk == entry.c.message_pk, _live(other))
        found = select(entry.c.message_pk).where(
            self.like(spaced, pattern), or_(_live(entry), not_(still_live))
        )
        return self.member(messages.c.id.in_(found))

    def label(self, value: str) -> Condition:
        # entries.labels is one label per line: wrapped in line breaks, a whole name
        # is "\n" + name + "\n" somewhere in it.
        pattern = bindparam(
            None, "%\n" + like_contains(fold_ascii(value))[1:-1] + "\n%", type_=Text
        )
        entry, other = entries.alias("e"), entries.alias("e2")
        wrapped = literal("\n", Text).concat(entry.c.labels).concat("\n")
        still_live = exists().where(other.c.message_pk == entry.c.message_pk, _live(other))
        found = select(entry.c.message_pk).where(
            entry.c.labels.is_not(None),
            self.like(wrapped, pattern),
            or_(_live(entry), not_(still_live)),
        )
        return self.member(messages.c.id.in_(found))

    def is_(self, value: str) -> Condition:
        if value == "unread":
            return not_(self.flag("seen"))
        if value in ("gone", "live"):
            # One pass over entries grouped by message (the message_pk index gives the order):
            # a message is gone when it has entries and none of them is live.
            entry = entries.alias("e")
            gone = self.member(
                messages.c.id.in_(
                    select(entry.c.message_pk)
                    .group_by(entry.c.message_pk)
                    .having(func.max(case((_live(entry), 1), else_=0)) == 0)
                )
            )
            return gone if value == "gone" else not_(gone)
        column = {
            "suspicious": messages.c.suspicious,
            "signed": messages.c.signed,
            "encrypted": messages.c.encrypted,
        }[value]
        return column.is_(True)

    def dates(self, name: str, start: datetime) -> Condition:
        try:
            end: datetime | None = start + timedelta(days=1)
        except OverflowError:  # 9999-12-31: nothing is after it
            end = None
        if name == "before":
            return _date_between(None, start)
        if name == "after":
            return false() if end is None else _date_between(end, None)
        return _date_between(start, end)

    def like(self, column: Any, pattern: Any) -> Condition:
        """``column LIKE pattern`` (escape ``!``), ASCII letters folded on both databases.

        SQLite's LIKE already ignores the case of ASCII letters (and only theirs),
        so it gets the column as it is: a ``lower()`` per row would only cost time.
        """
        if self.dialect == "postgresql":
            column = self.fold(column)
        return column.like(pattern, escape=_ESCAPE)  # type: ignore[no-any-return]

    def fold(self, column: Any) -> ColumnElement[str]:
        """``column`` with ASCII letters lower-cased, identically on both databases."""
        if self.dialect == "postgresql":
            return func.translate(column, _UPPER, _UPPER.lower(), type_=Text)
        return func.lower(column, type_=Text)


def _text_term(query: Query) -> tuple[Scope, str, bool] | None:
    """``(scope, text, prefix)`` for free text and ``subject:``/``body:``; None for the rest."""
    if isinstance(query, TextTerm):
        return ("all", query.value, query.prefix)
    if isinstance(query, Field) and query.name in _TEXT_SCOPES:
        return (_TEXT_SCOPES[query.name], query.value, query.prefix)
    return None


def _equals(column: Any, value: str) -> Condition:
    """``column = value`` that is false, not NULL, where the column is NULL."""
    return and_(column.is_not(None), column == bindparam(None, value, type_=Text))


def _live(entry: FromClause) -> Condition:
    """``entry`` (an ``entries`` alias) is live: not gone, superseded, or deleted by POP3."""
    pop3_deleted = exists().where(
        pop3_seen.c.message_pk == entry.c.message_pk,
        pop3_seen.c.deleted_at.is_not(None),
        pop3_seen.c.account_id == folders.c.account_id,
        folders.c.id == entry.c.folder_id,
    )
    return and_(
        entry.c.gone_at.is_(None),
        entry.c.superseded_at.is_(None),
        or_(entry.c.uidvalidity != POP3_UIDVALIDITY, not_(pop3_deleted)),
    )


def _date_between(start: datetime | None, end: datetime | None) -> Condition:
    """The message's date is in [start, end): the Date header, else its fallbacks.

    Split in two so the Date-header branch can use the index on ``messages.date``.
    """
    earliest = (
        select(func.min(entries.c.internaldate))
        .where(entries.c.message_pk == messages.c.id)
        .scalar_subquery()
    )
    fallback = func.coalesce(earliest, messages.c.first_seen_at, type_=UTCDateTime)

    def within(column: Any) -> list[Condition]:
        bounds: list[Condition] = []
        if start is not None:
            bounds.append(column >= bindparam(None, start, type_=UTCDateTime))
        if end is not None:
            bounds.append(column < bindparam(None, end, type_=UTCDateTime))
        return bounds

    return or_(
        and_(messages.c.date.is_not(None), *within(messages.c.date)),
        and_(messages.c.date.is_(None), *within(fallback)),
    )
