"""Search tokens: one tokenizer for documents and queries, so both databases agree.

These rules are what makes ``메일`` find ``메일을``, ``invoic*`` find "invoice"
but not "reinvoiced", and long messages fit PostgreSQL's tsvector limits the
same way on SQLite (see syncer/archive/search_tokens.py).
"""

from __future__ import annotations

from collections import Counter

from syncer.archive.search import tokens as search_tokens
from syncer.archive.search.tokens import (
    CHUNK_TOKENS,
    MAX_OCCURRENCES,
    OVERLAP,
    QueryToken,
    document_chunks,
    fold,
    query_tokens,
    tokens,
)


def test_folding_ignores_case_diacritics_and_width() -> None:
    assert fold("Café CRÈME") == "cafe creme"
    assert fold("Straße") == "strasse"
    assert fold("ＡＢＣ１") == "abc1"
    assert tokens("İstanbul Ελληνικά") == ["istanbul", "ελληνικα"]


def test_marks_that_spell_words_stay() -> None:
    assert tokens("がっこう") == ["がっ", "っこ", "こう", "う"]  # voicing mark kept
    assert tokens("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # vowel signs do not split words


def test_punctuation_separates_words() -> None:
    assert tokens("john.doe@example.com, re-invoice_2019!") == [
        "john",
        "doe",
        "example",
        "com",
        "re",
        "invoice",
        "2019",
    ]


def test_cjk_runs_become_bigrams_and_their_last_character() -> None:
    assert tokens("메일을 보냈다") == ["메일", "일을", "을", "보냈", "냈다", "다"]
    assert tokens("東京タワー") == ["東京", "京タ", "タワ", "ワー", "ー"]
    assert tokens("用") == ["用"]
    assert tokens("iPhone用") == ["iphone", "用"]


def test_a_cjk_query_is_a_substring_of_the_run() -> None:
    assert query_tokens("메일") == [QueryToken("메일")]
    assert query_tokens("東京タワー") == [QueryToken(t) for t in ("東京", "京タ", "タワ", "ワー")]
    # One character: the start of a bigram, or a run's last character.
    assert query_tokens("京") == [QueryToken("京", prefix=True)]


def test_a_cjk_run_followed_by_more_words_must_end_there() -> None:
    assert query_tokens("東京 tower") == [QueryToken("東京"), QueryToken("京"), QueryToken("tower")]
    assert query_tokens("京 tower") == [QueryToken("京"), QueryToken("tower")]


def test_only_the_last_token_is_a_prefix() -> None:
    assert query_tokens("attached invoic", prefix=True) == [
        QueryToken("attached"),
        QueryToken("invoic", prefix=True),
    ]
    assert query_tokens("!!! ---") == []


def test_long_tokens_are_cut_the_same_way_in_documents_and_queries() -> None:
    word = "a" * 100
    assert tokens(word) == ["a" * search_tokens.MAX_TOKEN_CHARS]
    assert query_tokens(word) == [QueryToken("a" * search_tokens.MAX_TOKEN_CHARS)]


def test_a_short_message_is_one_chunk_with_its_fields() -> None:
    (chunk,) = document_chunks(["Hello", "Bob bob@example.com", "hello world", ""])
    assert chunk.number == 0
    assert chunk.field_texts() == ("hello", "bob bob example com", "hello world", "")
    # Positions leave a gap between fields, so no phrase spans two of them.
    assert list(chunk.positions())[:3] == [(1, 0, "hello"), (3, 1, "bob"), (4, 1, "bob")]


def test_an_empty_message_still_has_a_chunk() -> None:
    assert [c.field_texts() for c in document_chunks(["", "", "", ""])] == [("", "", "", "")]


def test_long_text_is_cut_into_overlapping_chunks_within_postgresql_limits() -> None:
    words = [f"w{i}" for i in range(CHUNK_TOKENS * 2 + 100)]
    chunks = document_chunks(["", "", " ".join(words), ""])
    assert len(chunks) == 3
    for chunk in chunks:
        assert len(chunk.tokens) <= CHUNK_TOKENS
        assert max(position for position, _, _ in chunk.positions()) <= 16383
    # Each chunk starts with the last OVERLAP tokens of the one before.
    assert chunks[1].tokens[:OVERLAP] == chunks[0].tokens[-OVERLAP:]
    covered = {token for chunk in chunks for _, token in chunk.tokens}
    assert covered == set(words)


def test_no_token_repeats_more_often_than_a_tsvector_keeps_positions() -> None:
    chunks = document_chunks(["", "", "the cat " * 1000, ""])
    assert len(chunks) > 1
    for chunk in chunks:
        assert max(Counter(token for _, token in chunk.tokens).values()) <= MAX_OCCURRENCES
    # Every phrase "the cat" is still inside some chunk.
    assert all("the cat" in chunk.field_texts()[2] for chunk in chunks)


def test_a_pathological_message_is_indexed_up_to_the_chunk_limit() -> None:
    chunks = document_chunks(["", "", "a " * 200_000, ""])
    assert len(chunks) == search_tokens.MAX_CHUNKS


def test_the_index_documents_field_weights_follow_fields() -> None:
    from syncer.archive.search import document
    from syncer.archive.search.tokens import FIELDS

    assert tuple(document.WEIGHTS[name] for name in FIELDS) == document._FIELD_WEIGHTS
    assert FIELDS[document._SUBJECT] == "subject"


def test_document_tokens_are_the_pieces_of_the_query_tokenizer() -> None:
    """tokens() takes a shortcut for runs without CJK; it must agree with _pieces()."""
    import random

    from syncer.archive.search.tokens import _pieces, fold, tokens

    rng = random.Random(9)
    # Marks, CJK punctuation (\u30fb, \u309b), numbers that are not digits, characters
    # beyond the BMP (a Han extension, a mathematical letter, a mark, an emoji).
    alphabet = (
        "aZ9 éßÅ-_.メール메일을中文ไทยक़ि\u0301\u3000\u30fb\u309b\u0e3f²½\u0903\u093c"
        "\U00020001\U0001d400\U0001d167\U0001f600\U000e0101" + "x" * 70
    )
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(2000)]
    texts += ["".join(chr(rng.randrange(0x110000)) for _ in range(30)) for _ in range(300)]
    texts += ["".join(chr(rng.randrange(0x10000)) for _ in range(30)) for _ in range(300)]
    texts += [
        "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(90)))
        + "Q" * rng.choice([0, 70])
        for _ in range(500)
    ]
    texts += ["ж" * 100, "ж" * 70 + "中文" + "ж" * 65 + " ж", "क़ि" * 50, "ж" * 80 + "\U00020001"]
    for text in texts:
        expected: list[str] = []
        for piece, cjk in _pieces(fold(text)):
            if cjk:
                expected.extend(piece[i : i + 2] for i in range(len(piece) - 1))
                expected.append(piece[-1])
            else:
                expected.append(piece)
        assert tokens(text) == expected, text


def test_fold_shortcuts_give_what_its_definition_gives() -> None:
    """fold()'s Latin-1 table and its skip of the decomposition agree with _fold()."""
    import random

    from syncer.archive.search.tokens import _fold

    latin1 = [chr(code) for code in range(256)]
    for first in latin1:  # every pair: a character's fold does not depend on its neighbour
        for second in latin1:
            pair = first + second
            assert fold(pair) == _fold(pair), repr(pair)
    rng = random.Random(11)
    alphabet = "aZ9 éÉßÆæÿµ¼²¨´ª\xa0\xad-ñÑçÇ" + "x" * 20
    others = "メール메일을中文ไทยक़ि\u0301\u0308\u3099ǅﬁİı\u1e9e\u212b\u2126Ωάΐ\U0001d400\U00020001"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        assert fold(text) == _fold(text), repr(text)
        text += "".join(rng.choice(others) for _ in range(rng.randrange(3)))
        text = "".join(rng.sample(text, len(text)))
        assert fold(text) == _fold(text), repr(text)
    for _ in range(300):
        text = "".join(chr(rng.randrange(0x110000)) for _ in range(20))
        assert fold(text) == _fold(text), repr(text)


def test_no_character_beyond_the_bmp_decomposes_to_a_removed_diacritic() -> None:
    """What lets _decomposes_to_diacritic() be built from the BMP alone."""
    import unicodedata

    from syncer.archive.search.tokens import _DIACRITICS

    assert not [
        code
        for code in range(0x10000, 0x110000)
        if _DIACRITICS.search(unicodedata.normalize("NFD", chr(code)))
    ]
