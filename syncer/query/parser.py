"""Text → :mod:`syncer.query.ast`: the lexer and a recursive-descent parser.

Why hand-written: the grammar is small, and a hand-written parser gives each
error the exact position and a sentence a user understands.

Grammar (``NOT`` binds tighter than ``AND``, which binds tighter than ``OR``)::

    query    := [or_expr]
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | word | phrase | field ":" value

* ``AND``, ``OR`` and ``NOT`` are operators only in capitals and unquoted;
  ``"OR"`` searches for the word.
* ``-`` negates when it starts a term and is directly followed by it (``-from:bob``,
  ``-(a b)``); inside a word it is part of the word (``e-mail``).
* A phrase is ``"..."``; inside it ``\\`` escapes the next character (``\\"``).
* A word or phrase directly followed by ``*`` is a prefix search (``invoic*``).
* ``name:`` starts a field term when ``name`` is letters, digits, ``-`` and ``_``
  beginning with a letter; an unknown name is an error (quote the word to search
  for it: ``"re:"``). The value is a word or a phrase.

Known limit: nesting (parentheses and negations) is limited to
:data:`MAX_DEPTH` levels, so a hostile query cannot exhaust the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from syncer.query.ast import And, Field, MatchAll, Not, Or, Query, Text
from syncer.query.errors import QuerySyntaxError
from syncer.query.fields import FIELDS, TEXT_FIELDS, ValueProblem, canonical_value

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_TERMS", "parse"]

MAX_DEPTH = 64
MAX_LENGTH = 10_000
#: At most this many terms: SQLite refuses deeper expression trees ("Expression tree
#: is too large", about 1,000 nodes) and PostgreSQL spent minutes on 1,100 ``from:``
#: terms; a longer query is a query error (exit 2), not an archive error.
MAX_TERMS = 200
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*:")
_STOP = frozenset('()"')
_KEYWORDS = frozenset({"AND", "OR", "NOT"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "-", "AND", "OR", "NOT", "term"
    pos: int
    term: Text | Field | None = None


def parse(text: str) -> Query:
    """Parse a search query; the empty (or blank) query is :class:`MatchAll`.

    :raises QuerySyntaxError: naming the column of the first problem.
    """
    if len(text) > MAX_LENGTH:
        raise QuerySyntaxError(text[:80], 80, f"the query is longer than {MAX_LENGTH} characters")
    tokens = _Lexer(text).tokens()
    if not tokens:
        return MatchAll()
    terms = [token for token in tokens if token.kind == "term"]
    if len(terms) > MAX_TERMS:
        raise QuerySyntaxError(
            text, terms[MAX_TERMS].pos, f"the query has more than {MAX_TERMS} terms"
        )
    return _Parser(text, tokens).query()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def error(self, pos: int, reason: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.text, pos, reason)

    def tokens(self) -> list[_Token]:
        text = self.text
        out: list[_Token] = []
        while True:
            while self.i < len(text) and text[self.i].isspace():
                self.i += 1
            if self.i >= len(text):
                return out
            start, ch = self.i, text[self.i]
            if ch in "()":
                self.i += 1
                out.append(_Token(ch, start))
            elif ch == "-":
                after = text[start + 1] if start + 1 < len(text) else ""
                if not after or after.isspace() or after == ")":
                    raise self.error(start, "'-' must be directly followed by the term it excludes")
                self.i += 1
                out.append(_Token("-", start))
            else:
                out.append(self.term(start))

    def term(self, start: int) -> _Token:
        text = self.text
        if text[start] == '"':
            value = self.phrase(start)
            return _Token("term", start, Text(value, self.star(), start))
        field = _FIELD.match(text, start)
        if field is not None:
            return _Token("term", start, self.field(start, field.group()[:-1]))
        word = self.word()
        if word in _KEYWORDS:
            return _Token(word, start)
        prefix = word.endswith("*")
        value = word.rstrip("*")
        if not value:
            raise self.error(start, "'*' must follow a word, as in invoic*")
        return _Token("term", start, Text(value, prefix, start))

    def field(self, start: int, name: str) -> Field:
        folded = name.lower()
        if folded not in FIELDS:
            known = ", ".join(f"{f}:" for f in FIELDS)
            raise self.error(
                start, f"unknown field '{name}:' (known fields: {known}); quote it to search for it"
            )
        self.i = value_at = start + len(name) + 1
        text = self.text
        quoted = value_at < len(text) and text[value_at] == '"'
        if quoted:
            raw = self.phrase(value_at)
        elif value_at < len(text) and not text[value_at].isspace() and text[value_at] not in _STOP:
            raw = self.word()
        else:
            raise self.error(value_at, f"{folded}: needs a value (quote a value with spaces)")
        prefix = False
        if folded in TEXT_FIELDS:
            prefix = self.star() if quoted else raw.endswith("*")
            raw = raw if quoted else raw.rstrip("*")
        try:
            value = canonical_value(folded, raw, quoted=quoted)
        except ValueProblem as exc:
            raise self.error(value_at, str(exc)) from None
        return Field(folded, value, prefix, start)

    def word(self) -> str:
        text, start = self.text, self.i
        while self.i < len(text) and not text[self.i].isspace() and text[self.i] not in _STOP:
            self.i += 1
        return text[start : self.i]

    def phrase(self, start: int) -> str:
        """The text of the phrase opening at ``start``; leaves ``i`` after its closing quote."""
        text, i, out = self.text, start + 1, []
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
            elif ch == '"':
                self.i = i + 1
                if not "".join(out).strip():
                    raise self.error(start, "an empty phrase matches nothing; remove it")
                return "".join(out)
            else:
                out.append(ch)
                i += 1
        raise self.error(start, 'this quote is never closed (add a closing ")')

    def star(self) -> bool:
        """Consume a ``*`` right after a phrase."""
        if self.i < len(self.text) and self.text[self.i] == "*":
            self.i += 1
            return True
        return False


class _Parser:
    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def error(self, pos: int, reason: str) -> QuerySyntaxError:
        return QuerySyntaxError(self.text, pos, reason)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def query(self) -> Query:
        result = self.or_expr()
        token = self.peek()
        if token is not None:
            # Only an unmatched ')' stops or_expr before the end.
            raise self.error(token.pos, "this ')' has no matching '('")
        return result

    def or_expr(self) -> Query:
        operands = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.i += 1
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Query:
        operands = [self.unary()]
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.i += 1
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Query:
        token = self.peek()
        if token is None:
            raise self.error(len(self.text), "the query ends where a term was expected")
        if token.kind in ("NOT", "-"):
            self.i += 1
            with self.nested(token):
                return Not(self.unary())
        if token.kind == "(":
            self.i += 1
            with self.nested(token):
                inner = self.peek()
                if inner is None:
                    raise self.error(token.pos, "this '(' is never closed (add a ')')")
                if inner.kind == ")":
                    raise self.error(
                        token.pos, "empty parentheses; put a term inside or remove them"
                    )
                result = self.or_expr()
            closing = self.peek()
            if closing is None:
                raise self.error(token.pos, "this '(' is never closed (add a ')')")
            self.i += 1
            return result
        if token.kind == "term":
            assert token.term is not None
            self.i += 1
            return token.term
        if token.kind == ")":
            raise self.error(token.pos, "a term was expected before this ')'")
        raise self.error(token.pos, f"{token.kind} needs a term on each side")

    def nested(self, token: _Token) -> _Depth:
        return _Depth(self, token)


class _Depth:
    """Counts nesting while a ``(`` or a negation is being parsed."""

    def __init__(self, parser: _Parser, token: _Token) -> None:
        self.parser = parser
        self.token = token

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_DEPTH:
            raise self.parser.error(
                self.token.pos, f"the query nests deeper than {MAX_DEPTH} levels"
            )

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1
