"""Export and import against a real archive (SQLite and PostgreSQL): round trips keep
every byte, hostile folder names and subjects stay inside the export directory,
--since-last is incremental, a Google Takeout mbox is filed by its labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncer.archive.store import ArchiveStore
from syncer.errors import UsageError
from syncer.formats import mbox
from syncer.model import FolderStatus, RemoteMessage
from syncer.transfer.export import STATE_FILE, ExportOptions, export_archive
from syncer.transfer.importer import import_path
from tests.mail_samples import mail, names

#: Folder wire name -> display name, including names meant to escape the export directory.
FOLDERS = {
    "INBOX": "INBOX",
    "&ANw-berweisungen": "Überweisungen",
    "Archive/2023": "Archive/2023",
    "../../etc": "../../etc",
    "/etc/cron.d": "/etc/cron.d",
    "CON": "CON",
    "cur": "cur",
    "a/../../b": "a/../../b",
}
HOSTILE_SUBJECTS = [
    b"../../../../tmp/pwned",
    b"/etc/passwd",
    b"nul\x00in\x01subject\x1b[31m",
    b"x" * 3000,
    b"..",
]
T0 = datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)


def _message(n: int, subject: bytes) -> bytes:
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: "
        + subject
        + f"\r\nMessage-ID: <m{n}@example.com>\r\n\r\n".encode()
        + f"From the body of {n}\r\n>From quoted\r\n".encode()
    )


def _fill(store: ArchiveStore, account: str = "work") -> set[str]:
    """Every sample message in a few folders, flags and old INTERNALDATEs; returns the sha256s."""
    store.ensure_account(account, "imap")
    store.upsert_folders(
        account,
        [FolderStatus(name, display, "/") for name, display in FOLDERS.items()],
    )
    raws = [mail(name) for name in names()]
    raws += [_message(n, s) for n, s in enumerate(HOSTILE_SUBJECTS)]
    flags = [("\\Seen",), ("\\Answered", "\\Seen", "$Label1"), (), ("\\Flagged", "todo")]
    folders = list(FOLDERS)
    for index, folder in enumerate(folders):
        batch = [
            RemoteMessage(
                folder=folder,
                uid=uid,
                raw=raw,
                flags=flags[uid % len(flags)],
                internaldate=T0 + timedelta(days=uid),
            )
            for uid, raw in enumerate(raws[index::2], start=1)
        ]
        store.archive_batch(account, folder, 7, batch, None)
    return {store_sha for store_sha in _shas(store)}


def _shas(store: ArchiveStore) -> set[str]:
    return {p.sha256 for ids in store.transfer_message_ids() for p in store.placements(ids)}


@pytest.fixture
def filled(archive_store: ArchiveStore) -> Iterator[tuple[ArchiveStore, set[str]]]:
    yield archive_store, _fill(archive_store)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ArchiveStore]:
    with ArchiveStore.open(f"sqlite:///{tmp_path / 'new' / 'new.db'}", migrate=True) as store:
        yield store


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_mbox_export_and_import_give_back_the_same_messages(
    filled: tuple[ArchiveStore, set[str]], fresh: ArchiveStore, tmp_path: Path
) -> None:
    store, shas = filled
    out = tmp_path / "mbox"
    summary = export_archive(store, ExportOptions("mbox", out))
    assert summary.messages == sum(
        1 for ids in store.transfer_message_ids() for _ in store.placements(ids)
    )
    result = import_path(fresh, "mbox", out / "work", "restored")
    assert _shas(fresh) == shas
    assert result.total_added == summary.messages
    # Folder names come back from the file layout (made safe where they were hostile).
    assert {"INBOX", "Überweisungen", "Archive/2023", "_CON"} <= set(result.added)
    again = import_path(fresh, "mbox", out / "work", "restored")
    assert again.total_added == 0, "an import of the same files adds nothing"


def test_one_mbox_for_everything_holds_each_message_once(
    filled: tuple[ArchiveStore, set[str]], fresh: ArchiveStore, tmp_path: Path
) -> None:
    store, shas = filled
    export_archive(store, ExportOptions("mbox", tmp_path / "one", split="none"))
    file = tmp_path / "one" / "messages.mbox"
    assert len(list(mbox.read_messages(file))) == len(shas)
    import_path(fresh, "mbox", file, "restored", folder="All")
    assert _shas(fresh) == shas


def test_maildir_export_and_import_keep_bytes_flags_and_dates(
    filled: tuple[ArchiveStore, set[str]], fresh: ArchiveStore, tmp_path: Path
) -> None:
    store, shas = filled
    out = tmp_path / "maildir"
    export_archive(store, ExportOptions("maildir", out))
    import_path(fresh, "maildir", out / "work", "restored")
    assert _shas(fresh) == shas

    def seen(
        s: ArchiveStore, account: str
    ) -> set[tuple[str, str, tuple[str, ...], datetime | None]]:
        return {
            (p.display_name, p.sha256, p.flags, p.internaldate)
            for ids in s.transfer_message_ids(account=account)
            for p in s.placements(ids, account=account)
            if p.display_name in ("INBOX", "Überweisungen", "Archive/2023")
        }

    assert seen(fresh, "restored") == seen(store, "work")


def test_eml_export_of_hostile_names_stays_inside_the_directory(
    filled: tuple[ArchiveStore, set[str]], tmp_path: Path
) -> None:
    store, shas = filled
    out = tmp_path / "deep" / "eml"
    summary = export_archive(store, ExportOptions("eml", out))
    files = [p for p in _files(out) if p.name != STATE_FILE]
    assert len(files) == summary.messages
    root = out.resolve()
    for path in files:
        assert path.resolve().is_relative_to(root)
        assert path.suffix == ".eml" and len(path.name.encode()) <= 255
    assert not list((tmp_path / "deep").glob("*.eml")), "nothing beside the export directory"
    assert not (tmp_path / "etc").exists() and not Path("/tmp/pwned").exists()
    contents = {p.read_bytes() for p in files}
    assert {store.get_raw(sha) for sha in shas} == contents, "exported bytes = archived bytes"


def test_since_last_exports_only_what_is_new_and_repairs_a_torn_mbox(
    archive_store: ArchiveStore, tmp_path: Path
) -> None:
    store = archive_store
    store.ensure_account("work", "imap")
    first = [RemoteMessage("INBOX", n, _message(n, b"one"), internaldate=T0) for n in (1, 2)]
    store.archive_batch("work", "INBOX", 1, first, None)
    out = tmp_path / "inc"
    assert export_archive(store, ExportOptions("mbox", out)).messages == 2
    with pytest.raises(UsageError, match="holds an earlier export"):
        export_archive(store, ExportOptions("mbox", out))
    box = out / "work" / "INBOX.mbox"
    with box.open("ab") as fh:
        fh.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nhalf a mess")  # a run that died
    later = [RemoteMessage("INBOX", 3, _message(3, b"two"), internaldate=T0)]
    store.archive_batch("work", "INBOX", 1, later, None)
    summary = export_archive(store, ExportOptions("mbox", out, since_last=True))
    assert (summary.messages, summary.skipped) == (1, 2)
    assert sorted(m.raw for m in mbox.read_messages(box)) == sorted(
        _message(n, s) for n, s in ((1, b"one"), (2, b"one"), (3, b"two"))
    )
    state = json.loads((out / STATE_FILE).read_text())
    assert state["mbox"]["work/INBOX.mbox"] == box.stat().st_size
    with pytest.raises(UsageError, match="maildir"):
        export_archive(store, ExportOptions("maildir", out, since_last=True))


def test_google_takeout_labels_become_folders(fresh: ArchiveStore, tmp_path: Path) -> None:
    takeout = tmp_path / "All mail Including Spam and Trash.mbox"
    takeout.write_bytes(
        b"From 1@xxx Wed Mar 06 17:49:51 +0000 2019\n"
        b'X-Gmail-Labels: Inbox,Important,"Work, 2023",Opened\n'
        b"Message-ID: <t1@example.com>\nSubject: one\n\nbody one\n\n"
        b"From 2@xxx Thu Mar 07 08:00:00 +0000 2019\n"
        b"X-Gmail-Labels: Sent,Unread,Starred\n"
        b"Message-ID: <t2@example.com>\nSubject: two\n\n>From quoted\n\n"
        b"From 3@xxx Fri Mar 08 08:00:00 +0000 2019\n"
        b"X-Gmail-Labels: Archived,Category Updates\n"
        b"Subject: three\n\nbody three\n"
    )
    summary = import_path(fresh, "mbox", takeout, "gmail")
    assert summary.added == {"INBOX": 1, "Work, 2023": 1, "Sent": 1, "Archive": 1}
    folders = fresh.folders("gmail")
    assert folders["Sent"].special_use == "\\Sent"
    placements = {
        (p.display_name, p.flags, p.internaldate)
        for ids in fresh.transfer_message_ids()
        for p in fresh.placements(ids)
    }
    assert ("INBOX", ("\\Seen",), datetime(2019, 3, 6, 17, 49, 51, tzinfo=UTC)) in placements
    assert ("Sent", ("\\Flagged",), datetime(2019, 3, 7, 8, 0, tzinfo=UTC)) in placements
    sent_raw = next(
        fresh.get_raw(p.sha256)
        for ids in fresh.transfer_message_ids()
        for p in fresh.placements(ids)
        if p.display_name == "Sent"
    )
    assert sent_raw.endswith(b"\n\nFrom quoted\n")
    # The labels are recorded too, as Gmail's IMAP lists them: label: finds a Takeout
    # import as it finds an IMAP sync.
    assert fresh.count_messages('label:"Work, 2023"') == 1
    assert fresh.count_messages("label:Work") == 0
    placement_labels = {
        p.labels for ids in fresh.transfer_message_ids() for p in fresh.placements(ids)
    }
    assert ("Work, 2023", "\\Important", "\\Inbox") in placement_labels
    assert ("\\Sent", "\\Starred") in placement_labels
    assert () in placement_labels  # Archived, Category Updates: no labels in IMAP terms


def test_a_query_selects_what_is_exported(
    filled: tuple[ArchiveStore, set[str]], tmp_path: Path
) -> None:
    store, _ = filled
    out = tmp_path / "query"
    export_archive(store, ExportOptions("eml", out, query="folder:Überweisungen"))
    files = [p for p in _files(out) if p.name != STATE_FILE]
    wanted = {sha for _, _, sha, _, _ in store.entries("work", "&ANw-berweisungen")}
    # The selected messages, each in every folder it lives in (some are in two).
    assert {p.name[-16:-4] for p in files} == {sha[:12] for sha in wanted}
    assert len(list((out / "work" / "Überweisungen").iterdir())) == len(wanted)
