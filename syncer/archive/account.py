"""One account's part of the archive: :class:`AccountArchive`, the sync pipeline's handle.

Why this module exists: a sync works on one account from start to end. Without a
handle the pipeline passed ``store`` and ``account`` side by side through every
function and named the account again in each of its twenty-odd store calls; the
handle carries the account once (``store.for_account(name)``) and its methods are
the store's per-account operations without that argument. Everything else of the
archive (blobs, audit, holds) stays on :attr:`AccountArchive.store`.

Each method is one transaction, exactly as the :class:`~syncer.archive.store.ArchiveStore`
method it calls (whose docstring says what it guarantees).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from syncer.model import FlagState, FolderCursor, FolderStatus, RemoteMessage

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore, FolderRecord, Generation, Link, Move
    from syncer.archive.store_pop3 import POP3Seen

__all__ = ["AccountArchive"]


@dataclass(frozen=True, slots=True)
class AccountArchive:
    """The archive of the account ``name`` (see the module docstring)."""

    store: ArchiveStore
    name: str

    # -- folders ---------------------------------------------------------------------------

    def folders(self) -> dict[str, FolderRecord]:
        return self.store.folders(self.name)

    def upsert_folders(self, statuses: list[FolderStatus]) -> None:
        self.store.upsert_folders(self.name, statuses)

    def mark_folder_renamed(self, old: str, new: str) -> None:
        self.store.mark_folder_renamed(self.name, old, new)

    def mark_folder_deleted(self, folder: str) -> None:
        self.store.mark_folder_deleted(self.name, folder)

    def set_cursor(self, folder: str, cursor: FolderCursor) -> None:
        self.store.set_cursor(self.name, folder, cursor)

    def record_full_scan(self, folder: str, at: datetime) -> None:
        self.store.record_full_scan(self.name, folder, at)

    # -- UIDVALIDITY -----------------------------------------------------------------------

    def generation(self, folder: str, uidvalidity: int) -> Generation:
        return self.store.generation(self.name, folder, uidvalidity)

    def close_uidvalidity(self, folder: str, old_uidvalidity: int) -> int:
        return self.store.close_uidvalidity(self.name, folder, old_uidvalidity)

    def move_generation(
        self, folder: str, old_uidvalidity: int, moves: list[Move], cursor: FolderCursor
    ) -> bool:
        return self.store.move_generation(self.name, folder, old_uidvalidity, moves, cursor)

    def set_uidvalidity_stable(self, folder: str) -> None:
        self.store.set_uidvalidity_stable(self.name, folder)

    # -- entries ---------------------------------------------------------------------------

    def live_uids(self, folder: str, uidvalidity: int) -> set[int]:
        return self.store.live_uids(self.name, folder, uidvalidity)

    def archive_batch(
        self,
        folder: str,
        uidvalidity: int,
        messages: list[RemoteMessage],
        cursor: FolderCursor | None,
    ) -> int:
        return self.store.archive_batch(self.name, folder, uidvalidity, messages, cursor)

    def link_existing(
        self,
        folder: str,
        uidvalidity: int,
        links: list[Link],
        *,
        labels: dict[int, tuple[str, ...]] | None = None,
    ) -> int:
        return self.store.link_existing(self.name, folder, uidvalidity, links, labels=labels)

    def update_flags(
        self,
        folder: str,
        uidvalidity: int,
        changes: list[FlagState],
        cursor: FolderCursor | None,
    ) -> int:
        return self.store.update_flags(self.name, folder, uidvalidity, changes, cursor)

    def mark_gone(
        self, folder: str, uidvalidity: int, uids: Iterable[int], cursor: FolderCursor | None
    ) -> int:
        return self.store.mark_gone(self.name, folder, uidvalidity, uids, cursor)

    # -- finding bodies already archived ----------------------------------------------------

    def emailid_index(self) -> dict[str, str]:
        return self.store.emailid_index(self.name)

    def header_index(self, folder: str) -> dict[tuple[int, str], str]:
        return self.store.header_index(self.name, folder)

    # -- POP3 ------------------------------------------------------------------------------

    def pop3_seen(self) -> dict[str, POP3Seen]:
        return self.store.pop3_seen(self.name)

    def archive_pop3(self, messages: Sequence[RemoteMessage]) -> int:
        return self.store.archive_pop3(self.name, messages)

    def mark_pop3_deleted(self, uidls: Iterable[str], at: datetime) -> int:
        return self.store.mark_pop3_deleted(self.name, uidls, at)

    def mark_pop3_on_server(self, uidls: Iterable[str]) -> int:
        return self.store.mark_pop3_on_server(self.name, uidls)

    def record_pop3_sync(self, at: datetime) -> None:
        self.store.record_pop3_sync(self.name, at)
