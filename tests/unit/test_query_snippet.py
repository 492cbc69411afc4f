"""Snippets of search hits: a line of text around the first match, matches marked [[...]]."""

from __future__ import annotations

from syncer.archive.search.snippet import snippet


def test_the_matched_words_are_marked_at_word_starts_ignoring_case() -> None:
    text = "Hello Bob,\n\nplease find the  Invoices attached.\nRegards"
    assert snippet(text, ["invoice", "regard"]) == (
        "Hello Bob, please find the [[Invoice]]s attached. [[Regard]]s"
    )
    assert snippet("the art of starting", ["art"]) == "the [[art]] of starting"


def test_words_of_scripts_without_spaces_match_anywhere() -> None:
    assert (
        snippet("휴가 사진을 메일을 보냈습니다.", ["메일"]) == "휴가 사진을 [[메일]]을 보냈습니다."
    )
    assert snippet("明日の会議は十時です。", ["会議"]) == "明日の[[会議]]は十時です。"


def test_a_long_text_is_cut_around_the_first_match() -> None:
    text = "lorem ipsum " * 200 + "the needle is here " + "dolor sit " * 200
    result = snippet(text, ["needle"])
    assert result.startswith("…") and result.endswith("…")
    assert "the [[needle]] is here" in result
    assert len(result) <= 170


def test_without_a_match_the_snippet_is_the_start_of_the_text() -> None:
    assert snippet("just text", []) == "just text"
    assert snippet("just text", ["absent"]) == "just text"
    assert snippet("word " * 100, ["absent"]).endswith("…")
    assert snippet("", ["x"]) == ""
    assert snippet("a [b] (c)", ["*", "(c)"]) == "a [b] ([[c]])"
