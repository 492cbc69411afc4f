"""Writes the normalizer's test corpus: real-world-shaped messages, one ``.eml`` file each.

Why this script exists: the normalizer must read what real mailboxes hold --
legacy charsets, wrong labels, raw 8-bit headers, broken MIME, forwarded
messages, signatures, phishing tricks -- and each such shape needs a fixed
file that tests can name. The files are written by this script (never edited
by hand) so every byte is explained here; ``tests/unit/test_normalize_corpus.py``
checks that the committed files are exactly what it writes.

    .venv/bin/python tests/data/mail/make_corpus.py     # rewrites tests/data/mail/*.eml

Conventions: CRLF line ends unless a message is about line ends; every message
has a Message-ID ``<NN@corpus.example>`` unless it is about missing ones; no
randomness (attachments are bytes derived from their names).
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRLF = b"\r\n"

#: name -> function returning the raw bytes
MESSAGES: dict[str, Callable[[], bytes]] = {}


def message(name: str) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    def register(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        assert name not in MESSAGES, name
        MESSAGES[name] = fn
        return fn

    return register


def payload(name: str, size: int) -> bytes:
    """Deterministic binary content for an attachment called ``name``."""
    out = b""
    seed = name.encode()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return out[:size]


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def qp(text: str, charset: str = "utf-8") -> bytes:
    return quopri.encodestring(text.encode(charset)).replace(b"\n", CRLF)


def qp_word(text: str, charset: str) -> str:
    """``text`` as the encoded text of an RFC 2047 Q word."""
    return "".join(
        chr(b) if chr(b).isalnum() and b < 128 else "_" if b == 32 else f"={b:02X}"
        for b in text.encode(charset)
    )


def lines(*items: str | bytes, nl: bytes = CRLF) -> bytes:
    """Join header and body lines with ``nl``; str items are ASCII (or UTF-8)."""
    return nl.join(i if isinstance(i, bytes) else i.encode() for i in items)


def head(
    n: int, subject: str = "", *extra: str, date: str = "Mon, 02 Dec 2024 10:15:00 +0100"
) -> list[str]:
    out = [
        "From: Alice Example <alice@example.com>",
        "To: Bob Example <bob@example.org>",
        f"Subject: {subject or f'Corpus message {n}'}",
        f"Date: {date}",
        f"Message-ID: <{n}@corpus.example>",
        "MIME-Version: 1.0",
    ]
    return out + list(extra)


# --------------------------------------------------------------------------- structure


@message("01-plain-ascii")
def _() -> bytes:
    return lines(
        *head(1, "Plain ASCII"),
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Hello Bob,",
        "",
        "just text.",
        "",
    )


@message("02-multipart-alternative")
def _() -> bytes:
    return lines(
        *head(2, "Alternative"),
        'Content-Type: multipart/alternative; boundary="alt"',
        "",
        "--alt",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "The plain version wins.",
        "--alt",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><body><p>The <b>HTML</b> version loses.</p></body></html>",
        "--alt--",
        "",
    )


@message("03-html-only-script-style")
def _() -> bytes:
    return lines(
        *head(3, "HTML only"),
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head><style>p { color: red }</style><script>alert('tracking')</script></head>",
        "<body><h1>Quarterly report</h1><p>Revenue went <i>up</i>.</p>",
        "<ul><li>first point</li><li>second point</li></ul><!-- hidden comment --></body></html>",
        "",
    )


@message("04-nested-mixed-alternative-related")
def _() -> bytes:
    png = payload("logo.png", 600)
    pdf = payload("report.pdf", 3000)
    return lines(
        *head(4, "Nested multiparts"),
        'Content-Type: multipart/mixed; boundary="outer"',
        "",
        "This is a multi-part message in MIME format.",
        "--outer",
        'Content-Type: multipart/alternative; boundary="middle"',
        "",
        "--middle",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "See the logo and the report.",
        "--middle",
        'Content-Type: multipart/related; boundary="inner"',
        "",
        "--inner",
        "Content-Type: text/html; charset=utf-8",
        "",
        '<p>See the logo <img src="cid:logo@corpus"> and the report.</p>',
        "--inner",
        "Content-Type: image/png; name=logo.png",
        "Content-Transfer-Encoding: base64",
        "Content-ID: <logo@corpus>",
        "",
        b64(png),
        "--inner--",
        "",
        "--middle--",
        "",
        "--outer",
        'Content-Type: application/pdf; name="report.pdf"',
        'Content-Disposition: attachment; filename="report.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(pdf),
        "--outer--",
        "",
    )


@message("05-alternative-empty-plain")
def _() -> bytes:
    return lines(
        *head(5, "Empty plain alternative"),
        'Content-Type: multipart/alternative; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "",
        "--b",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<p>Only the HTML has words.</p>",
        "--b--",
        "",
    )


@message("06-forwarded-rfc822")
def _() -> bytes:
    inner = lines(
        "From: Carol <carol@example.net>",
        "To: Alice Example <alice@example.com>",
        "Subject: Original with attachment",
        "Date: Sun, 01 Dec 2024 09:00:00 +0000",
        "Message-ID: <inner-6@example.net>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="in"',
        "",
        "--in",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "The forwarded words.",
        "--in",
        'Content-Type: application/octet-stream; name="data.bin"',
        'Content-Disposition: attachment; filename="data.bin"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("data.bin", 1000)),
        "--in--",
        "",
    )
    return lines(
        *head(6, "Fwd: Original with attachment"),
        'Content-Type: multipart/mixed; boundary="fwd"',
        "",
        "--fwd",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Forwarding this, see below.",
        "--fwd",
        "Content-Type: message/rfc822",
        "Content-Disposition: attachment",
        "",
        inner,
        "--fwd--",
        "",
    )


@message("07-forward-of-forward")
def _() -> bytes:
    innermost = lines(
        "From: Dave <dave@example.net>",
        "Subject: Innermost",
        "Message-ID: <innermost-7@example.net>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Deep words.",
        "",
    )
    middle = lines(
        "From: Carol <carol@example.net>",
        "Subject: Fwd: Innermost",
        "Message-ID: <middle-7@example.net>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="m"',
        "",
        "--m",
        "Content-Type: text/plain",
        "",
        "Middle words.",
        "--m",
        "Content-Type: message/rfc822",
        "",
        innermost,
        "--m--",
        "",
    )
    return lines(
        *head(7, "Fwd: Fwd: Innermost"),
        'Content-Type: multipart/mixed; boundary="o"',
        "",
        "--o",
        "Content-Type: text/plain",
        "",
        "Outer words.",
        "--o",
        "Content-Type: message/rfc822",
        "",
        middle,
        "--o--",
        "",
    )


@message("08-rfc2231-filename")
def _() -> bytes:
    return lines(
        *head(8, "RFC 2231 names"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "Two attachments with encoded names.",
        "--x",
        "Content-Type: application/pdf",
        "Content-Disposition: attachment;",
        " filename*=utf-8''%C3%9Cberweisung%20M%C3%A4rz.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("ueberweisung.pdf", 400)),
        "--x",
        "Content-Type: application/pdf",
        "Content-Disposition: attachment;",
        " filename*0*=utf-8''%EA%B2%AC%EC%A0%81%EC%84%9C;",
        " filename*1*=%5F2024.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("quote.pdf", 500)),
        "--x--",
        "",
    )


@message("09-rfc2047-filename")
def _() -> bytes:
    return lines(
        *head(9, "RFC 2047 names"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "Outlook style names.",
        "--x",
        "Content-Type: application/vnd.ms-excel;"
        ' name="=?UTF-8?B?wqBLb3N0ZW7DvGJlcnNpY2h0LnhscyA=?="',
        'Content-Disposition: attachment; filename="=?UTF-8?B?S29zdGVuw7xiZXJzaWNodC54bHM=?="',
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("kosten.xls", 300)),
        "--x",
        'Content-Type: image/jpeg; name="=?ISO-2022-JP?B?'
        + base64.b64encode("写真.jpg".encode("iso-2022-jp")).decode()
        + '?="',
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("photo.jpg", 700)),
        "--x--",
        "",
    )


@message("10-unsafe-filenames")
def _() -> bytes:
    parts: list[str | bytes] = []
    for i, name in enumerate(
        ["../../etc/passwd", "C:\\Windows\\evil.exe", "CON.txt", ".bashrc", "a" * 300 + ".pdf", ""]
    ):
        parts += [
            "--x",
            "Content-Type: application/octet-stream",
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
            b64(payload(f"unsafe{i}", 64)),
        ]
    return lines(
        *head(10, "Hostile file names"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "Names that must never become paths.",
        *parts,
        "--x--",
        "",
    )


@message("11-inline-text-attachment")
def _() -> bytes:
    return lines(
        *head(11, "Text files attached"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Body text.",
        "--x",
        "Content-Type: text/plain; charset=utf-8; name=notes.txt",
        "Content-Disposition: inline; filename=notes.txt",
        "",
        "Notes shown inline by Apple Mail, but a file all the same.",
        "--x",
        "Content-Type: text/csv",
        "Content-Disposition: attachment; filename=table.csv",
        "",
        "a,b",
        "1,2",
        "--x",
        "Content-Type: text/plain",
        "",
        "A trailing text part without a name (a list footer).",
        "--x--",
        "",
    )


@message("12-calendar-invite")
def _() -> bytes:
    return lines(
        *head(12, "Invitation: Planning"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        'Content-Type: multipart/alternative; boundary="y"',
        "",
        "--y",
        "Content-Type: text/plain",
        "",
        "You are invited to Planning.",
        "--y",
        "Content-Type: text/calendar; method=REQUEST; charset=utf-8",
        "",
        "BEGIN:VCALENDAR",
        "METHOD:REQUEST",
        "END:VCALENDAR",
        "--y--",
        "",
        "--x",
        "Content-Type: application/ics; name=invite.ics",
        "Content-Disposition: attachment; filename=invite.ics",
        "Content-Transfer-Encoding: base64",
        "",
        b64(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        "--x--",
        "",
    )


@message("13-delivery-status-notification")
def _() -> bytes:
    return lines(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>",
        "To: alice@example.com",
        "Subject: Undelivered Mail Returned to Sender",
        "Date: Mon, 02 Dec 2024 10:20:00 +0100",
        "Message-ID: <13@corpus.example>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        "",
        "--r",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "--r",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.org",
        "",
        "Final-Recipient: rfc822; nobody@example.org",
        "Action: failed",
        "Status: 5.1.1",
        "",
        "--r",
        "Content-Type: text/rfc822-headers",
        "",
        "From: alice@example.com",
        "Subject: lost",
        "--r--",
        "",
    )


@message("14-tnef-winmail")
def _() -> bytes:
    return lines(
        *head(14, "Outlook TNEF"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "Outlook sent this.",
        "--x",
        "Content-Type: application/ms-tnef; name=winmail.dat",
        "Content-Disposition: attachment; filename=winmail.dat",
        "Content-Transfer-Encoding: base64",
        "",
        b64(b"\x78\x9f\x3e\x22" + payload("winmail", 200)),
        "--x--",
        "",
    )


@message("15-binary-cte")
def _() -> bytes:
    raw = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"")
    return lines(
        *head(15, "Binary transfer encoding"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "An attachment sent as raw bytes.",
        "--x",
        "Content-Type: application/octet-stream; name=raw.bin",
        "Content-Transfer-Encoding: binary",
        "",
        raw,
        "--x--",
        "",
    )


@message("16-quoted-printable-and-base64-text")
def _() -> bytes:
    return lines(
        *head(16, "Encoded text bodies"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        qp(
            "Grüße aus Köln, eine sehr lange Zeile die weich umbrochen werden muss "
            "weil sie länger als sechsundsiebzig Zeichen ist."
        ),
        "--x",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        b64("Zweiter Teil in Base64: Straße.".encode()),
        "--x--",
        "",
    )


@message("17-uuencode-and-unknown-cte")
def _() -> bytes:
    return lines(
        *head(17, "Odd transfer encodings"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: x-foo",
        "",
        "Text under an unknown transfer encoding.",
        "--x",
        "Content-Type: application/octet-stream; name=hello.txt",
        "Content-Transfer-Encoding: x-uuencode",
        "",
        "begin 644 hello.txt",
        "#:&D*",
        "`",
        "end",
        "--x--",
        "",
    )


@message("18-broken-base64")
def _() -> bytes:
    return lines(
        *head(18, "Broken base64"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "The attachment below is damaged.",
        "--x",
        "Content-Type: image/png; name=broken.png",
        "Content-Transfer-Encoding: base64",
        "",
        "iVBORw0KGgo!!!AAAANSUhEUgAA*AAEAAAABCAYAAAAfFcSJAAAADUl",
        "not base64 at all ~~~",
        "--x--",
        "",
    )


@message("19-truncated-boundary")
def _() -> bytes:
    return lines(
        *head(19, "Truncated in transit"),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "The message was cut off in the middle of its attachment.",
        "--x",
        "Content-Type: application/pdf; name=cut.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("cut.pdf", 900))[:700],
    )


@message("20-missing-boundary-parameter")
def _() -> bytes:
    return lines(
        *head(20, "Multipart without boundary"),
        "Content-Type: multipart/mixed",
        "",
        "--x",
        "Content-Type: text/plain",
        "",
        "Nobody declared the boundary.",
        "--x--",
        "",
    )


@message("21-deeply-nested")
def _() -> bytes:
    depth = 60
    opening: list[str] = []
    closing: list[str] = []
    for level in range(depth):
        opening += [f'Content-Type: multipart/mixed; boundary="d{level}"', "", f"--d{level}"]
        closing = ["", f"--d{level}--", *closing]
    return lines(
        *head(21, "Sixty levels deep"),
        *opening,
        "Content-Type: text/plain",
        "",
        "At the bottom.",
        *closing,
        "",
    )


@message("22-empty-body")
def _() -> bytes:
    return lines(*head(22, "Empty body"), "Content-Type: text/plain", "", "")


@message("23-headers-only")
def _() -> bytes:
    return lines(*head(23, "Only headers, no blank line"))


@message("24-no-mime-version-no-content-type")
def _() -> bytes:
    return lines(
        "From: old@example.com",
        "To: bob@example.org",
        "Subject: Before MIME",
        "Date: 2 Dec 94 10:15 EST",
        "Message-ID: <24@corpus.example>",
        "",
        "A message from before MIME, with a two-digit year and a named zone.",
        "",
    )


@message("25-mbox-from-line")
def _() -> bytes:
    return lines(
        "From alice@example.com Mon Dec  2 10:15:00 2024",
        *head(25, "mbox From line"),
        "",
        "Body.",
        "",
    )


@message("26-nul-bytes")
def _() -> bytes:
    return lines(*head(26, "NUL bytes"), "Content-Type: text/plain", "", b"before\x00after", "")


@message("27-bare-lf")
def _() -> bytes:
    return lines(
        *head(27, "Bare LF line ends"),
        'Content-Type: multipart/mixed; boundary="lf"',
        "",
        "--lf",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Lines end in LF only, as in mbox files.",
        "--lf",
        "Content-Type: application/octet-stream; name=lf.bin",
        "Content-Transfer-Encoding: base64",
        "",
        base64.encodebytes(payload("lf.bin", 300)).decode(),
        "--lf--",
        "",
        nl=b"\n",
    )


@message("28-mixed-line-ends")
def _() -> bytes:
    return (
        lines(*head(28, "Mixed line ends"), "Content-Type: text/plain", "")
        + b"\r\nfirst line CRLF\r\nsecond line LF\nthird line CR only\rfourth\r\n"
    )


# --------------------------------------------------------------------------- charsets


@message("30-euc-kr-rfc2047")
def _() -> bytes:
    subject = "=?EUC-KR?B?" + base64.b64encode("한국어 제목입니다".encode("euc-kr")).decode() + "?="
    name = "=?EUC-KR?B?" + base64.b64encode("김민준".encode("euc-kr")).decode() + "?="
    return lines(
        f"From: {name} <minjun.kim@hanbit.example>",
        "To: bob@example.org",
        f"Subject: {subject}",
        "Date: Mon, 02 Dec 2024 18:15:00 +0900",
        "Message-ID: <30@corpus.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=EUC-KR",
        "Content-Transfer-Encoding: base64",
        "",
        b64("안녕하세요. 회의 일정 확인 부탁드립니다.".encode("euc-kr")),
        "",
    )


@message("31-ks-c-5601-cp949")
def _() -> bytes:
    # "똠방각하" has syllables only in CP949 (Unified Hangul Code), not in EUC-KR proper.
    text = "똠방각하 보고서"
    return lines(
        *head(31, "=?ks_c_5601-1987?B?" + base64.b64encode(text.encode("cp949")).decode() + "?="),
        "Content-Type: text/plain; charset=ks_c_5601-1987",
        "Content-Transfer-Encoding: 8bit",
        "",
        "본문: 똠방각하".encode("cp949"),
        "",
    )


@message("32-iso-2022-jp")
def _() -> bytes:
    subject = (
        "=?ISO-2022-JP?B?"
        + base64.b64encode("会議の日程について".encode("iso-2022-jp")).decode()
        + "?="
    )
    return lines(
        *head(32, subject),
        "Content-Type: text/plain; charset=ISO-2022-JP",
        "Content-Transfer-Encoding: 7bit",
        "",
        "お世話になっております。来週の打ち合わせについてご連絡します。".encode("iso-2022-jp"),
        "",
    )


@message("33-shift-jis")
def _() -> bytes:
    return lines(
        *head(
            33,
            "=?Shift_JIS?B?"
            + base64.b64encode("請求書送付のお知らせ".encode("shift_jis")).decode()
            + "?=",
        ),
        "Content-Type: text/plain; charset=Shift_JIS",
        "Content-Transfer-Encoding: 8bit",
        "",
        "請求書を添付いたします。①番の項目をご確認ください。".encode("cp932"),
        "",
    )


@message("34-gb2312-gbk")
def _() -> bytes:
    return lines(
        *head(34, "=?GB2312?B?" + base64.b64encode("会议通知".encode("gb2312")).decode() + "?="),
        "Content-Type: text/plain; charset=GB2312",
        "Content-Transfer-Encoding: base64",
        "",
        # "镕" is in GBK but not in GB2312: real GB2312-labelled mail is GBK.
        b64("请查收附件。朱镕基".encode("gbk")),
        "",
    )


@message("35-big5")
def _() -> bytes:
    return lines(
        *head(35, "=?Big5?B?" + base64.b64encode("會議記錄".encode("big5")).decode() + "?="),
        "Content-Type: text/plain; charset=Big5",
        "Content-Transfer-Encoding: 8bit",
        "",
        "請參閱附件中的會議記錄。".encode("big5"),
        "",
    )


@message("36-windows-1251")
def _() -> bytes:
    return lines(
        *head(
            36, "=?windows-1251?Q?" + "".join(f"={b:02X}" for b in "Отчёт".encode("cp1251")) + "?="
        ),
        "Content-Type: text/plain; charset=windows-1251",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Добрый день! Отчёт во вложении.".encode("cp1251"),
        "",
    )


@message("37-windows-1252-smart-quotes")
def _() -> bytes:
    return lines(
        *head(37, "Smart quotes"),
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: 8bit",
        "",
        "\u201cQuoted\u201d \u2013 it\u2019s 5\u20ac.".encode("cp1252"),
        "",
    )


@message("38-iso-8859-2-and-15")
def _() -> bytes:
    return lines(
        *head(38, "=?ISO-8859-2?Q?" + qp_word("Zażółć gęślą jaźń", "iso-8859-2") + "?="),
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain; charset=ISO-8859-2",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        qp("Zażółć gęślą jaźń", "iso-8859-2"),
        "--x",
        "Content-Type: text/plain; charset=ISO-8859-15",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Preis: 20€, Œuvre".encode("iso-8859-15"),
        "--x--",
        "",
    )


@message("39-koi8-r")
def _() -> bytes:
    return lines(
        *head(39, "=?koi8-r?B?" + base64.b64encode("Привет".encode("koi8-r")).decode() + "?="),
        "Content-Type: text/plain; charset=koi8-r",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Привет из Москвы".encode("koi8-r"),
        "",
    )


@message("40-missing-charset-utf8")
def _() -> bytes:
    return lines(
        *head(40, "No charset, UTF-8 body"),
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Grüße, naïve café".encode(),
        "",
    )


@message("41-missing-charset-euc-kr")
def _() -> bytes:
    text = (
        "안녕하세요. 회의 일정 확인 부탁드립니다. "
        "다음 주 월요일 오전 열 시에 회의실에서 뵙겠습니다. 감사합니다."
    )
    return lines(
        *head(41, "No charset, EUC-KR body"),
        "Content-Type: text/plain",
        "",
        text.encode("euc-kr"),
        "",
    )


@message("42-wrong-charset-latin1-is-utf8")
def _() -> bytes:
    return lines(
        *head(42, "Labelled Latin-1, really UTF-8"),
        "Content-Type: text/plain; charset=iso-8859-1",
        "",
        "Überweisung für Jürgen".encode(),
        "",
    )


@message("43-wrong-charset-utf8-is-latin1")
def _() -> bytes:
    return lines(
        *head(43, "Labelled UTF-8, really Latin-1"),
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Überweisung für Jürgen".encode("latin-1"),
        "",
    )


@message("44-unknown-charset")
def _() -> bytes:
    return lines(
        *head(44, "=?x-unknown?Q?Caf=E9?="),
        "Content-Type: text/plain; charset=x-no-such-charset",
        "",
        "Caf\u00e9 au lait".encode("latin-1"),
        "",
    )


@message("45-us-ascii-with-8bit")
def _() -> bytes:
    return lines(
        *head(45, "ASCII label, 8-bit text"),
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Stra\u00dfe".encode("latin-1"),
        "",
    )


@message("46-8bit-headers-utf8")
def _() -> bytes:
    return lines(
        "From: Jürgen Müller <juergen@example.de>".encode(),
        "To: Bob <bob@example.org>",
        "Subject: Grüße aus München – raw UTF-8".encode(),
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "Message-ID: <46@corpus.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        b"Header bytes without RFC 2047.",
        "",
    )


@message("47-8bit-headers-euc-kr")
def _() -> bytes:
    return lines(
        b"From: " + "김민준".encode("euc-kr") + b" <minjun.kim@hanbit.example>",
        "To: bob@example.org",
        b"Subject: " + "회의 자료 송부".encode("euc-kr"),
        "Date: Mon, 02 Dec 2024 18:15:00 +0900",
        "Message-ID: <47@corpus.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="x"',
        "",
        "--x",
        "Content-Type: text/plain; charset=euc-kr",
        "",
        "자료를 첨부합니다.".encode("euc-kr"),
        "--x",
        b'Content-Type: application/pdf; name="' + "자료.pdf".encode("euc-kr") + b'"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("jaryo.pdf", 200)),
        "--x--",
        "",
    )


@message("48-rfc2047-split-multibyte")
def _() -> bytes:
    data = "日本語の件名です".encode()
    first, second = base64.b64encode(data[:7]).decode(), base64.b64encode(data[7:]).decode()
    return lines(
        *head(48, f"=?UTF-8?B?{first}?=\r\n =?UTF-8?B?{second}?="),
        "Content-Type: text/plain",
        "",
        "A UTF-8 character split across two encoded-words.",
        "",
    )


@message("49-rfc2047-q-underscores-mixed")
def _() -> bytes:
    return lines(
        *head(
            49, "Re: =?iso-8859-1?Q?Caf=E9_=26_cr=E8me?= and =?utf-8?q?br=C3=BBl=C3=A9e?= [list]"
        ),
        "Content-Type: text/plain",
        "",
        "Body.",
        "",
    )


@message("50-rfc2047-invalid-base64")
def _() -> bytes:
    return lines(
        *head(50, "=?UTF-8?B?!!!notbase64?= =?utf-8?B?w7w=?= ok"),
        "Content-Type: text/plain",
        "",
        "Body.",
        "",
    )


# --------------------------------------------------------------------------- headers


@message("55-missing-date")
def _() -> bytes:
    return lines(
        "From: alice@example.com",
        "To: bob@example.org",
        "Subject: No Date header",
        "Message-ID: <55@corpus.example>",
        "",
        "Body.",
        "",
    )


@message("56-invalid-date")
def _() -> bytes:
    return lines(*head(56, "Invalid date", date="sometime next week, probably"), "", "Body.", "")


@message("57-date-minus-0000-and-iso")
def _() -> bytes:
    return lines(*head(57, "Zone -0000", date="Mon, 02 Dec 2024 10:15:00 -0000"), "", "Body.", "")


@message("58-date-iso8601")
def _() -> bytes:
    return lines(*head(58, "ISO date", date="2024-12-02T10:15:00+01:00"), "", "Body.", "")


@message("59-duplicate-headers")
def _() -> bytes:
    return lines(
        "From: Alice Example <alice@example.com>",
        "From: Mallory <mallory@evil.example>",
        "To: bob@example.org",
        "To: carol@example.net",
        "Subject: First subject",
        "Subject: Second subject",
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "Date: Tue, 03 Dec 2024 10:15:00 +0100",
        "Message-ID: <59@corpus.example>",
        "",
        "Body.",
        "",
    )


@message("60-missing-message-id")
def _() -> bytes:
    return lines(
        "From: alice@example.com",
        "To: bob@example.org",
        "Subject: No Message-ID",
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "",
        "Body.",
        "",
    )


@message("61-address-forms")
def _() -> bytes:
    return lines(
        'From: "Doe, Jane" <Jane.Doe@EXAMPLE.COM>',
        "Sender: Secretary <secretary@example.com>",
        "Reply-To: Doe, John <john@example.com>",
        "To: undisclosed-recipients:;",
        "Cc: team: ann@example.com, ben@example.com;, =?utf-8?Q?Ren=C3=A9?= <rene@example.fr>",
        "Bcc: archive@example.com (Archive copy)",
        "Delivered-To: bob@example.org",
        "Delivered-To: bob+archive@example.org",
        "Subject: Address forms",
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "Message-ID: <61@corpus.example>",
        "",
        "Body.",
        "",
    )


@message("62-idna-domains")
def _() -> bytes:
    return lines(
        "From: Bücherei <info@xn--bcherei-n2a.example>",
        "To: =?utf-8?B?TcO8bGxlcg==?= <Mueller@XN--MLLER-KVA.EXAMPLE>",
        "Cc: raw@müller.example".encode(),
        "Subject: IDNA",
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "Message-ID: <62@corpus.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Body.",
        "",
    )


@message("63-list-and-bulk")
def _() -> bytes:
    return lines(
        *head(63, "[python-dev] Weekly summary"),
        "List-Id: Python development <python-dev.python.example>",
        "List-Unsubscribe: <mailto:leave@python.example>",
        "Precedence: bulk",
        "",
        "Summary.",
        "",
    )


@message("64-vacation-auto-reply")
def _() -> bytes:
    return lines(
        *head(64, "Out of office"),
        "Auto-Submitted: auto-replied (vacation)",
        "Precedence: auto_reply",
        "",
        "I am away.",
        "",
    )


@message("65-long-folded-header")
def _() -> bytes:
    folded = "\r\n".join(
        " ".join(f"word{i}" for i in range(start, min(start + 10, 120)))
        for start in range(0, 120, 10)
    ).replace("\r\n", "\r\n ")
    return lines(*head(65, folded), "X-Long: " + "x" * 2000, "", "Body.", "")


# --------------------------------------------------------------------------- threads


@message("70-thread-root")
def _() -> bytes:
    return lines(*head(70, "Thread root"), "", "Root.", "")


@message("71-thread-reply")
def _() -> bytes:
    return lines(
        *head(71, "Re: Thread root"),
        "In-Reply-To: <70@corpus.example>",
        "References: <70@corpus.example>",
        "",
        "Reply.",
        "",
    )


@message("72-thread-reply-to-reply")
def _() -> bytes:
    return lines(
        *head(72, "Re: Thread root"),
        "In-Reply-To: <71@corpus.example>",
        "References: <70@corpus.example>\r\n <71@corpus.example>",
        "",
        "Reply to the reply.",
        "",
    )


@message("73-thread-in-reply-to-only")
def _() -> bytes:
    return lines(
        *head(73, "Re: Re: Thread root"),
        "In-Reply-To: <72@corpus.example>",
        "",
        "Only In-Reply-To.",
        "",
    )


@message("74-orphan-reply")
def _() -> bytes:
    return lines(
        *head(74, "Re: A message we never saw"),
        "In-Reply-To: <never-archived@elsewhere.example>",
        "References: <root-missing@elsewhere.example> <never-archived@elsewhere.example>",
        "",
        "My parent is missing.",
        "",
    )


@message("75-orphan-sibling")
def _() -> bytes:
    return lines(
        *head(75, "Re: A message we never saw"),
        "In-Reply-To: <root-missing@elsewhere.example>",
        "References: <root-missing@elsewhere.example>",
        "",
        "A sibling of the orphan.",
        "",
    )


# --------------------------------------------------------------------------- security


@message("80-smime-signed")
def _() -> bytes:
    return lines(
        *head(80, "S/MIME signed"),
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
        ' micalg=sha-256; boundary="s"',
        "",
        "--s",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Signed words.",
        "--s",
        "Content-Type: application/pkcs7-signature; name=smime.p7s",
        "Content-Disposition: attachment; filename=smime.p7s",
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("smime.p7s", 300)),
        "--s--",
        "",
    )


@message("81-smime-encrypted")
def _() -> bytes:
    return lines(
        *head(81, "S/MIME encrypted"),
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        'Content-Disposition: attachment; filename="smime.p7m"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(payload("smime.p7m", 800)),
        "",
    )


@message("82-pgp-mime-signed")
def _() -> bytes:
    return lines(
        *head(82, "PGP/MIME signed"),
        "Content-Type: multipart/signed; micalg=pgp-sha256;"
        ' protocol="application/pgp-signature"; boundary="p"',
        "",
        "--p",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "PGP signed words.",
        "--p",
        'Content-Type: application/pgp-signature; name="signature.asc"',
        "",
        "-----BEGIN PGP SIGNATURE-----",
        "",
        "iQEzBAEBCAAdFiEE",
        "-----END PGP SIGNATURE-----",
        "--p--",
        "",
    )


@message("83-pgp-mime-encrypted")
def _() -> bytes:
    return lines(
        *head(83, "PGP/MIME encrypted"),
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"',
        "",
        "--e",
        "Content-Type: application/pgp-encrypted",
        "",
        "Version: 1",
        "--e",
        'Content-Type: application/octet-stream; name="encrypted.asc"',
        "",
        "-----BEGIN PGP MESSAGE-----",
        "",
        "hQEMA5secretsecretsecret",
        "-----END PGP MESSAGE-----",
        "--e--",
        "",
    )


@message("84-inline-pgp-signed")
def _() -> bytes:
    return lines(
        *head(84, "Inline PGP signed"),
        "Content-Type: text/plain",
        "",
        "-----BEGIN PGP SIGNED MESSAGE-----",
        "Hash: SHA256",
        "",
        "Clear-signed words.",
        "-----BEGIN PGP SIGNATURE-----",
        "",
        "iQEzBAEBCAAdFiEE",
        "-----END PGP SIGNATURE-----",
        "",
    )


@message("85-inline-pgp-encrypted")
def _() -> bytes:
    return lines(
        *head(85, "Inline PGP encrypted"),
        "Content-Type: text/plain",
        "",
        "Hi, see below.",
        "-----BEGIN PGP MESSAGE-----",
        "",
        "hQEMA5secretinlinesecret",
        "-----END PGP MESSAGE-----",
        "",
    )


@message("86-auth-results-pass")
def _() -> bytes:
    return lines(
        "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com;",
        " dkim=pass (2048-bit key) header.d=example.com header.s=sel;",
        " dmarc=pass (p=reject dis=none) header.from=example.com",
        "Received: from mail.example.com by mx.example.org; Mon, 02 Dec 2024 10:15:01 +0100",
        *head(86, "Authenticated"),
        "Return-Path: <bounce@example.com>",
        "",
        "Genuine.",
        "",
    )


@message("87-auth-results-fail-phishing")
def _() -> bytes:
    return lines(
        "Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=bank.example;",
        " dkim=none; dmarc=fail (p=reject) header.from=bank.example",
        # The attacker wrote this one before sending; it is below the receiving server's.
        "Authentication-Results: mx.example.org; spf=pass; dkim=pass; dmarc=pass",
        'From: "service@bank.example" <security@bank-login.example>',
        "Reply-To: help@collector.example",
        "Return-Path: <x@bulk.example>",
        "To: bob@example.org",
        "Subject: Verify your account",
        "Date: Mon, 02 Dec 2024 10:15:00 +0100",
        "Message-ID: <87@corpus.example>",
        "",
        "Click here.",
        "",
    )


@message("88-received-spf-only")
def _() -> bytes:
    return lines(
        "Received-SPF: softfail (mx.example.org: domain of transitioning alice@example.com)"
        " client-ip=192.0.2.1",
        *head(88, "Received-SPF only"),
        "",
        "Body.",
        "",
    )


@message("89-reply-to-same-org")
def _() -> bytes:
    return lines(
        *head(89, "Reply-To on a subdomain"),
        "Reply-To: support@help.example.com",
        "Return-Path: <bounces@mailer.example.com>",
        "",
        "Not suspicious.",
        "",
    )


def write_all(target: Path = HERE) -> dict[str, bytes]:
    """Write every message as ``target/NAME.eml``; returns them by name."""
    written = {}
    for name, build in MESSAGES.items():
        raw = build()
        (target / f"{name}.eml").write_bytes(raw)
        written[name] = raw
    return written


def build_all() -> dict[str, bytes]:
    return {name: build() for name, build in MESSAGES.items()}


if __name__ == "__main__":
    done = write_all()
    print(f"wrote {len(done)} messages to {HERE}", file=sys.stderr)
