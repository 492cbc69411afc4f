"""The archive's side of export, import, push and backup (:class:`StoreTransfer`).

Why this module exists: getting mail out of the archive (files, another IMAP
account, a backup) and into it from files needs a few queries the sync path
does not: every folder a message is in with its flags, raw bytes by the
hundred, the ``push_log``, and a raw connection for SQLite's online backup.
:class:`~syncer.archive.store.ArchiveStore` inherits this mixin, so callers see
one class; nothing here knows a file format or a protocol.

Terminology: a *placement* is one message in one folder with the flags and
INTERNALDATE of that entry -- what an export writes as one file or one mbox
record and a push appends once. Per message and folder the live entry counts
(the newest one); a message with no live entry left (expunged on the server,
still archived) is placed in the folders it was in when it went.

Imported messages (mbox, Maildir) go through the one ingest path,
:meth:`~syncer.archive.store.ArchiveStore.archive_batch`, like POP3's do
(:mod:`syncer.archive.store_pop3`): entries under UIDVALIDITY 0
(:data:`IMPORT_UIDVALIDITY`, which no IMAP server uses) numbered after the
folder's highest UID there, and a body already in the folder is not added
again (deduplicated by SHA-256).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from syncer.archive.ingest import fingerprints
from syncer.archive.models import accounts, blobs, entries, folders, messages, push_log, utcnow
from syncer.archive.store_base import StoreCore, chunks, labels_tuple
from syncer.archive.store_normalize import Pending
from syncer.model import RemoteMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from syncer.model import FolderCursor

__all__ = ["IMPORT_UIDVALIDITY", "Placement", "StoreTransfer"]

#: The UIDVALIDITY of imported entries (shared with POP3: the UID numbering continues).
IMPORT_UIDVALIDITY = 0
#: Message ids per batch when no query selects them.
_ID_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Placement:
    """One archived message in one folder (see the module docstring).

    :ivar folder: the folder's wire name (the archive's key); ``display_name`` decoded.
    :ivar gone: no live entry: expunged on the server but still archived.
    """

    message_pk: int
    sha256: str
    size: int
    message_id: str | None
    header_sha256: str | None
    subject: str | None
    date: datetime | None
    account: str
    folder: str
    display_name: str
    delimiter: str | None
    special_use: str | None
    namespace: str
    flags: tuple[str, ...]
    internaldate: datetime | None
    gone: bool
    #: Gmail labels of the entry (X-GM-LABELS, a Takeout's X-Gmail-Labels); None: no labels
    #: were reported (not Gmail).
    labels: tuple[str, ...] | None = None


class StoreTransfer(StoreCore):
    """Export, import, push and backup queries (see :class:`~syncer.archive.store.ArchiveStore`)."""

    if TYPE_CHECKING:  # siblings in ArchiveStore this part calls; mypy checks they agree

        def select_message_ids(
            self,
            query: str,
            *,
            after_pk: int | None = None,
            batch_size: int = 1000,
            now: datetime | None = None,
            accounts: Sequence[str] | None = None,
        ) -> Iterator[list[int]]: ...
        def load_raw(self, items: Sequence[Pending]) -> list[bytes]: ...
        def archive_batch(
            self,
            account: str,
            folder: str,
            uidvalidity: int,
            messages: list[RemoteMessage],
            cursor: FolderCursor | None,
            *,
            also: Callable[[Connection, list[int]], None] | None = None,
        ) -> int: ...

    # ------------------------------------------------------------------ selecting

    def transfer_message_ids(
        self, query: str = "", account: str | None = None
    ) -> Iterator[list[int]]:
        """Message ids to export or push, ascending, in batches.

        An empty ``query`` takes every message (of ``account``, when given);
        otherwise the query language selects them
        (:meth:`~syncer.archive.search.store.StoreSearch.select_message_ids`).

        :raises QuerySyntaxError: for a malformed query.
        """
        if query.strip():
            yield from self.select_message_ids(query)
            return
        after = 0
        while True:
            stmt = select(entries.c.message_pk).distinct()
            if account is not None:
                stmt = (
                    stmt.join(folders, folders.c.id == entries.c.folder_id)
                    .join(accounts, accounts.c.id == folders.c.account_id)
                    .where(accounts.c.name == account)
                )
            stmt = stmt.where(entries.c.message_pk > after).order_by(entries.c.message_pk)
            with self._read("listing messages to transfer") as conn:
                ids = list(conn.execute(stmt.limit(_ID_BATCH)).scalars())
            if not ids:
                return
            yield ids
            after = ids[-1]

    def placements(self, message_pks: Sequence[int], account: str | None = None) -> list[Placement]:
        """Where each of ``message_pks`` lives (see the module docstring), by message then folder.

        :param account: only folders of this account.
        """
        rows: list[Any] = []
        with self._read("listing the folders of messages") as conn:
            for part in chunks(sorted(set(message_pks)), self._caps.max_params):
                stmt = (
                    select(
                        entries.c.message_pk,
                        entries.c.folder_id,
                        entries.c.flags,
                        entries.c.labels,
                        entries.c.internaldate,
                        (entries.c.gone_at.is_(None) & entries.c.superseded_at.is_(None)).label(
                            "live"
                        ),
                        messages.c.sha256,
                        messages.c.size,
                        messages.c.message_id_header,
                        messages.c.header_sha256,
                        messages.c.subject,
                        messages.c.date,
                        accounts.c.name.label("account"),
                        folders.c.name.label("folder"),
                        folders.c.display_name,
                        folders.c.delimiter,
                        folders.c.special_use,
                        folders.c.namespace,
                    )
                    .join(messages, messages.c.id == entries.c.message_pk)
                    .join(folders, folders.c.id == entries.c.folder_id)
                    .join(accounts, accounts.c.id == folders.c.account_id)
                    .where(entries.c.message_pk.in_(part))
                    .order_by(entries.c.message_pk, entries.c.id)
                )
                if account is not None:
                    stmt = stmt.where(accounts.c.name == account)
                rows.extend(conn.execute(stmt))
        result: list[Placement] = []
        start = 0
        while start < len(rows):
            end = start
            while end < len(rows) and rows[end].message_pk == rows[start].message_pk:
                end += 1
            group = rows[start:end]
            any_live = any(row.live for row in group)
            chosen: dict[int, Any] = {}  # folder_id -> newest (live, when there is one) entry
            for row in group:
                if any_live and not row.live:
                    continue
                chosen[row.folder_id] = row
            for row in chosen.values():
                result.append(
                    Placement(
                        message_pk=row.message_pk,
                        sha256=row.sha256,
                        size=row.size,
                        message_id=row.message_id_header,
                        header_sha256=row.header_sha256,
                        subject=row.subject,
                        date=row.date,
                        account=row.account,
                        folder=row.folder,
                        display_name=row.display_name,
                        delimiter=row.delimiter,
                        special_use=row.special_use,
                        namespace=row.namespace,
                        flags=tuple(row.flags.split()),
                        internaldate=row.internaldate,
                        gone=not any_live,
                        labels=labels_tuple(row.labels),
                    )
                )
            start = end
        return result

    def raw_messages(self, shas: Sequence[str]) -> dict[str, bytes]:
        """``sha256 -> raw bytes`` (verified) for each of ``shas``, read in bulk
        (normalization's reader, :meth:`~syncer.archive.store_normalize.StoreNormalize.load_raw`).

        :raises BlobCorrupt: when a blob no longer matches its address.
        """
        unique = list(dict.fromkeys(shas))
        raws = self.load_raw([Pending(0, sha, 0) for sha in unique])
        return dict(zip(unique, raws, strict=True))

    # ------------------------------------------------------------------ import

    def account_protocol(self, account: str) -> str | None:
        """The protocol recorded for ``account``, or None when the archive lacks it."""
        with self._read(f"reading account {account!r}") as conn:
            return conn.execute(
                select(accounts.c.protocol).where(accounts.c.name == account)
            ).scalar()

    def import_messages(self, account: str, folder: str, batch: Sequence[RemoteMessage]) -> int:
        """Archive messages read from files into ``folder`` of ``account``.

        Bodies already in that folder, and repeats within ``batch``, are left out;
        the rest get UIDs after the folder's highest (UIDVALIDITY 0) and go
        through :meth:`archive_batch` (one transaction). One importer per folder
        at a time (the caller holds the account's lease).

        :returns: the number of entries added.
        """
        prints = fingerprints([m.raw for m in batch], self._workers)
        with self._read(f"reading folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            present: set[str] = set()
            top = 0
            if folder_id is not None:
                for part in chunks([p.sha256 for p in prints], self._caps.max_params):
                    stmt = (
                        select(messages.c.sha256)
                        .join(entries, entries.c.message_pk == messages.c.id)
                        .where(entries.c.folder_id == folder_id, messages.c.sha256.in_(part))
                    )
                    present.update(conn.execute(stmt).scalars())
                top = int(
                    conn.execute(
                        select(func.max(entries.c.uid)).where(
                            entries.c.folder_id == folder_id,
                            entries.c.uidvalidity == IMPORT_UIDVALIDITY,
                        )
                    ).scalar()
                    or 0
                )
        fresh: list[RemoteMessage] = []
        for message, fp in zip(batch, prints, strict=True):
            if fp.sha256 in present:
                continue
            present.add(fp.sha256)
            fresh.append(replace(message, folder=folder, uid=top + len(fresh) + 1))
        return self.archive_batch(account, folder, IMPORT_UIDVALIDITY, fresh, None)

    # ------------------------------------------------------------------ push

    def pushed(self, target_account: str) -> dict[str, dict[int, int | None]]:
        """What ``push_log`` says was copied to ``target_account``:
        ``target folder -> {message id: target UID or None}``."""
        result: dict[str, dict[int, int | None]] = {}
        with self._read(f"reading the push log of {target_account!r}") as conn:
            stmt = select(
                push_log.c.target_folder, push_log.c.message_pk, push_log.c.target_uid
            ).where(push_log.c.target_account == target_account)
            for folder, pk, uid in conn.execute(stmt):
                result.setdefault(folder, {})[pk] = uid
        return result

    def record_pushed(
        self, target_account: str, rows: Sequence[tuple[str, int, int | None]]
    ) -> None:
        """Record ``(target folder, message id, target UID or None)`` rows in ``push_log``;
        a row already there gets the new UID."""
        if not rows:
            return
        now = utcnow()
        insert = self._caps.insert(push_log)
        with self._write(f"recording messages pushed to {target_account!r}") as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["target_account", "target_folder", "message_pk"],
                    set_={"target_uid": insert.excluded.target_uid},
                ),
                [
                    {
                        "target_account": target_account,
                        "target_folder": folder,
                        "message_pk": pk,
                        "target_uid": uid,
                        "pushed_at": now,
                    }
                    for folder, pk, uid in sorted(rows)
                ],
            )

    # ------------------------------------------------------------------ backup

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._caps.dialect

    def backup_sqlite(self, dest: Path, pages: int = 4096) -> None:
        """Copy the SQLite archive to ``dest`` with SQLite's online backup API.

        The copy is one consistent snapshot even while syncs write (the backup
        restarts its pass when another connection changes the source).
        """
        raw = self._engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            target = sqlite3.connect(dest)
            try:
                source.backup(target, pages=pages)
            finally:
                target.close()
        finally:
            raw.close()

    def blob_files(self) -> Iterator[str]:
        """The SHA-256 of every blob kept on disk (``data`` NULL), in order."""
        stmt = select(blobs.c.sha256).where(blobs.c.data.is_(None)).order_by(blobs.c.sha256)
        with self._read("listing blob files") as conn:
            yield from conn.execute(stmt).scalars()

    @property
    def blob_root(self) -> Path | None:
        """The on-disk blob store's directory (None when blobs live in the database)."""
        root = getattr(self._blobs, "root", None)
        return root if isinstance(root, Path) else None
