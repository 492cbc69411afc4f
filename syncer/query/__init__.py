"""The search query language: one parser, shared by search, retention, holds, digests,
forwards and export.

Why a package of its own: the language (words, phrases, field terms, AND/OR/NOT,
parentheses) is pure syntax and knows no SQL; the archive compiles the parsed
query into parameterized SQL for each backend (``syncer.archive.search.store``).

Public API: :func:`parse` (text → :data:`Query`, a tree of frozen dataclasses
from :mod:`syncer.query.ast`), :func:`format_query` (the inverse) and
:class:`QuerySyntaxError` (positioned, exit 2). The grammar is described in
:mod:`syncer.query.parser`, the fields and their values in
:mod:`syncer.query.fields`.
"""

from __future__ import annotations

from syncer.query.ast import And, Field, MatchAll, Not, Or, Query, Text
from syncer.query.errors import QuerySyntaxError
from syncer.query.fields import FIELDS
from syncer.query.parser import parse
from syncer.query.printer import format_query

__all__ = [
    "FIELDS",
    "And",
    "Field",
    "MatchAll",
    "Not",
    "Or",
    "Query",
    "QuerySyntaxError",
    "Text",
    "format_query",
    "parse",
]
