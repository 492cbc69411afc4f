"""What a sync would do, without doing it: ``syncer sync --dry-run`` and ``config check --connect``.

Why: before the first sync of a large mailbox people want to know that the sign-in
works, which folders will be archived (and which not, and why), and how much will
be downloaded; before a POP3 account deletes anything, what and when. The preview
signs in, lists (LIST-STATUS or STATUS, with STATUS=SIZE where offered; POP3 LIST
and UIDL), compares with the archive's cursors, and changes nothing: no SELECT,
no FETCH, no RETR, no DELE, and no write to the archive (which may not exist yet).

The numbers are those the progress display is given (:func:`planned_download`):
for a first sync they are exact (STATUS MESSAGES and SIZE); for a re-sync the
count is an upper bound (UIDs since the stored UIDNEXT) and the size unknown.

Public API: :func:`preview_account`, :class:`AccountPreview`, :class:`FolderPreview`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from syncer.connect import open_maildrop, open_source
from syncer.errors import SyncerError
from syncer.sync.folders import planned_download, utcnow
from syncer.sync.maildrop import FOLDER, maildrop_keys
from syncer.sync.runner import pop3_options, sync_options

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import AccountConfig
    from syncer.sources.base import FolderSource, MailDropSource


@dataclass(frozen=True, slots=True)
class FolderPreview:
    """One folder as listed: its size, whether it is archived (else why not), what is new.

    :ivar new_bytes: None when the server does not say (no STATUS=SIZE, or a re-sync).
    """

    name: str
    messages: int | None
    size: int | None
    excluded: str | None = None
    new_messages: int = 0
    new_bytes: int | None = 0
    first_sync: bool = False


@dataclass(frozen=True, slots=True)
class AccountPreview:
    """What one account's sync would do; ``error`` when the server could not be asked."""

    account: str
    protocol: str
    folders: tuple[FolderPreview, ...] = ()
    deletions: tuple[str, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def new_messages(self) -> int:
        return sum(f.new_messages for f in self.folders if f.excluded is None)

    @property
    def new_bytes(self) -> int | None:
        sizes = [f.new_bytes for f in self.folders if f.excluded is None and f.new_messages]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    @property
    def first_sync(self) -> bool:
        return any(f.first_sync for f in self.folders if f.excluded is None)


def preview_account(
    account: AccountConfig,
    store: ArchiveStore | None,
    *,
    folder_globs: Sequence[str] = (),
    connect: Callable[[AccountConfig], FolderSource] = open_source,
    connect_pop3: Callable[[AccountConfig], MailDropSource] = open_maildrop,
    now: datetime | None = None,
) -> AccountPreview:
    """Sign in and say what a sync of ``account`` would do. Never raises ``SyncerError``.

    :param store: the archive, or None when there is none yet (everything is new).
    """
    try:
        if account.protocol == "pop3":
            return _preview_pop3(account, store, connect_pop3, now or utcnow())
        return _preview_imap(account, store, folder_globs, connect)
    except SyncerError as exc:
        return AccountPreview(account=account.name, protocol=account.protocol, error=str(exc))


def _preview_imap(
    account: AccountConfig,
    store: ArchiveStore | None,
    folder_globs: Sequence[str],
    connect: Callable[[AccountConfig], FolderSource],
) -> AccountPreview:
    options = sync_options(account, folder_globs)
    source = connect(account)
    try:
        listed = source.list_folders(with_status=True)
    finally:
        source.close()
    known = store.folders(account.name) if store is not None else {}
    folders = []
    for status in listed:
        record = known.get(status.name)
        cursor = record.cursor if record and not record.deleted else None
        excluded = options.exclusion(status.display_name) if status.selectable else "not selectable"
        share = planned_download(status, cursor)
        folders.append(
            FolderPreview(
                name=status.display_name,
                messages=status.messages,
                size=status.size,
                excluded=excluded,
                new_messages=share[0] if share else 0,
                new_bytes=share[1] if share else 0,
                first_sync=cursor is None or cursor.uidvalidity != status.uidvalidity,
            )
        )
    return AccountPreview(account=account.name, protocol="imap", folders=tuple(folders))


def _preview_pop3(
    account: AccountConfig,
    store: ArchiveStore | None,
    connect: Callable[[AccountConfig], MailDropSource],
    now: datetime,
) -> AccountPreview:
    options = pop3_options(account)
    source = connect(account)
    try:
        listing = source.listing()
        keys, warnings = maildrop_keys(source, listing)
    finally:
        source.close()  # QUIT with no DELE issued: nothing is deleted
    seen = store.pop3_seen(account.name) if store is not None else {}
    wanted = [e for e in listing if keys[e.number] not in seen]
    inbox = FolderPreview(
        name=FOLDER,
        messages=len(listing),
        size=sum(e.size for e in listing),
        new_messages=len(wanted),
        new_bytes=sum(e.size for e in wanted),
        first_sync=not seen,
    )
    deletions: list[str] = []
    if options.delete_after_archive:
        archived = len(listing) - len(wanted)
        deletions.append(
            f"would delete {len(listing)} message(s) from the server at the end of the run "
            f"({len(wanted)} once archived and verified, {archived} archived before)"
        )
    elif options.delete_after_days is not None:
        days = options.delete_after_days
        cutoff = now - timedelta(days=days)
        on_server = [seen[keys[e.number]] for e in listing if keys[e.number] in seen]
        due = [r for r in on_server if r.sha256 is not None and r.seen_at <= cutoff]
        later = sorted(r.seen_at + timedelta(days=days) for r in on_server if r not in due)
        deletions.append(f"would delete {len(due)} message(s) archived more than {days} days ago")
        if later:
            deletions.append(f"next deletion on {later[0]:%Y-%m-%d} ({len(later)} waiting)")
        if wanted:
            when = now + timedelta(days=days)
            deletions.append(f"the {len(wanted)} new message(s) on or after {when:%Y-%m-%d}")
    else:
        deletions.append("keeps every message on the server (leave_on_server)")
    return AccountPreview(
        account=account.name,
        protocol="pop3",
        folders=(inbox,),
        deletions=tuple(deletions),
        notes=warnings,
    )
