"""The one translation between wire names and the names people see (issue 20 #5):
syncer.sources.folder_names, with the namespaces of the four servers in the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.archive.store import ArchiveStore
from syncer.formats import mbox
from syncer.model import FolderStatus
from syncer.sources.folder_names import join_levels, shown_levels
from syncer.sources.imap.listing import Namespaces
from syncer.transfer.importer import import_path

#: NAMESPACE as each server in tests/servers answers it.
COURIER = Namespaces((("personal", "INBOX.", "."), ("shared", "shared.", ".")))
CYRUS_DEBIAN = Namespaces((("personal", "INBOX.", "."), ("other", "user.", ".")))
CYRUS_UPSTREAM = Namespaces(
    (("personal", "", "/"), ("other", "Other Users/", "/"), ("shared", "Shared Folders/", "/"))
)
DOVECOT = Namespaces((("personal", "", "/"), ("shared", "shared/", "/")))


@pytest.mark.parametrize(
    ("namespaces", "wire", "shown"),
    [
        (COURIER, "INBOX", "INBOX"),
        (COURIER, "INBOX.Trash", "Trash"),
        (COURIER, "INBOX.Archive.2024", "Archive/2024"),
        (COURIER, "INBOX.&ANw-berweisungen", "Überweisungen"),
        (COURIER, "shared.team.Plans", "shared/team/Plans"),
        (CYRUS_DEBIAN, "INBOX.Archive.2024", "Archive/2024"),
        (CYRUS_DEBIAN, "user.bob.Sent", "user/bob/Sent"),
        (CYRUS_DEBIAN, "user.bob", "user/bob"),
        # What is left would read as INBOX or as the other users' root: the prefix stays.
        (CYRUS_DEBIAN, "INBOX.user.bob", "INBOX/user/bob"),
        (CYRUS_DEBIAN, "INBOX.INBOX", "INBOX/INBOX"),
        # A / inside a level of a .-separated server is escaped, never a new level.
        (CYRUS_DEBIAN, "INBOX.a/b", "a%2Fb"),
        (CYRUS_DEBIAN, "INBOX.100%", "100%"),
        (CYRUS_DEBIAN, "INBOX.x%2Fy", "x%252Fy"),
        (CYRUS_UPSTREAM, "Archive/2024", "Archive/2024"),
        (CYRUS_UPSTREAM, "Other Users/bob/Sent", "Other Users/bob/Sent"),
        (DOVECOT, "INBOX", "INBOX"),
        (DOVECOT, "INBOX/child", "INBOX/child"),
        (DOVECOT, "a.b", "a.b"),
        (DOVECOT, "&ANw-berweisungen &- Co", "Überweisungen & Co"),
        (DOVECOT, "shared/bob/INBOX", "shared/bob/INBOX"),
    ],
)
def test_shown_name_and_back(namespaces: Namespaces, wire: str, shown: str) -> None:
    naming = namespaces.naming()
    assert naming.shown(wire) == shown
    assert naming.wire(shown) == wire


def test_a_server_without_namespace_shows_names_decoded() -> None:
    naming = Namespaces.default("/").naming()
    assert naming.shown("Archive/2024") == "Archive/2024"
    assert naming.shown("Flat", None) == "Flat"


def test_levels_for_another_server_replace_its_delimiter() -> None:
    """Push: a level holding the target's delimiter cannot be one level there."""
    courier = COURIER.naming()
    assert courier.wire_of_levels(("a.b", "Überweisungen")) == "INBOX.a_b.&ANw-berweisungen"
    assert courier.wire_of_levels(("INBOX",)) == "INBOX"


_LEVEL = st.text(st.characters(codec="utf-8"), min_size=1)


@given(st.lists(_LEVEL, min_size=1, max_size=4))
def test_levels_round_trip_through_a_shown_name(levels: list[str]) -> None:
    assert shown_levels(join_levels(levels)) == tuple(levels)


@given(st.lists(_LEVEL.filter(lambda s: "." not in s), min_size=1, max_size=4))
def test_courier_wire_names_round_trip(levels: list[str]) -> None:
    naming = CYRUS_DEBIAN.naming()
    wire = naming.wire_of_levels(levels)
    shown = naming.shown(wire)
    assert naming.wire(shown) == wire
    assert shown.count("/") == len(levels) - 1 or shown.startswith("INBOX/")


def test_import_into_an_inbox_prefixed_account_files_by_the_shown_name(tmp_path: Path) -> None:
    """An mbox imported into ``Archive`` of a Courier-style account lands in the synced
    folder ``INBOX.Archive``, not in a second folder spelt ``Archive``."""
    store = ArchiveStore.open(f"sqlite:///{tmp_path / 'a.db'}", migrate=True)
    try:
        store.ensure_account("c", "imap")
        store.upsert_folders(
            "c",
            [
                FolderStatus("INBOX", "INBOX", "."),
                FolderStatus("INBOX.Archive", "Archive", "."),
            ],
        )
        file = tmp_path / "in.mbox"
        with file.open("wb") as out:
            mbox.write_message(out, b"Subject: x\r\n\r\nbody\r\n", None)
        import_path(store, "mbox", file, "c", folder="Archive")
        assert set(store.folders("c")) == {"INBOX", "INBOX.Archive"}
        assert len(store.entries("c", "INBOX.Archive")) == 1
    finally:
        store.close()
