"""Text → search tokens, the same for documents and queries, on every database.

Why this module exists: the SQLite and PostgreSQL archives must find the same
messages for the same query, and neither database's own tokenizer can be
trusted to agree with the other (PostgreSQL's parser follows the database
locale and treats e-mail addresses, URLs and hyphens specially; SQLite's
``unicode61`` knows Unicode 6.1; neither splits Chinese, Japanese or Korean).
So tokens are made here, in Python, and the databases only store and compare
them (:mod:`syncer.archive.search.index`). Pure: no SQL, no I/O.

The rules:

* Fold: NFKC (full-width letters, ligatures), case-fold, strip diacritics
  (the combining marks of Latin, Greek and Cyrillic, Hebrew points, Arabic
  vowel marks) and recompose, so ``Café`` = ``cafe`` and ``Straße`` =
  ``strasse``. Marks that are part of spelling (Devanagari vowel signs,
  Japanese voicing marks, Thai vowels) stay.
* Split into runs of letters, digits and those marks; everything else
  separates tokens. A token longer than :data:`MAX_TOKEN_CHARS` is cut there.
* Scripts written without spaces (Han, Hiragana, Katakana, Hangul, Thai, Lao,
  Khmer, Myanmar: "CJK" below) become overlapping bigrams plus the run's last
  character: ``메일을`` → ``메일 일을 을``. A query for ``메일`` (the bigram) is
  then found inside ``메일을``, and a Japanese word inside a sentence; a
  one-character query matches as a prefix of the bigrams.
* Latin and other spaced scripts keep word semantics: ``invoice`` is found
  in "Invoice #12" but not in "reinvoiced"; ``invoic*`` finds both "invoice"
  and "invoicing" but still not "reinvoiced".

Queries (:func:`query_tokens`) are phrases: their tokens must follow each
other. A CJK run inside a query is a substring of a document's run, so only
its bigrams are required, except where the query goes on after it (then the
document's run must end there, which its last-character token marks).

Documents (:func:`document_chunks`) have four fields and are cut into chunks
that PostgreSQL's tsvector can hold whole (at most :data:`CHUNK_TOKENS`
positions, :data:`MAX_OCCURRENCES` of any token, about :data:`CHUNK_BYTES`);
consecutive chunks overlap by :data:`OVERLAP` tokens, so a phrase of up to
``OVERLAP + 1`` tokens is always inside one chunk. At most :data:`MAX_CHUNKS`
chunks of a message are indexed.

Public API: :func:`fold`, :func:`tokens`, :func:`query_tokens`,
:class:`QueryToken`, :func:`document_chunks`, :class:`Chunk`, :data:`FIELDS`.
"""

from __future__ import annotations

import array
import functools
import operator
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_TOKENS",
    "FIELDS",
    "MAX_CHUNKS",
    "MAX_OCCURRENCES",
    "MAX_TOKEN_CHARS",
    "OVERLAP",
    "Chunk",
    "QueryToken",
    "document_chunks",
    "fold",
    "query_tokens",
    "tokens",
]

#: The fields of a message's index document, in their order in a chunk.
FIELDS = ("subject", "addresses", "body", "attachments")

#: Longer tokens (base64 runs, hashes) are cut to this many characters.
MAX_TOKEN_CHARS = 64
#: Positions per chunk; PostgreSQL keeps positions up to 16383 only.
CHUNK_TOKENS = 16_000
#: Occurrences of one token per chunk; PostgreSQL keeps 256 positions per lexeme.
MAX_OCCURRENCES = 250
#: Approximate tsvector bytes per chunk; PostgreSQL refuses a tsvector over 1 MB.
CHUNK_BYTES = 512_000
#: Tokens repeated at the start of the next chunk (phrases up to OVERLAP + 1 tokens).
OVERLAP = 32
#: Chunks indexed per message (the rest of a pathological message is not).
MAX_CHUNKS = 256

# Combining marks that are diacritics (accents, Hebrew points, Arabic harakat), removed.
_DIACRITICS = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u064b-\u065f\u0670]+"
)
# Scripts written without spaces between words: bigram-indexed.
_CJK_RANGES = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u3005-\u3007\u303b"  # 々 〆 〇 〻
    "\u3041-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff"  # Han
    "\ua960-\ua97f\uac00-\ud7ff"  # Hangul
    "\uf900-\ufaff"  # Han compatibility
    "\uff66-\uffdc"  # half-width Katakana and Hangul
    "\U00020000-\U0003134f"  # Han extensions
)
_PIECE = re.compile(f"([{_CJK_RANGES}]+)|[^{_CJK_RANGES}]+")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
# A run's first MAX_TOKEN_CHARS characters are its group: the cut costs nothing.
_ASCII_RUN = re.compile(f"([a-z0-9]{{1,{MAX_TOKEN_CHARS}}})[a-z0-9]*")


@functools.cache
def _mark_ranges() -> tuple[tuple[int, int], ...]:
    """The combining marks' code points (categories M*), as inclusive ranges.

    ``\\w`` alone misses combining marks (Python's ``re`` counts only letters
    and numbers), which would split Devanagari or Thai words at every vowel
    sign; the marks' code points are collected once from :mod:`unicodedata`.
    """
    ranges: list[tuple[int, int]] = []
    for code in (*range(0x300, 0x20000), *range(0xE0100, 0xE01F0)):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return tuple(ranges)


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


@functools.cache
def _run_pattern() -> re.Pattern[str]:
    """Runs of letters, digits and combining marks (see :func:`_mark_ranges`)."""
    return re.compile(f"(?:[^\\W_]|[{_class_body(_mark_ranges())}])+")


def fold(text: str) -> str:
    """Case-folded text without diacritics, compatibility forms unified (see module doc).

    Two shortcuts give what :func:`_fold` gives, faster: Latin-1 text whose
    every character folds to ASCII is translated byte by byte
    (:func:`_latin1_table`), and text with no character whose canonical
    decomposition holds a diacritic skips the decomposition and recomposition
    (:func:`_decomposes_to_diacritic`): then nothing is removed, and the
    recomposition of a decomposed text is the text's own NFC form.
    """
    if text.isascii():
        return text.lower()
    try:
        latin1 = text.replace("\xdf", "ss").encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        folded = latin1.translate(_latin1_table())
        if folded.isascii():
            return folded.decode("ascii")
    text = unicodedata.normalize("NFKC", text).casefold()
    if _decomposes_to_diacritic().search(text) is None and unicodedata.is_normalized("NFC", text):
        return text
    return _remove_diacritics(text)


def _fold(text: str) -> str:
    """:func:`fold` by its definition: NFKC, case-fold, decompose, drop diacritics, recompose."""
    return _remove_diacritics(unicodedata.normalize("NFKC", text).casefold())


def _remove_diacritics(text: str) -> str:
    text = _DIACRITICS.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text)


@functools.cache
def _latin1_table() -> bytes:
    """A ``bytes.translate`` table giving each Latin-1 character's :func:`_fold` as one ASCII
    byte; the characters that have none map to 0x80 (outside ASCII: not this way).

    ``ß`` (folded to ``ss``) is replaced before. A character's fold does not depend on
    its neighbours in Latin-1 text (``tests/unit/test_search_tokens.py`` checks every pair).
    """
    table = bytearray(range(256))
    for code in range(256):
        folded = _fold(chr(code))
        table[code] = ord(folded) if len(folded) == 1 and folded.isascii() else 0x80
    return bytes(table)


@functools.cache
def _decomposes_to_diacritic() -> re.Pattern[str]:
    """The characters whose canonical decomposition holds a mark :data:`_DIACRITICS` removes.

    Built from the Basic Multilingual Plane: no character beyond it decomposes to one
    (the marks are all in it; a test checks every code point).
    """
    found = [
        (code, code)
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        and _DIACRITICS.search(unicodedata.normalize("NFD", chr(code)))
    ]
    return re.compile(f"[{_class_body(_merged(found))}]")


def _pieces(folded: str) -> Iterator[tuple[str, bool]]:
    """The runs of already folded text, CJK runs apart: ``(piece, is_cjk)`` in order."""
    if folded.isascii():
        for run in _ASCII_RUN.findall(folded):
            yield run, False
        return
    for run in _run_pattern().findall(folded):
        if run.isascii():
            yield run[:MAX_TOKEN_CHARS], False
            continue
        for match in _PIECE.finditer(run):
            if match.group(1) is not None:
                yield match.group(0), True
            else:
                yield match.group(0)[:MAX_TOKEN_CHARS], False


def _ranges(pattern: str, text: str) -> list[tuple[int, int]]:
    """Where the runs of ``pattern`` are in ``text``, as inclusive ranges."""
    return [(m.start(), m.end() - 1) for m in re.finditer(pattern, text)]


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _split_ranges(
    ranges: Sequence[tuple[int, int]], cut: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(the parts of ``ranges`` inside ``cut``, the parts outside); ``cut`` sorted, disjoint."""
    inside: list[tuple[int, int]] = []
    outside: list[tuple[int, int]] = []
    for low, high in ranges:
        start = low
        for cut_low, cut_high in cut:
            if cut_high < start or cut_low > high:
                continue
            if cut_low > start:
                outside.append((start, cut_low - 1))
            inside.append((max(start, cut_low), min(high, cut_high)))
            start = cut_high + 1
            if start > high:
                break
        if start <= high:
            outside.append((start, high))
    return inside, outside


@functools.cache
def _bmp_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Whole-text patterns equal to :func:`_pieces` for text within the Basic Multilingual Plane.

    Each kind of run character (letters, digits and marks; the CJK ones; the
    others) is spelled out as one character class of code points up to
    U+FFFF, which ``re`` tests with one table lookup (classes reaching beyond
    it are tested range by range, and alternatives cost a step per character):
    the first pattern gives the runs (cut at MAX_TOKEN_CHARS) of a text
    without CJK, the second the CJK pieces (group 1) and the other pieces,
    cut (group 2). Built from the same definitions, for every code point.
    """
    every = array.array("I", range(0x10000)).tobytes()
    text = every.decode(f"utf-32-{sys.byteorder[0]}e", "surrogatepass")
    letters = _merged([*_ranges(r"[^\W_]+", text), *_mark_ranges()])
    letters = [(low, min(high, 0xFFFF)) for low, high in letters if low <= 0xFFFF]
    inside, outside = _split_ranges(letters, _ranges(f"[{_CJK_RANGES}]+", text))
    any_, cjk, other = (f"[{_class_body(r)}]" for r in (letters, inside, outside))
    word = re.compile(f"({any_}{{1,{MAX_TOKEN_CHARS}}}){any_}*")
    pieces = re.compile(f"({cjk}+)|({other}{{1,{MAX_TOKEN_CHARS}}}){other}*")
    return word, pieces


_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


#: ASCII text to its folded letters and digits, everything else to blanks.
_ASCII_WORDS = str.maketrans(
    {
        chr(code): chr(code).lower() if chr(code).isalpha() else " "
        for code in range(128)
        if not ("a" <= chr(code) <= "z" or "0" <= chr(code) <= "9")
    }
)


#: The same translation for ASCII bytes (``bytes.translate`` is one table lookup a byte;
#: ``str.translate`` with a mapping costs about 20 ns a character).
_ASCII_BYTES = bytes(
    ord(chr(code).translate(_ASCII_WORDS)) if code < 128 else code for code in range(256)
)


def _ascii_tokens(text: str) -> list[str]:
    """``_ASCII_RUN.findall(fold(text))`` of ASCII text: a translation and a split, in C."""
    found = text.encode("ascii").translate(_ASCII_BYTES).decode("ascii").split()
    if max(map(len, found), default=0) > MAX_TOKEN_CHARS:
        return [token[:MAX_TOKEN_CHARS] for token in found]
    return found


def tokens(text: str) -> list[str]:
    """The tokens of a document field, in order (CJK runs as bigrams + last character)."""
    if text.isascii():
        return _ascii_tokens(text)
    folded = fold(text)
    if folded.isascii():
        return _ascii_tokens(folded)
    if _BEYOND_BMP.search(folded) is not None:
        return _run_tokens(folded)
    word, pieces = _bmp_patterns()
    if _CJK_CHAR.search(folded) is None:
        return word.findall(folded)
    out: list[str] = []
    for cjk, other in pieces.findall(folded):
        if cjk:
            out.extend(map(operator.add, cjk, cjk[1:]))  # the bigrams
            out.append(cjk[-1])
        else:
            out.append(other)
    return out


def _run_tokens(folded: str) -> list[str]:
    """:func:`tokens` of folded text, run by run (any text; the patterns cover the BMP only)."""
    out: list[str] = []
    for run in _run_pattern().findall(folded):
        if run.isascii() or _CJK_CHAR.search(run) is None:
            # No CJK inside: the run is one piece (what _pieces yields for it).
            out.append(run[:MAX_TOKEN_CHARS])
            continue
        for match in _PIECE.finditer(run):
            piece = match.group(0)
            if match.group(1) is not None:
                out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
                out.append(piece[-1])
            else:
                out.append(piece[:MAX_TOKEN_CHARS])
    return out


@dataclass(frozen=True, slots=True)
class QueryToken:
    """One token of a query phrase; ``prefix``: any token starting with ``text`` matches."""

    text: str
    prefix: bool = False


def query_tokens(text: str, *, prefix: bool = False) -> list[QueryToken]:
    """The phrase a query text stands for: tokens that must follow each other.

    :param prefix: the last token is a prefix (``invoic*``). Only the last
        token of a phrase is ever a prefix.
    :returns: an empty list when ``text`` holds no letter or digit.
    """
    pieces = list(_pieces(fold(text)))
    out: list[QueryToken] = []
    for index, (piece, cjk) in enumerate(pieces):
        last = index == len(pieces) - 1
        if not cjk:
            out.append(QueryToken(piece, prefix and last))
        elif len(piece) == 1:
            # Last: the character starts a bigram or ends a run; else it is a whole run.
            out.append(QueryToken(piece, last))
        else:
            out.extend(QueryToken(piece[i : i + 2]) for i in range(len(piece) - 1))
            if not last:
                out.append(QueryToken(piece[-1]))
    return out


@dataclass(frozen=True, slots=True)
class Chunk:
    """One indexed row of a message: its number and each field's tokens, in order.

    A chunk is a stretch of the message's token stream (the fields one after
    the other), so it holds a piece of each field: ``parts[i]`` are the tokens
    of field ``i`` in it (often empty).
    """

    number: int
    parts: tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[str]]

    @property
    def tokens(self) -> list[tuple[int, str]]:
        """``(field index, token)`` in order."""
        return [(field, token) for field, part in enumerate(self.parts) for token in part]

    def field_texts(self) -> tuple[str, str, str, str]:
        """The tokens of each field joined by spaces (what FTS5 is fed)."""
        subject, names, body, files = self.parts
        return (" ".join(subject), " ".join(names), " ".join(body), " ".join(files))

    def positions(self) -> Iterator[tuple[int, int, str]]:
        """``(position, field index, token)`` from 1, with a gap between fields.

        The gap keeps a phrase from matching across two fields in PostgreSQL,
        as FTS5's separate columns do in SQLite.
        """
        position = 0
        previous = -1
        for field, part in enumerate(self.parts):
            for token in part:
                position += 2 if previous not in (-1, field) else 1
                previous = field
                yield position, field, token


def _token_bytes(token: str) -> int:
    return len(token.encode("utf-8")) + 8


def _fits(parts: Sequence[Sequence[str]]) -> bool:
    """Whether a whole document fits in one chunk (positions, occurrences, bytes)."""
    if sum(map(len, parts)) > CHUNK_TOKENS:
        return False
    length = sum(map(len, parts))
    counts = Counter(parts[0])
    for part in parts[1:]:
        counts.update(part)
    # At most 4 bytes a character; count exactly only when that bound is too high.
    size = 2 * length + 4 * sum(map(len, counts)) + 8 * len(counts)
    if size > CHUNK_BYTES:
        size = 2 * length + sum(_token_bytes(token) for token in counts)
    return size <= CHUNK_BYTES and max(counts.values(), default=0) <= MAX_OCCURRENCES


def _split(stream: Sequence[tuple[int, str]]) -> Chunk:
    parts: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    for field, token in stream:
        parts[field].append(token)
    return Chunk(-1, parts)


def document_chunks(fields: Sequence[str]) -> list[Chunk]:
    """The chunks of a message's document; ``fields`` are the texts in :data:`FIELDS` order.

    Always at least one chunk (an empty one for a message without text), so
    that an indexed message can be told from one not indexed yet.
    """
    subject, names, body, files = (tokens(text) for text in fields)
    parts = (subject, names, body, files)
    if _fits(parts):
        return [Chunk(0, parts)]
    stream = [(index, token) for index, part in enumerate(parts) for token in part]
    chunks: list[Chunk] = []
    start = 0
    while len(chunks) < MAX_CHUNKS:
        counts: Counter[str] = Counter()
        size = 0
        end = start
        while end < len(stream) and end - start < CHUNK_TOKENS:
            token = stream[end][1]
            seen = counts[token]
            extra = 2 + (0 if seen else _token_bytes(token))
            if seen >= MAX_OCCURRENCES or size + extra > CHUNK_BYTES:
                break
            counts[token] = seen + 1
            size += extra
            end += 1
        chunks.append(Chunk(len(chunks), _split(stream[start:end]).parts))
        if end >= len(stream):
            break
        start = max(end - OVERLAP, start + 1)
    return chunks
