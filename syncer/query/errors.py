"""The one error a malformed query raises: :class:`QuerySyntaxError`.

Why it carries the query: the user sees which character is wrong, as

    Malformed query at column 5: unknown field 'frm:' (known fields: from:, to:, ...)
      is:x frm:bob
           ^

It is a :class:`~syncer.errors.UsageError`, so the CLI prints it without a
traceback and exits 2.
"""

from __future__ import annotations

import unicodedata

from syncer.errors import UsageError

__all__ = ["QuerySyntaxError"]


class QuerySyntaxError(UsageError):
    """A query that cannot be parsed.

    :ivar query: the query as given.
    :ivar column: the 1-based column of the problem (``len(query) + 1`` for "at the end").
    :ivar reason: what is wrong, without the position.
    """

    def __init__(self, query: str, pos: int, reason: str) -> None:
        self.query = query
        self.column = pos + 1
        self.reason = reason
        echo = "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in query)
        pad = sum(_width(ch) for ch in echo[:pos])
        super().__init__(
            f"Malformed query at column {self.column}: {reason}\n  {echo}\n  {' ' * pad}^"
        )


def _width(ch: str) -> int:
    """Terminal columns of one character: CJK (wide, fullwidth) take two."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
