"""The parsed form of a search query: frozen dataclasses, one per construct.

Why a tree of plain values: the compiler (``syncer.archive.search.store``) and the
printer (:func:`syncer.query.printer.format_query`) both walk it, and the
property tests compare trees for equality. ``pos`` (the 0-based offset in the
query text) is kept for error messages but left out of equality, so a tree
printed and parsed again compares equal to the original.

A quoted word and the same word unquoted are the same :class:`Text`: a single
word is a phrase of one token, so the quotes change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["And", "Field", "MatchAll", "Not", "Or", "Query", "Text"]


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty query: every message."""


@dataclass(frozen=True, slots=True)
class Text:
    """Free text: a word or a "quoted phrase", searched in every indexed field.

    :ivar prefix: the user wrote a trailing ``*`` (``invoic*``): the last word is a prefix.
    """

    value: str
    prefix: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """A field term such as ``from:alice`` or ``larger:10k``.

    :ivar name: the field, lower-cased (one of :data:`syncer.query.fields.FIELDS`).
    :ivar value: the value, already checked and put in canonical form by the parser
        (e.g. ``flag:\\Seen`` → ``seen``, ``sha256:`` lower-cased, ``message-id:``
        without angle brackets).
    :ivar prefix: for ``subject:`` and ``body:`` only, a trailing ``*``.
    """

    name: str
    value: str
    prefix: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT x`` or ``-x``."""

    operand: Query


@dataclass(frozen=True, slots=True)
class And:
    """Two or more terms that must all match (juxtaposition or ``AND``)."""

    operands: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Two or more terms of which one must match (``OR``)."""

    operands: tuple[Query, ...]


Query = MatchAll | Text | Field | Not | And | Or
