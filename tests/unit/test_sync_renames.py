"""Rename detection (issue 20 #3): an equal UIDVALIDITY is no evidence on servers that use
the creation second for it (Cyrus, Courier); MAILBOXID is, and so are UIDVALIDITY,
UIDNEXT and MESSAGES all equal, matched one to one."""

from __future__ import annotations

from syncer.archive.store import FolderRecord
from syncer.model import FolderCursor, FolderStatus
from syncer.sync.renames import match_renames


def _record(
    name: str, validity: int, uidnext: int, messages: int, mbid: str | None = None
) -> FolderRecord:
    cursor = FolderCursor(uidvalidity=validity, uidnext=uidnext, messages=messages)
    return FolderRecord(name=name, display_name=name, cursor=cursor, deleted=False, mailbox_id=mbid)


def _status(
    name: str, validity: int, uidnext: int, messages: int, mbid: str | None = None
) -> FolderStatus:
    return FolderStatus(
        name=name,
        display_name=name,
        delimiter="/",
        uidvalidity=validity,
        uidnext=uidnext,
        messages=messages,
        mailbox_id=mbid,
    )


def test_equal_counters_and_validity_are_a_rename() -> None:
    assert match_renames({"Old": _record("Old", 7, 5, 4)}, [_status("New", 7, 5, 4)]) == {
        "Old": "New"
    }


def test_equal_validity_with_other_contents_is_no_rename() -> None:
    assert match_renames({"Gone": _record("Gone", 7, 5, 4)}, [_status("Fresh", 7, 3, 2)]) == {}


def test_mailbox_ids_decide_when_both_sides_have_them() -> None:
    vanished = {"Old": _record("Old", 7, 5, 4, "M1")}
    assert match_renames(vanished, [_status("New", 9, 1, 0, "M1")]) == {"Old": "New"}
    assert match_renames(vanished, [_status("New", 7, 5, 4, "M2")]) == {}


def test_two_vanished_folders_are_never_mapped_onto_one() -> None:
    vanished = {"A": _record("A", 7, 5, 4), "B": _record("B", 7, 5, 4)}
    assert match_renames(vanished, [_status("New", 7, 5, 4)]) == {}
    assert (
        match_renames({"A": _record("A", 7, 5, 4)}, [_status("X", 7, 5, 4), _status("Y", 7, 5, 4)])
        == {}
    )


def test_an_unfinished_or_never_synced_folder_is_no_evidence() -> None:
    unfinished = _record("Old", 7, 5, -1)
    assert match_renames({"Old": unfinished}, [_status("New", 7, 5, -1)]) == {}
