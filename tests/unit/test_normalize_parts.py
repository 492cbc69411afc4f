"""The MIME walk: which parts are the text, which are attachments, how files are named."""

from __future__ import annotations

from syncer.mime.normalize import attachment_content, normalize
from syncer.mime.text import safe_filename
from tests.mail_samples import mail


def _attachments(name: str) -> list[tuple[str, str | None, str, bool]]:
    return [
        (a.part_path, a.filename, a.content_type, a.inline)
        for a in normalize(mail(name)).attachments
    ]


def test_multipart_alternative_prefers_text_plain() -> None:
    result = normalize(mail("02-multipart-alternative"))
    assert result.text == "The plain version wins."
    assert result.attachments == ()


def test_an_empty_plain_alternative_falls_back_to_the_html() -> None:
    assert normalize(mail("05-alternative-empty-plain")).text == "Only the HTML has words."


def test_html_is_converted_to_text_without_scripts_styles_or_comments() -> None:
    text = normalize(mail("03-html-only-script-style")).text
    assert "Quarterly report" in text and "Revenue went up." in text and "first point" in text
    for hidden in ("alert", "color: red", "hidden comment", "<p>"):
        assert hidden not in text


def test_html_nested_past_the_parsers_depth_is_partial_with_its_text_recovered() -> None:
    # libxml2 stops at 256 levels and dropped the text silently: status ok, text "",
    # so search could not find it and a hold on a word in it did not hold (issue 16, item 8).
    for levels in (256, 300, 5000):
        html = "<div>" * levels + "quarterly <b>zanzibar</b> figures" + "</div>" * levels
        raw = (
            "From: a@example.com\r\nSubject: deep\r\nContent-Type: text/html\r\n\r\n" + html
        ).encode()
        result = normalize(raw)
        assert result.status == "partial", levels
        assert "HTMLTooDeep" in result.defects
        assert result.error is not None and "nested too deeply" in result.error
        assert "quarterly zanzibar figures" in " ".join(result.text.split())
    shallow = "<div>" * 100 + "fine" + "</div>" * 100
    ok = normalize(f"Content-Type: text/html\r\n\r\n{shallow}".encode())
    assert (ok.status, ok.text, ok.defects) == ("ok", "fine", ())


def test_nested_multiparts_number_parts_as_imap_does() -> None:
    assert _attachments("04-nested-mixed-alternative-related") == [
        ("1.2.2", "logo.png", "image/png", True),
        ("2", "report.pdf", "application/pdf", False),
    ]
    result = normalize(mail("04-nested-mixed-alternative-related"))
    assert result.text == "See the logo and the report."
    assert result.has_attachments
    logo = result.attachments[0]
    assert (logo.content_id, logo.size) == ("logo@corpus", 600)


def test_a_forwarded_message_is_an_attachment_and_its_parts_are_walked() -> None:
    result = normalize(mail("06-forwarded-rfc822"))
    assert _attachments("06-forwarded-rfc822") == [
        ("2", None, "message/rfc822", False),
        ("2.2", "data.bin", "application/octet-stream", False),
    ]
    assert result.attachments[0].safe_filename == "Original with attachment.eml"
    assert "Subject: Original with attachment" in result.text
    assert "The forwarded words." in result.text
    forwarded = attachment_content(mail("06-forwarded-rfc822"), "2")
    assert forwarded is not None and forwarded.startswith(b"From: Carol <carol@example.net>\r\n")


def test_a_forward_of_a_forward() -> None:
    assert [p for p, *_ in _attachments("07-forward-of-forward")] == ["2", "2.2"]
    assert "Deep words." in normalize(mail("07-forward-of-forward")).text


def test_rfc_2231_filenames_with_charset_and_continuations() -> None:
    names = [a[1] for a in _attachments("08-rfc2231-filename")]
    assert names == ["Überweisung März.pdf", "견적서_2024.pdf"]


def test_rfc_2047_filenames_as_outlook_writes_them() -> None:
    names = [a[1] for a in _attachments("09-rfc2047-filename")]
    assert names == ["Kostenübersicht.xls", "写真.jpg"]


def test_hostile_filenames_are_kept_for_display_and_sanitized_for_disk() -> None:
    result = normalize(mail("10-unsafe-filenames"))
    pairs = [(a.filename, a.safe_filename) for a in result.attachments]
    assert pairs[:4] == [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("C:\\Windows\\evil.exe", "C__Windows_evil.exe"),
        ("CON.txt", "_CON.txt"),
        (".bashrc", "bashrc"),
    ]
    long_name = pairs[4][1]
    assert long_name.endswith(".pdf") and len(long_name.encode()) <= 200
    assert pairs[5] == (None, "part-7.bin")


def test_safe_filename_never_yields_a_path_or_an_empty_name() -> None:
    for hostile in ("..", "/", "\x00", " . ", "a/../b", "\u202egnp.exe", "nul"):
        name = safe_filename(hostile, "fallback.bin")
        assert name and "/" not in name and "\\" not in name and not name.startswith(".")
        assert "\u202e" not in name and "\x00" not in name
        assert name not in ("..", ".")


def test_text_files_attached_inline_are_attachments_and_unnamed_trailing_text_is_text() -> None:
    result = normalize(mail("11-inline-text-attachment"))
    assert _attachments("11-inline-text-attachment") == [
        ("2", "notes.txt", "text/plain", True),
        ("3", "table.csv", "text/csv", False),
    ]
    assert result.text == "Body text.\n\nA trailing text part without a name (a list footer)."


def test_a_calendar_invite_keeps_its_text_and_its_ics() -> None:
    result = normalize(mail("12-calendar-invite"))
    assert result.text == "You are invited to Planning."
    assert [a.content_type for a in result.attachments] == ["text/calendar", "application/ics"]


def test_a_delivery_report_lists_its_machine_parts() -> None:
    result = normalize(mail("13-delivery-status-notification"))
    assert result.text == "Your message could not be delivered."
    assert [a.content_type for a in result.attachments] == [
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert result.auto_submitted == "auto-replied"


def test_transfer_encodings_binary_qp_base64_uuencode_and_unknown() -> None:
    raw_bin = normalize(mail("15-binary-cte")).attachments[0]
    assert raw_bin.size == 254
    text = normalize(mail("16-quoted-printable-and-base64-text")).text
    assert "sechsundsiebzig Zeichen ist." in text and "Straße" in text
    odd = normalize(mail("17-uuencode-and-unknown-cte"))
    assert odd.text == "Text under an unknown transfer encoding."
    assert attachment_content(mail("17-uuencode-and-unknown-cte"), "2") == b"hi\n"


def test_broken_base64_keeps_what_decodes() -> None:
    result = normalize(mail("18-broken-base64"))
    assert result.status == "ok" and result.attachments[0].size > 0


def test_a_truncated_message_keeps_its_text_and_what_arrived_of_the_attachment() -> None:
    result = normalize(mail("19-truncated-boundary"))
    assert result.status == "ok"
    assert "CloseBoundaryNotFoundDefect" in result.defects
    assert result.text == "The message was cut off in the middle of its attachment."
    assert result.attachments[0].filename == "cut.pdf" and result.attachments[0].size > 0


def test_a_multipart_without_boundary_is_read_as_text() -> None:
    result = normalize(mail("20-missing-boundary-parameter"))
    assert "NoBoundaryInMultipartDefect" in result.defects
    assert "Nobody declared the boundary." in result.text


def test_absurd_nesting_is_cut_off_and_reported_as_partial() -> None:
    result = normalize(mail("21-deeply-nested"))
    assert result.status == "partial"
    assert result.error is not None and "nested deeper than" in result.error
    assert result.subject == "Sixty levels deep"


def test_empty_bodies_and_header_only_messages() -> None:
    for name in ("22-empty-body", "23-headers-only"):
        result = normalize(mail(name))
        assert (result.status, result.text, result.attachments) == ("ok", "", ())
        assert result.subject


def test_bare_lf_mixed_line_ends_nul_bytes_and_mbox_from_lines() -> None:
    lf = normalize(mail("27-bare-lf"))
    assert lf.text == "Lines end in LF only, as in mbox files." and lf.attachments[0].size == 300
    assert "fourth" in normalize(mail("28-mixed-line-ends")).text
    assert normalize(mail("26-nul-bytes")).text == "before\x00after"
    assert normalize(mail("25-mbox-from-line")).subject == "mbox From line"


def test_a_mail_bomb_fails_to_parse_but_its_headers_are_read() -> None:
    inner = b"Subject: bottom\r\n\r\nbottom\r\n"
    for _ in range(3000):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    result = normalize(b"Subject: top\r\nFrom: a@example.com\r\n" + inner)
    assert result.status == "failed"
    assert result.error is not None and "RecursionError" in result.error
    assert result.subject == "top" and result.by_role("from")[0].address == "a@example.com"


def test_garbage_is_not_an_exception() -> None:
    for raw in (b"", b"\r\n", b"\x00\xff" * 100, b"Subject", b":::\r\n\r\n", bytes(range(256)) * 4):
        assert normalize(raw).status in ("ok", "partial", "failed")
