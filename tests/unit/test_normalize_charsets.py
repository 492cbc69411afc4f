"""Charsets: what real people's mail is written in comes out as the text they wrote.

RFC 2047 subjects, legacy body charsets (EUC-KR, ISO-2022-JP, Shift_JIS, GB2312,
Big5, Windows-125x, ISO-8859-x, KOI8-R), raw 8-bit headers, and labels that are
missing, wrong or unknown -- never an exception, never mojibake where the
bytes say otherwise.
"""

from __future__ import annotations

from syncer.mime.normalize import normalize
from syncer.mime.text import codec_for, decode_bytes, decode_words
from tests.mail_samples import mail


def test_an_euc_kr_subject_in_rfc_2047_comes_out_as_korean() -> None:
    result = normalize(mail("30-euc-kr-rfc2047"))
    assert result.subject == "한국어 제목입니다"
    assert result.by_role("from")[0].display_name == "김민준"
    assert result.text == "안녕하세요. 회의 일정 확인 부탁드립니다."


def test_ks_c_5601_is_read_as_cp949_its_superset() -> None:
    result = normalize(mail("31-ks-c-5601-cp949"))
    assert result.subject == "똠방각하 보고서"
    assert result.text == "본문: 똠방각하"


def test_iso_2022_jp_subject_and_body() -> None:
    result = normalize(mail("32-iso-2022-jp"))
    assert result.subject == "会議の日程について"
    assert result.text == "お世話になっております。来週の打ち合わせについてご連絡します。"


def test_shift_jis_is_read_as_cp932_with_its_extensions() -> None:
    result = normalize(mail("33-shift-jis"))
    assert result.subject == "請求書送付のお知らせ"
    assert "①番" in result.text


def test_gb2312_labelled_gbk_text_is_read_as_gb18030() -> None:
    result = normalize(mail("34-gb2312-gbk"))
    assert result.subject == "会议通知"
    assert result.text == "请查收附件。朱镕基"


def test_big5() -> None:
    result = normalize(mail("35-big5"))
    assert (result.subject, result.text) == ("會議記錄", "請參閱附件中的會議記錄。")


def test_cyrillic_in_windows_1251_and_koi8_r() -> None:
    assert normalize(mail("36-windows-1251")).text == "Добрый день! Отчёт во вложении."
    assert normalize(mail("36-windows-1251")).subject == "Отчёт"
    assert normalize(mail("39-koi8-r")).text == "Привет из Москвы"


def test_latin_1_label_is_read_as_windows_1252() -> None:
    assert normalize(mail("37-windows-1252-smart-quotes")).text == "“Quoted” – it’s 5€."


def test_iso_8859_2_and_15() -> None:
    result = normalize(mail("38-iso-8859-2-and-15"))
    assert result.subject == "Zażółć gęślą jaźń"
    assert result.text == "Zażółć gęślą jaźń\n\nPreis: 20€, Œuvre"


def test_a_missing_charset_on_utf_8_text() -> None:
    assert normalize(mail("40-missing-charset-utf8")).text == "Grüße, naïve café"


def test_a_missing_charset_on_euc_kr_text_is_recognised() -> None:
    assert normalize(mail("41-missing-charset-euc-kr")).text.startswith("안녕하세요. 회의 일정")


def test_utf_8_labelled_latin_1_and_the_reverse() -> None:
    assert normalize(mail("42-wrong-charset-latin1-is-utf8")).text == "Überweisung für Jürgen"
    assert normalize(mail("43-wrong-charset-utf8-is-latin1")).text == "Überweisung für Jürgen"


def test_an_unknown_charset_falls_back_without_an_exception() -> None:
    result = normalize(mail("44-unknown-charset"))
    assert (result.status, result.subject, result.text) == ("ok", "Café", "Café au lait")


def test_us_ascii_label_on_8_bit_text() -> None:
    assert normalize(mail("45-us-ascii-with-8bit")).text == "Straße"


def test_raw_utf_8_header_bytes() -> None:
    result = normalize(mail("46-8bit-headers-utf8"))
    assert result.subject == "Grüße aus München – raw UTF-8"
    assert result.by_role("from")[0].display_name == "Jürgen Müller"


def test_raw_euc_kr_header_bytes_use_the_charset_the_message_declares() -> None:
    result = normalize(mail("47-8bit-headers-euc-kr"))
    assert result.subject == "회의 자료 송부"
    assert result.by_role("from")[0].display_name == "김민준"
    assert result.attachments[0].filename == "자료.pdf"


def test_a_character_split_across_two_encoded_words_is_joined() -> None:
    assert normalize(mail("48-rfc2047-split-multibyte")).subject == "日本語の件名です"


def test_q_encoding_underscores_and_mixed_charsets() -> None:
    subject = normalize(mail("49-rfc2047-q-underscores-mixed")).subject
    assert subject == "Re: Café & crème and brûlée [list]"


def test_a_broken_encoded_word_stays_as_written() -> None:
    assert normalize(mail("50-rfc2047-invalid-base64")).subject == "=?UTF-8?B?!!!notbase64?= ü ok"


def test_decode_words_drops_blanks_between_words_but_not_around_text() -> None:
    assert decode_words("=?utf-8?q?a?= =?utf-8?q?b?= c =?utf-8?q?d?=") == "ab c d"
    assert decode_words("no words here") == "no words here"


def test_codec_for_reads_labels_as_mailers_write_them() -> None:
    assert codec_for('"UTF-8"') == "utf-8"
    assert codec_for("utf-8*en") == "utf-8"
    assert codec_for("x-sjis") == "cp932"
    assert codec_for("rot13") is None  # a codec, but not a charset
    assert codec_for("no-such-thing") is None
    assert codec_for(None) is None


def test_decode_bytes_never_raises() -> None:
    for data in (b"\xff\xfe\x00", bytes(range(256)), b"\x1b$B", b""):
        for label in (None, "utf-8", "euc-kr", "iso-2022-jp", "utf-7", "bogus"):
            assert isinstance(decode_bytes(data, label), str)
