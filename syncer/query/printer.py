"""AST → query text: :func:`format_query`, the inverse of :func:`~syncer.query.parser.parse`.

Why: a query stored in the archive (a legal hold, a retention policy) or shown
in a log can be written in canonical form, and ``parse(format_query(q)) == q``
holds for every tree (tested as a property), which pins the grammar down.
"""

from __future__ import annotations

import re

from syncer.query.ast import And, Field, MatchAll, Not, Or, Query, Text
from syncer.query.fields import CONTAINS_FIELDS, TEXT_FIELDS

__all__ = ["format_query"]

_FIELD_START = re.compile(r"[A-Za-z][A-Za-z0-9_-]*:")


def format_query(query: Query) -> str:
    """The canonical text of ``query``."""
    if isinstance(query, MatchAll):
        return ""
    if isinstance(query, Text):
        return _text(query)
    if isinstance(query, Field):
        return _field(query)
    if isinstance(query, Not):
        inner = query.operand
        return "-" + (
            f"({format_query(inner)})" if isinstance(inner, And | Or) else format_query(inner)
        )
    if isinstance(query, And):
        return " ".join(
            f"({format_query(q)})" if isinstance(q, And | Or) else format_query(q)
            for q in query.operands
        )
    return " OR ".join(
        f"({format_query(q)})" if isinstance(q, Or) else format_query(q) for q in query.operands
    )


def _text(term: Text) -> str:
    value = term.value
    bare = (
        _plain(value)
        and not value.startswith("-")
        and not value.endswith("*")
        and value not in ("AND", "OR", "NOT")
        and not _FIELD_START.match(value)
    )
    return (value if bare else _quote(value)) + ("*" if term.prefix else "")


def _field(term: Field) -> str:
    value = term.value
    bare = _plain(value)
    if term.name in TEXT_FIELDS:
        bare = bare and not value.endswith("*")
    if term.name in CONTAINS_FIELDS:
        bare = bare and not value.startswith("*") and not value.endswith("*")
    return f"{term.name}:" + (value if bare else _quote(value)) + ("*" if term.prefix else "")


def _plain(value: str) -> bool:
    """Can ``value`` be written without quotes (as far as every kind of term agrees)?"""
    return bool(value) and not any(ch.isspace() or ch in '()"\\' for ch in value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
