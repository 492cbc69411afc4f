"""Attachment text extraction: the formats it reads, and the limits that keep hostile files out.

The time limit is shown with a real hostile file, not a fake: a 10 KB PDF whose
one page holds millions of text operators (PDFium needs about 5 s for it, pypdf a minute)
must come back "timed out" after the limit, and the next file must still be
read (the stuck child process was replaced).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import pytest

from syncer.mime import attachments as attachment_text
from syncer.mime.attachments import TextExtractor, extract, kind_of
from syncer.mime.normalize import normalize

_OOXML = "application/vnd.openxmlformats-officedocument."


def slow_pdf(operators: int) -> bytes:
    """A valid one-page PDF whose content stream repeats a text operator ``operators`` times."""
    content = zlib.compress(b"BT /F1 12 Tf " + b"(a) Tj " * operators + b"ET", 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def test_kinds_come_from_the_type_or_else_the_file_name() -> None:
    assert kind_of("application/pdf", None) == "pdf"
    assert kind_of("application/octet-stream", "Report.PDF") == "pdf"
    assert kind_of(_OOXML + "wordprocessingml.document", None) == "docx"
    assert kind_of("application/octet-stream", "a.xlsx") == "xlsx"
    assert kind_of("text/csv", None) == "text"
    assert kind_of("text/html", "x.bin") == "html"
    assert kind_of("image/png", "scan.pdf") is None
    assert kind_of("application/zip", "archive.zip") is None


def test_text_and_html_are_read_in_their_charset() -> None:
    assert extract("text", "Grüße".encode("latin-1"), "iso-8859-1") == ("Grüße", None)
    text, note = extract("html", b"<html><body><p>Hello <b>world</b></p><script>x()</script>")
    assert "Hello world" in text and "x()" not in text and note is None


def test_a_pdf_is_read() -> None:
    text, note = extract("pdf", slow_pdf(3))
    assert text == "aaa" and note is None


def test_long_text_is_cut_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment_text, "MAX_TEXT_CHARS", 10)
    assert extract("text", b"x" * 100) == ("x" * 10, "text cut at 10 characters")


def test_a_zip_bomb_is_refused_before_any_library_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_text, "MAX_UNZIPPED_BYTES", 1_000_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("word/document.xml", b"<" + b"a" * 5_000_000)
    assert len(buffer.getvalue()) < 20_000
    with pytest.raises(ValueError, match="unpacks to 5000001 bytes, more than 1000000"):
        extract("docx", buffer.getvalue())


def test_a_huge_attachment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment_text, "MAX_INPUT_BYTES", 1000)
    with TextExtractor() as extractor:
        found = extractor.extract("2", "application/pdf", "x.pdf", None, slow_pdf(1) + b" " * 1000)
    assert found is not None and found.note == "larger than 1000 bytes; not read"


def test_an_unreadable_file_gets_a_note_and_the_next_file_is_read() -> None:
    with TextExtractor() as extractor:
        broken = extractor.extract("2", "application/pdf", None, None, b"%PDF-1.4 garbage")
        good = extractor.extract("3", "application/pdf", None, None, slow_pdf(2))
    assert broken is not None and broken.text == "" and broken.note is not None
    assert broken.note.startswith("unreadable: ")
    assert good is not None and good.text == "aa"


def test_a_slow_hostile_file_is_stopped_and_the_next_one_still_read() -> None:
    hostile = slow_pdf(5_000_000)  # about 5 s of PDFium, in 10 KB
    assert len(hostile) < 100_000
    with TextExtractor(timeout=1.0) as extractor:
        stopped = extractor.extract("2", "application/pdf", "slow.pdf", None, hostile)
        after = extractor.extract("3", "application/pdf", "fine.pdf", None, slow_pdf(2))
    assert stopped is not None and stopped.note == "timed out after 1 s; not read"
    assert after is not None and after.text == "aa"


def test_normalization_keeps_the_message_when_an_attachment_is_hostile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "two files"
    msg.set_content("body")
    msg.add_attachment(slow_pdf(5_000_000), maintype="application", subtype="pdf", filename="a.pdf")
    msg.add_attachment(b"plain words", maintype="text", subtype="plain", filename="b.txt")
    with TextExtractor(timeout=1.0) as extractor:
        result = normalize(msg.as_bytes(), extractor=extractor)
    assert result.status == "ok"
    assert [(t.part_path, t.text, t.note) for t in result.attachment_texts] == [
        ("2", "", "timed out after 1 s; not read"),
        ("3", "plain words", None),
    ]


def _children() -> set[int]:
    pid = os.getpid()
    return {int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_a_child_started_ahead_is_the_one_that_reads() -> None:
    before = _children()
    with TextExtractor() as extractor:
        extractor.start()
        extractor.start()  # already started: no second child
        started = _children() - before
        found = extractor.extract("2", "application/pdf", None, None, slow_pdf(2))
        assert _children() - before == started
    assert len(started) == 1
    assert found is not None and found.text == "aa"
