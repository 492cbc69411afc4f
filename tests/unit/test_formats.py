"""The file formats of export and import: mboxrd quoting undone exactly, Maildir flags,
safe names that never leave their directory (with a hypothesis property test).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.formats import maildir, mbox
from syncer.formats.eml import eml_name, raw_subject
from syncer.formats.safe_names import MAX_COMPONENT_BYTES, RESERVED, safe_component, safe_relpath
from tests.mail_samples import mail, names

WHEN = datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)


def _roundtrip(messages: list[bytes], tmp_path: Path) -> list[bytes]:
    path = tmp_path / "box.mbox"
    with path.open("wb") as out:
        for raw in messages:
            mbox.write_message(out, raw, WHEN)
    return [m.raw for m in mbox.read_messages(path)]


# -- mbox ---------------------------------------------------------------------------------


def test_mboxrd_quotes_every_from_line_level_and_reading_undoes_it(tmp_path: Path) -> None:
    raw = (
        b"From: a@example.com\r\nSubject: x\r\n\r\n"
        b"From the start\r\n>From once quoted\r\n>>From twice\r\n\r\nFrom after a blank\r\n"
    )
    out = io.BytesIO()
    mbox.write_message(out, raw, WHEN)
    written = out.getvalue()
    assert written.startswith(b"From MAILER-DAEMON Fri Feb 13 23:31:30 2009\n")
    assert b"\n>From the start" in written
    assert b"\n>>From once quoted" in written and b"\n>>>From twice" in written
    assert _roundtrip([raw], tmp_path) == [raw]


def test_every_sample_message_survives_an_mbox_byte_for_byte(tmp_path: Path) -> None:
    samples = [mail(name) for name in names()]
    samples += [b"no final newline", b"From the very first line\n", b"", b"\r\n", b"x\r\n\r\n"]
    assert _roundtrip(samples, tmp_path) == samples


@given(st.lists(st.binary(max_size=300), max_size=6))
def test_any_bytes_survive_an_mbox(
    tmp_path_factory: pytest.TempPathFactory, raws: list[bytes]
) -> None:
    # Messages from IMAP are CRLF text, but the format must not depend on that.
    assert _roundtrip(raws, tmp_path_factory.mktemp("mbox")) == raws


def test_from_line_date_and_zone_are_read(tmp_path: Path) -> None:
    path = tmp_path / "takeout.mbox"
    path.write_bytes(
        b"From 1234@xxx Wed Mar 06 17:49:51 +0100 2019\nSubject: a\n\nbody\n\n"
        b"From MAILER-DAEMON Fri Feb 13 23:31:30 2009\nSubject: b\n\nbody\n\n"
    )
    dates = [m.when for m in mbox.read_messages(path)]
    assert dates == [datetime(2019, 3, 6, 16, 49, 51, tzinfo=UTC), WHEN]


def test_a_file_that_is_not_an_mbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.mbox"
    path.write_bytes(b"Subject: hello\n\n")
    with pytest.raises(ValueError, match="not an mbox"):
        list(mbox.read_messages(path))


def test_gmail_labels_and_status_flags() -> None:
    raw = (
        b'X-Gmail-Labels: Inbox,Important,"Work, 2023",Opened\r\n'
        b"Status: RO\r\nX-Status: AF\r\n\r\nbody"
    )
    assert mbox.gmail_labels(raw) == ["Inbox", "Important", "Work, 2023", "Opened"]
    assert mbox.gmail_labels(b"Subject: x\r\n\r\n") is None
    assert mbox.status_flags(raw) == ("\\Answered", "\\Flagged", "\\Seen")


# -- Maildir ------------------------------------------------------------------------------


def test_flags_map_to_the_info_suffix_and_keywords_to_the_sidecar(tmp_path: Path) -> None:
    assert maildir.info_suffix(["\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted"]) == (
        ":2,DFRST",
        [],
    )
    assert maildir.info_suffix(["$Forwarded", "\\Recent", "$Label1"]) == (":2,P", ["$Label1"])
    writer = maildir.MaildirWriter()
    folder = tmp_path / "INBOX"
    path = writer.add(folder, b"raw\r\n", ["\\Seen", "$Label1", "todo"], WHEN, "abc")
    writer.close()
    assert path.name.endswith(":2,S") and path.parent.name == "cur"
    assert int(path.stat().st_mtime) == int(WHEN.timestamp())
    (read,) = list(maildir.read_folder(folder))
    assert read.raw == b"raw\r\n"
    assert read.flags == ("$Label1", "\\Seen", "todo")
    assert read.when == WHEN


def test_reading_takes_both_layouts_and_dovecot_keywords(tmp_path: Path) -> None:
    for sub in ("", ".Archive.2023", "tree/child"):
        for part in ("cur", "new", "tmp"):
            (tmp_path / sub / part).mkdir(parents=True, exist_ok=True)
    (tmp_path / "new" / "1.a.host").write_bytes(b"new mail")
    (tmp_path / ".Archive.2023" / "cur" / "2.b.host:2,RSa").write_bytes(b"old mail")
    (tmp_path / ".Archive.2023" / "dovecot-keywords").write_text("0 $Important\n")
    found = {parts: path for parts, path in maildir.find_folders(tmp_path)}
    assert set(found) == {(), ("Archive", "2023"), ("tree", "child")}
    (new,) = list(maildir.read_folder(found[()]))
    assert new.flags == ()
    (old,) = list(maildir.read_folder(found[("Archive", "2023")]))
    assert old.flags == ("$Important", "\\Answered", "\\Seen")


# -- safe names ---------------------------------------------------------------------------

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "/absolute/path",
    "C:\\Windows\\System32",
    "nul\x00byte",
    "ctrl\x01\x1b[31mred\x7f",
    "CON",
    "com1.txt",
    "cur",
    "line\u2028break\u202eevil",
    "é" * 400,
    "   ",
    "",
    ".hidden",
    "trailing dots...",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_become_one_harmless_component(name: str, tmp_path: Path) -> None:
    safe = safe_component(name)
    _assert_harmless(safe)
    target = (tmp_path / safe).resolve()
    assert target.parent == tmp_path.resolve()


def _assert_harmless(safe: str) -> None:
    assert safe and safe not in (".", "..")
    assert not safe.startswith((".", " ")) and not safe.endswith((".", " "))
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in safe)
    assert len(safe.encode("utf-8")) <= MAX_COMPONENT_BYTES
    assert safe.split(".", 1)[0].rstrip(" ").lower() not in RESERVED


@given(st.text(max_size=600))
def test_any_text_becomes_a_harmless_component(name: str) -> None:
    _assert_harmless(safe_component(name))


@given(st.lists(st.text(max_size=40), max_size=6))
def test_any_folder_path_stays_below_its_root(parts: list[str]) -> None:
    relative = safe_relpath(parts)
    assert not relative.is_absolute()
    assert ".." not in relative.parts and len(relative.parts) == max(len(parts), 1)
    assert (PurePosixPath("/root") / relative).parts[:2] == ("/", "root")


def test_readable_names_stay_readable() -> None:
    assert safe_component("Überweisungen") == "Überweisungen"
    assert safe_component("Projects 2024 (old)") == "Projects 2024 (old)"
    assert safe_relpath(["Archiv", "日本語"]) == PurePosixPath("Archiv/日本語")


def test_eml_names_carry_date_subject_and_hash() -> None:
    sha = "3fa2c1d0e9b8" + "0" * 52
    assert eml_name(WHEN, "Re: ../../etc/passwd", sha) == (
        "20090213-233130-Re_ .._.._etc_passwd-3fa2c1d0e9b8.eml"
    )
    assert eml_name(None, None, sha) == "00000000-000000-no subject-3fa2c1d0e9b8.eml"
    assert raw_subject(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n") == "Grüße"
