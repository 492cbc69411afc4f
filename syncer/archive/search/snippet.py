"""The snippet of a search hit: a line of the message's text around the first match.

Why in Python: the snippet is computed for the page of hits only (``--limit``
messages), from the first :data:`SNIPPET_SOURCE` characters of each message's
text, so it costs nothing per matching message; and one implementation gives
the same snippet on SQLite and PostgreSQL.

Matches are marked ``[[like this]]``. A word matches case-insensitively at the
start of a word (so ``invoic`` marks ``[[Invoic]]es``); text in scripts written
without spaces (Chinese, Japanese, Korean) matches anywhere, as the index does.
A message whose text has no match (the match was in the subject, an address or
an attachment, or beyond the first characters) gets the start of its text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MARK_CLOSE", "MARK_OPEN", "SNIPPET_SOURCE", "snippet"]

SNIPPET_SOURCE = 20_000
MARK_OPEN, MARK_CLOSE = "[[", "]]"
_WIDTH = 160
_BEFORE = 50
_WORD = re.compile(r"\w+")
# Hangul, Hiragana, Katakana, CJK ideographs (and their extensions and compatibility forms).
_SPACELESS = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


def snippet(text: str, terms: Sequence[str]) -> str:
    """About :data:`_WIDTH` characters of ``text`` around the first word of ``terms``, marked.

    Whitespace runs become one space; only the region around the match is
    flattened, so a long text costs one regex scan.
    """
    pattern = _pattern(terms)
    first = pattern.search(text) if pattern else None
    if first is None or pattern is None:
        return _clip(" ".join(text[: _WIDTH * 4].split()), 0, more=len(text) > _WIDTH * 4)
    offset = max(0, first.start() - _BEFORE * 4)
    region = text[offset : first.start() + _WIDTH * 4]
    flat = " ".join(region.split())
    found = pattern.search(flat)
    start = max(0, (found.start() if found else 0) - _BEFORE)
    if start:
        space = flat.rfind(" ", 0, start + 1)
        start = space + 1 if space >= start - 20 and space >= 0 else start
    window = _clip(flat, start, more=len(text) > offset + len(region), less=offset > 0)
    return pattern.sub(lambda m: f"{MARK_OPEN}{m.group()}{MARK_CLOSE}", window)


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    words = sorted({w for term in terms for w in _WORD.findall(term)}, key=len, reverse=True)
    if not words:
        return None
    parts = [re.escape(w) if _SPACELESS.search(w) else r"(?<!\w)" + re.escape(w) for w in words]
    return re.compile("|".join(parts), re.IGNORECASE)


def _clip(flat: str, start: int, *, more: bool = False, less: bool = False) -> str:
    """``flat[start:]`` cut to about :data:`_WIDTH` at a space, with "…" where text was left out."""
    end = start + _WIDTH
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start + _WIDTH // 2 else end
    body = flat[start:end]
    return ("…" if start or less else "") + body + ("…" if end < len(flat) or more else "")
