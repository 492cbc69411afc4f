"""A re-sync writes the folder list only where the server's listing differs from the archive.

Why: a no-change re-sync should cost reads only; but a folder that is new,
reappears after a deletion, or changes what LIST says about it (display name,
special-use, mailbox id ...) must still be recorded exactly as before.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.account import AccountArchive
from syncer.archive.engine import upgrade
from syncer.archive.models import folders
from syncer.archive.store import ArchiveStore
from syncer.model import FolderStatus
from syncer.sources.folder_names import FolderNaming
from syncer.sources.memory import ALL_CAPABILITIES, MemorySource
from syncer.sync.folders import SyncOptions, sync_folders

ACCOUNT = "acct"


class _ListingSource(MemorySource):
    """A MemorySource whose listing can be edited (special-use, mailbox id ...)."""

    def __init__(self) -> None:
        super().__init__(ALL_CAPABILITIES)
        self.edits: dict[str, dict[str, Any]] = {}

    def list_folders(self, *, with_status: bool = True) -> list[FolderStatus]:
        listed = super().list_folders(with_status=with_status)
        return [replace(f, **self.edits.get(f.name, {})) for f in listed]


@pytest.fixture
def store(tmp_path: Path) -> ArchiveStore:
    url = f"sqlite:///{tmp_path}/a.db"
    upgrade(url)
    opened = ArchiveStore.open(url)
    opened.ensure_account(ACCOUNT, "imap")
    return opened


def _sync_recording_upserts(
    server: MemorySource, store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    upserted: list[str] = []
    real = store.upsert_folders

    def spy(account: str, statuses: list[FolderStatus]) -> None:
        upserted.extend(s.name for s in statuses)
        real(account, statuses)

    monkeypatch.setattr(store, "upsert_folders", spy)
    sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
    monkeypatch.undo()
    return upserted


def test_unchanged_listing_is_not_written_again(
    store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _ListingSource()
    for name in ("INBOX", "Sent"):
        server.create_folder(name)
    assert sorted(_sync_recording_upserts(server, store, monkeypatch)) == ["INBOX", "Sent"]
    assert _sync_recording_upserts(server, store, monkeypatch) == []

    server.edits["Sent"] = {"special_use": "\\Sent", "mailbox_id": "F1"}
    assert _sync_recording_upserts(server, store, monkeypatch) == ["Sent"]
    assert store.folders(ACCOUNT)["Sent"].special_use == "\\Sent"
    assert store.folders(ACCOUNT)["Sent"].mailbox_id == "F1"
    assert _sync_recording_upserts(server, store, monkeypatch) == []

    # A server that stops sending the mailbox id does not erase the recorded one.
    server.edits["Sent"] = {"special_use": "\\Sent"}
    assert _sync_recording_upserts(server, store, monkeypatch) == []
    assert store.folders(ACCOUNT)["Sent"].mailbox_id == "F1"

    server.create_folder("Drafts")
    assert _sync_recording_upserts(server, store, monkeypatch) == ["Drafts"]


def test_a_folder_that_reappears_is_recorded_again(
    store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _ListingSource()
    server.create_folder("INBOX")
    server.create_folder("Old")
    _sync_recording_upserts(server, store, monkeypatch)
    server.delete_folder("Old")
    _sync_recording_upserts(server, store, monkeypatch)
    assert store.folders(ACCOUNT)["Old"].deleted

    server.create_folder("Old")
    assert _sync_recording_upserts(server, store, monkeypatch) == ["Old"]
    assert not store.folders(ACCOUNT)["Old"].deleted
    assert _sync_recording_upserts(server, store, monkeypatch) == []


def test_globs_match_shown_names_on_an_inbox_prefixed_source(store: ArchiveStore) -> None:
    """Issue 20 #5 on the in-memory source modelled on Courier (``INBOX.``, ``.``): the
    pipeline narrows by ``Archive/*`` and excludes ``Trash`` as on the real servers
    (tests/integration/test_sync_servers.py)."""
    server = MemorySource(naming=FolderNaming("INBOX.", "."))
    for n, folder in enumerate(
        ["INBOX", "INBOX.Archive.2024", "INBOX.Archive.2023", "INBOX.Trash"]
    ):
        server.append(folder, f"Subject: {n}\r\n\r\n{n}\r\n".encode())

    def archived() -> set[str]:
        return {
            r.display_name
            for r in store.folders(ACCOUNT).values()
            if store.entries(ACCOUNT, r.name)
        }

    sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions(only=("Archive/*",)))
    assert archived() == {"Archive/2024", "Archive/2023"}
    sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions(exclude=("Trash",)))
    assert archived() == {"INBOX", "Archive/2024", "Archive/2023"}


def test_the_next_sync_rewrites_display_names_of_an_older_archive(store: ArchiveStore) -> None:
    """Archives made before issue 20 #5 hold ``INBOX.Archive.2024`` as display name;
    no migration can shorten it (the prefix is known only from NAMESPACE), the next sync
    does, with no message downloaded again."""
    server = MemorySource(naming=FolderNaming("INBOX.", "."))
    server.append("INBOX.Archive.2024", b"Subject: old\r\n\r\nold\r\n")
    sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
    wire = "INBOX.Archive.2024"
    with store.engine.begin() as conn:  # what the older code stored
        conn.execute(folders.update().where(folders.c.name == wire).values(display_name=wire))
    assert store.folders(ACCOUNT)[wire].display_name == wire
    fetched = server.bodies_fetched
    sync_folders(server, AccountArchive(store, ACCOUNT), SyncOptions())
    assert store.folders(ACCOUNT)[wire].display_name == "Archive/2024"
    assert server.bodies_fetched == fetched
