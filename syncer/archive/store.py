"""The archive as the rest of syncer sees it: :class:`ArchiveStore`.

Why this module exists: the pipeline and the CLI need to store messages, keep
per-folder sync state and coordinate workers without knowing SQL. The store
owns the engine, the transactions and the blob store; it takes and returns
``syncer.model`` values, :class:`FolderRecord` and plain dicts and tuples, and
never hands out a Session or an ORM object.

Terminology (as in :mod:`syncer.model`): *folder* is the protocol wire name
(the key), *display name* the one people see (prefix off, ``/`` between levels,
decoded); *uid* is meaningful only with its folder's *uidvalidity*; an *entry*
is one message in one folder under one uidvalidity; a *live* entry is neither
gone (expunged on the server) nor superseded (its uidvalidity was closed).

Transactions: every method is one transaction. :meth:`ArchiveStore.archive_batch`
writes blobs, message rows, entries and the folder's new cursor in a single
transaction, so a crash at any instant followed by a re-run leaves the archive
complete, with no duplicate (every insert is ``ON CONFLICT DO NOTHING``).
The same holds for :meth:`~ArchiveStore.update_flags` and
:meth:`~ArchiveStore.mark_gone` with their cursors.

Errors: database failures surface as :class:`~syncer.errors.ArchiveError`
naming the operation; blob problems as :class:`~syncer.errors.BlobCorrupt`;
leases as :class:`~syncer.errors.LeaseHeld`.

This module holds folders, the hot path and sync state; runs, leases, status,
blob reads and verification are in :mod:`syncer.archive.store_admin`.

Known limit: the store caches account and folder ids (rows are never deleted),
so it assumes nobody deletes those rows behind its back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from syncer.archive.ingest import fingerprints
from syncer.archive.models import accounts as accounts_table
from syncer.archive.models import blobs, entries, folders, utcnow
from syncer.archive.models import messages as messages_table
from syncer.archive.reader import MessageReader
from syncer.archive.search.index_store import StoreSearchIndex
from syncer.archive.store_admin import StoreAdmin
from syncer.archive.store_base import chunks, flags_text, labels_text
from syncer.archive.store_pop3 import StorePOP3
from syncer.archive.store_push import StorePush
from syncer.archive.store_relay import StoreRelay
from syncer.archive.store_retention import StoreRetention
from syncer.archive.store_transfer import StoreTransfer
from syncer.archive.store_users import StoreUsers
from syncer.errors import ArchiveError
from syncer.model import FlagState, FolderCursor, FolderStatus, RemoteMessage

__all__ = ["ArchiveStore", "FolderRecord", "Generation", "Move"]

#: A link to a body already archived: (uid, message sha256, flags, internaldate, modseq).
Link = tuple[int, str, tuple[str, ...], datetime | None, int | None, str | None]


#: An entry moved to a new UIDVALIDITY: (old uid, new uid, flags, internaldate, modseq).
Move = tuple[int, int, tuple[str, ...], datetime | None, int | None]


@dataclass(frozen=True, slots=True)
class Generation:
    """The live entries of one UIDVALIDITY of a folder (see :meth:`ArchiveStore.generation`).

    :ivar headers: uid -> (message size, SHA-256 of its header block or None).
    :ivar others: the folder's other UIDVALIDITY values that have entries (earlier resets).
    """

    headers: dict[int, tuple[int, str | None]]
    others: frozenset[int]


@dataclass(frozen=True, slots=True)
class FolderRecord:
    """A folder as the archive knows it.

    :ivar cursor: the committed sync state; None until the first sync of the folder.
    :ivar deleted: the server no longer lists it (deleted, or renamed to ``renamed_to``).
    """

    name: str
    display_name: str
    cursor: FolderCursor | None
    deleted: bool
    mailbox_id: str | None
    special_use: str | None = None
    renamed_to: str | None = None
    last_synced_at: datetime | None = None
    delimiter: str | None = None
    namespace: str = "personal"
    selectable: bool = True
    #: The UIDVALIDITY was found changing on every run (see :meth:`ArchiveStore.move_generation`).
    uidvalidity_unstable: bool = False

    def is_current(self, status: FolderStatus) -> bool:
        """True when :meth:`ArchiveStore.upsert_folders` of ``status`` would change nothing.

        Lets a re-sync skip that write transaction when the server's folder list
        is as recorded, which is nearly always.
        """
        return (
            not self.deleted
            and self.renamed_to is None
            and self.display_name == status.display_name
            and self.delimiter == status.delimiter
            and self.namespace == status.namespace
            and self.special_use == status.special_use
            and self.selectable == status.selectable
            and (status.mailbox_id is None or self.mailbox_id == status.mailbox_id)
        )


_live = and_(entries.c.gone_at.is_(None), entries.c.superseded_at.is_(None))


class ArchiveStore(
    StoreAdmin,
    StorePOP3,
    StoreRetention,
    StoreTransfer,
    StoreRelay,
    StoreSearchIndex,
    StorePush,
    StoreUsers,
    MessageReader,
):
    """The archive: messages, their folders and sync state, runs and leases.

    Open with :meth:`open`; close with :meth:`close` or use as a context
    manager. Safe to share between threads (each call takes its own connection).
    On SQLite, writes are serialised by the database (one writer at a time,
    waiting up to the busy timeout), so parallel fetchers should hand their
    batches to one writer.
    """

    # ------------------------------------------------------------------ accounts, folders

    def ensure_account(self, name: str, protocol: str) -> int:
        """Create the account if new (else update its protocol) and return its id."""
        with self._write(f"adding account {name!r}") as conn:
            insert = self._caps.insert(accounts_table).values(name=name, protocol=protocol)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["name"], set_={"protocol": insert.excluded.protocol}
                )
            )
            return self._account_id(conn, name)

    def folders(self, account: str) -> dict[str, FolderRecord]:
        """Every folder of ``account`` the archive knows, deleted ones included, by name."""
        with self._read(f"listing the folders of {account!r}") as conn:
            account_id = self._find_account(conn, account)
            if account_id is None:
                return {}
            rows = conn.execute(
                select(folders).where(folders.c.account_id == account_id).order_by(folders.c.name)
            ).all()
        result: dict[str, FolderRecord] = {}
        for row in rows:
            cursor = None
            if row.uidvalidity is not None and row.uidnext is not None:
                cursor = FolderCursor(
                    uidvalidity=row.uidvalidity,
                    uidnext=row.uidnext,
                    highestmodseq=row.highestmodseq,
                    messages=row.messages or 0,
                    last_full_scan=row.last_full_scan_at,
                )
            result[row.name] = FolderRecord(
                name=row.name,
                display_name=row.display_name,
                cursor=cursor,
                deleted=row.deleted_at is not None,
                mailbox_id=row.mailbox_id,
                special_use=row.special_use,
                renamed_to=row.renamed_to,
                last_synced_at=row.last_synced_at,
                delimiter=row.delimiter,
                namespace=row.namespace,
                selectable=row.selectable,
                uidvalidity_unstable=row.uidvalidity_unstable_at is not None,
            )
        return result

    def upsert_folders(self, account: str, statuses: list[FolderStatus]) -> None:
        """Record the folders the server lists: new ones inserted, known ones refreshed.

        Display name, delimiter, namespace, special-use, selectability and
        mailbox id (when the server gives one) are updated; a folder that
        reappears is no longer deleted. The sync state is not touched: STATUS
        says what the server has, the cursor what the archive has committed.

        :raises ArchiveError: when the account is unknown.
        """
        if not statuses:
            return
        with self._write(f"recording the folders of {account!r}") as conn:
            account_id = self._account_id(conn, account)
            insert = self._caps.insert(folders)
            stmt = insert.on_conflict_do_update(
                index_elements=["account_id", "name"],
                set_={
                    "display_name": insert.excluded.display_name,
                    "delimiter": insert.excluded.delimiter,
                    "namespace": insert.excluded.namespace,
                    "special_use": insert.excluded.special_use,
                    "selectable": insert.excluded.selectable,
                    "mailbox_id": func.coalesce(insert.excluded.mailbox_id, folders.c.mailbox_id),
                    "deleted_at": None,
                    "renamed_to": None,
                },
            )
            now = utcnow()
            conn.execute(
                stmt,
                [
                    {
                        "account_id": account_id,
                        "name": status.name,
                        "display_name": status.display_name,
                        "delimiter": status.delimiter,
                        "namespace": status.namespace,
                        "special_use": status.special_use,
                        "selectable": status.selectable,
                        "mailbox_id": status.mailbox_id,
                        "created_at": now,
                    }
                    for status in statuses
                ],
            )

    def mark_folder_deleted(self, account: str, name: str) -> None:
        """Record that the server no longer has ``name``; its entries and messages stay,
        its live entries marked gone (see :meth:`_entries_gone_with_folder`).

        Unknown folders are ignored.
        """
        with self._write(f"marking folder {name!r} of {account!r} deleted") as conn:
            folder_id = self._find_folder(conn, account, name)
            if folder_id is not None:
                conn.execute(
                    update(folders)
                    .where(folders.c.id == folder_id, folders.c.deleted_at.is_(None))
                    .values(deleted_at=utcnow())
                )
                self._entries_gone_with_folder(conn, folder_id)

    @staticmethod
    def _entries_gone_with_folder(conn: Connection, folder_id: int) -> None:
        """Mark the live entries of a folder the server no longer has as gone.

        Left live, they made ``push`` re-create a deleted folder (and a renamed one's old
        name) on the target, ``is:gone`` miss them and ``status`` over-count. A renamed
        folder's messages live on as the new name's entries (bodies reused by header
        fingerprint, which covers gone entries too).
        """
        conn.execute(
            update(entries).where(entries.c.folder_id == folder_id, _live).values(gone_at=utcnow())
        )

    def mark_folder_renamed(self, account: str, old: str, new: str) -> None:
        """Record that ``old`` was renamed to ``new`` on the server.

        The old folder is marked deleted with ``renamed_to = new``; its entries
        and messages stay where they are, marked gone. Unknown folders are ignored.
        """
        with self._write(f"marking folder {old!r} of {account!r} renamed") as conn:
            folder_id = self._find_folder(conn, account, old)
            if folder_id is not None:
                conn.execute(
                    update(folders)
                    .where(folders.c.id == folder_id)
                    .values(
                        renamed_to=new, deleted_at=func.coalesce(folders.c.deleted_at, utcnow())
                    )
                )
                self._entries_gone_with_folder(conn, folder_id)

    # ------------------------------------------------------------------ the hot path

    def archive_batch(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        messages: list[RemoteMessage],
        cursor: FolderCursor | None,
        *,
        also: Callable[[Connection, list[int]], None] | None = None,
    ) -> int:
        """Store a batch of fetched messages and, when given, the folder's new cursor.

        Blobs, message rows, entries and the cursor are written in one
        transaction; every insert ignores rows already there, so re-running a
        batch after a crash adds nothing twice. Bodies already archived are
        neither compressed nor written again. On the disk store, new blob files
        are written (and fsync'd) before that transaction starts.

        :param also: called inside the transaction with the message ids of
            ``messages`` (in order), to write rows that must commit with them
            (POP3's ``pop3_seen``, see :mod:`syncer.archive.store_pop3`).
        :returns: the number of entries newly inserted.
        :raises ArchiveError: on a database or blob-store failure, or a cursor for
            another UIDVALIDITY; nothing is committed then.
        """
        if cursor is not None:
            self._cursor_values(cursor, uidvalidity, utcnow())  # refuse a mismatch up front
        if not messages:
            if cursor is not None:
                self.set_cursor(account, folder, cursor)
            return 0
        prints = fingerprints([m.raw for m in messages], self._workers)
        first: dict[str, int] = {}  # sha256 -> index of the first message with these bytes
        for index, fp in enumerate(prints):
            first.setdefault(fp.sha256, index)
        shas = list(first)

        # Which bodies are stored already. Read outside the write transaction, so the
        # compression below does not hold SQLite's write lock.
        what = f"archiving into folder {folder!r} of {account!r}"
        with self._read(what) as conn:
            existing: dict[str, bool] = {}  # sha256 -> stored on disk (data IS NULL)
            for part in chunks(shas, self._caps.max_params):
                query = select(blobs.c.sha256, blobs.c.data.is_(None)).where(
                    blobs.c.sha256.in_(part)
                )
                existing.update((sha, on_disk) for sha, on_disk in conn.execute(query))
        # The disk store is handed the bodies it should already have, too: it skips
        # files that exist (one stat) and so rewrites a blob file that went missing.
        recheck = self._blobs.on_disk
        new = [
            (sha, messages[i].raw)
            for sha, i in first.items()
            if sha not in existing or (recheck and existing[sha])
        ]
        stored = self._blobs.store(new, workers=self._workers)

        now = utcnow()
        with self._write(what) as conn:
            folder_id = self._folder_id(conn, account, folder)
            if stored:
                conn.execute(
                    self._caps.insert(blobs).on_conflict_do_nothing(index_elements=["sha256"]),
                    [
                        {
                            "sha256": blob.sha256,
                            "size": blob.size,
                            "stored_size": blob.stored_size,
                            "compression": "zstd",
                            "data": blob.data,
                            "created_at": now,
                        }
                        # In key order, like every writer: two batches sharing bodies then
                        # wait for each other on PostgreSQL instead of deadlocking.
                        for blob in sorted(stored, key=lambda blob: blob.sha256)
                    ],
                )
            conn.execute(
                self._caps.insert(messages_table).on_conflict_do_nothing(index_elements=["sha256"]),
                [
                    {
                        "sha256": sha,
                        "size": prints[i].size,
                        "header_sha256": prints[i].header_sha256,
                        "message_id_header": prints[i].message_id,
                        "parse_status": "pending",
                        "first_seen_at": now,
                    }
                    for sha, i in sorted(first.items())
                ],
            )
            ids = self._message_ids(conn, shas)
            inserted = self._insert_entries(
                conn,
                [
                    {
                        "folder_id": folder_id,
                        "uidvalidity": uidvalidity,
                        "uid": msg.uid,
                        "message_pk": ids[fp.sha256],
                        "flags": flags_text(msg.flags),
                        "internaldate": msg.internaldate,
                        "modseq": msg.modseq,
                        "emailid": msg.emailid,
                        "labels": labels_text(msg.labels),
                        "first_seen_at": now,
                    }
                    for msg, fp in zip(messages, prints, strict=True)
                ],
            )
            self._write_cursor(conn, folder_id, cursor, uidvalidity, now)
            if also is not None:
                also(conn, [ids[fp.sha256] for fp in prints])
        return inserted

    def _message_ids(self, conn: Connection, shas: Sequence[str]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for part in chunks(shas, self._caps.max_params):
            query = select(messages_table.c.sha256, messages_table.c.id).where(
                messages_table.c.sha256.in_(part)
            )
            ids.update((sha, pk) for sha, pk in conn.execute(query))
        return ids

    def _insert_entries(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        stmt = (
            self._caps.insert(entries)
            .on_conflict_do_nothing(index_elements=["folder_id", "uidvalidity", "uid"])
            .returning(entries.c.id)
        )
        # RETURNING yields exactly the rows inserted, on both databases; an
        # executemany row count is not reliable across drivers.
        return len(conn.execute(stmt, rows).all())

    # ------------------------------------------------------------------ UIDVALIDITY resets

    def link_existing(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        links: list[Link],
        *,
        labels: dict[int, tuple[str, ...]] | None = None,
    ) -> int:
        """Add entries for bodies the archive already has (no blob is written).

        Used after a UIDVALIDITY reset, when a message is recognised by its
        header fingerprint (see :meth:`header_index`) instead of downloaded, and
        for a message already archived from another folder, recognised by its
        EMAILID / X-GM-MSGID (Gmail's label folders repeat All Mail).

        :param links: ``(uid, message sha256, flags, internaldate, modseq, emailid)`` each.
        :param labels: ``uid -> Gmail labels`` where the server reported them.
        :returns: the number of entries newly inserted.
        :raises ArchiveError: when a sha256 is not an archived message (nothing is written).
        """
        if not links:
            return 0
        with self._write(f"linking messages into folder {folder!r} of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, folder)
            shas = list(dict.fromkeys(link[1] for link in links))
            ids = self._message_ids(conn, shas)
            missing = [sha for sha in shas if sha not in ids]
            if missing:
                raise ArchiveError(
                    f"Cannot link {len(missing)} message(s) into folder {folder!r} of "
                    f"{account!r}: not in the archive (first: {missing[0]})."
                )
            now = utcnow()
            return self._insert_entries(
                conn,
                [
                    {
                        "folder_id": folder_id,
                        "uidvalidity": uidvalidity,
                        "uid": uid,
                        "message_pk": ids[sha],
                        "flags": flags_text(flags),
                        "internaldate": internaldate,
                        "modseq": modseq,
                        "emailid": emailid,
                        "labels": labels_text((labels or {}).get(uid)),
                        "first_seen_at": now,
                    }
                    for uid, sha, flags, internaldate, modseq, emailid in links
                ],
            )

    def header_index(self, account: str, folder: str) -> dict[tuple[int, str], str]:
        """``(size, header_sha256) -> message sha256`` for messages ever in ``folder``.

        Covers every uidvalidity, superseded ones included: this is how bodies are
        recognised after a reset. Two messages with the same size and header
        map to one of them (a header carries a unique Message-ID and Received
        trail in practice, so this is a negligible loss).
        """
        with self._read(f"indexing headers of folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return {}
            query = (
                select(
                    messages_table.c.size, messages_table.c.header_sha256, messages_table.c.sha256
                )
                .join(entries, entries.c.message_pk == messages_table.c.id)
                .where(
                    entries.c.folder_id == folder_id, messages_table.c.header_sha256.is_not(None)
                )
                .distinct()
            )
            return {(size, hsha): sha for size, hsha, sha in conn.execute(query)}

    def emailid_index(self, account: str) -> dict[str, str]:
        """``emailid -> message sha256`` over every entry of ``account``.

        An RFC 8474 EMAILID (or Gmail's X-GM-MSGID) names a message across the
        whole account and survives UIDVALIDITY resets and renames, so it is the
        first way to recognise a body already archived.
        """
        with self._read(f"indexing email ids of {account!r}") as conn:
            query = (
                select(entries.c.emailid, messages_table.c.sha256)
                .join(messages_table, entries.c.message_pk == messages_table.c.id)
                .join(folders, entries.c.folder_id == folders.c.id)
                .join(accounts_table, folders.c.account_id == accounts_table.c.id)
                .where(accounts_table.c.name == account, entries.c.emailid.is_not(None))
                .distinct()
            )
            return {emailid: sha for emailid, sha in conn.execute(query)}

    def close_uidvalidity(self, account: str, folder: str, old_uidvalidity: int) -> int:
        """Mark the live entries of ``old_uidvalidity`` superseded; return how many.

        The entries and their messages stay; the folder's cursor is left for the
        caller to replace.
        """
        with self._write(f"closing UIDVALIDITY {old_uidvalidity} of {folder!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return 0
            result = conn.execute(
                update(entries)
                .where(
                    entries.c.folder_id == folder_id,
                    entries.c.uidvalidity == old_uidvalidity,
                    _live,
                )
                .values(superseded_at=utcnow())
            )
            return result.rowcount

    def generation(self, account: str, folder: str, uidvalidity: int) -> Generation:
        """The live entries of ``uidvalidity`` by header fingerprint, and the other
        uidvalidities the folder has entries of (what :meth:`move_generation` needs)."""
        with self._read(f"reading the entries of folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return Generation({}, frozenset())
            live = conn.execute(
                select(entries.c.uid, messages_table.c.size, messages_table.c.header_sha256)
                .join(messages_table, messages_table.c.id == entries.c.message_pk)
                .where(
                    entries.c.folder_id == folder_id, entries.c.uidvalidity == uidvalidity, _live
                )
            )
            headers = {uid: (size, header) for uid, size, header in live}
            others = conn.execute(
                select(entries.c.uidvalidity)
                .where(entries.c.folder_id == folder_id, entries.c.uidvalidity != uidvalidity)
                .distinct()
            )
            return Generation(headers, frozenset(uv for (uv,) in others))

    def move_generation(
        self,
        account: str,
        folder: str,
        old_uidvalidity: int,
        moves: list[Move],
        cursor: FolderCursor,
    ) -> bool:
        """Give live entries of ``old_uidvalidity`` the new UIDVALIDITY (``cursor``'s) and
        UIDs instead of superseding them, and mark the folder's UIDVALIDITY unstable.

        Why: a server that hands out a new UIDVALIDITY on every session for the same
        messages (Courier without its ``courierimapuiddb``) would otherwise add a
        superseded generation of entries per run. One transaction with the cursor.

        :param moves: ``(old uid, new uid, flags, internaldate, modseq)`` each.
        :returns: True when the folder was not marked unstable before (warn once).
        """
        now = utcnow()
        with self._write(f"moving the entries of folder {folder!r} of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, folder)
            if moves:
                conn.execute(
                    update(entries)
                    .where(
                        entries.c.folder_id == folder_id,
                        entries.c.uidvalidity == old_uidvalidity,
                        entries.c.uid == bindparam("b_old"),
                        _live,
                    )
                    .values(
                        uidvalidity=cursor.uidvalidity,
                        uid=bindparam("b_new"),
                        flags=bindparam("b_flags"),
                        internaldate=bindparam("b_date"),
                        modseq=bindparam("b_modseq"),
                    ),
                    [
                        {
                            "b_old": old,
                            "b_new": new,
                            "b_flags": flags_text(flags),
                            "b_date": date,
                            "b_modseq": modseq,
                        }
                        for old, new, flags, date, modseq in moves
                    ],
                )
            # Entries of the old UIDVALIDITY not moved are superseded, as after any reset.
            conn.execute(
                update(entries)
                .where(
                    entries.c.folder_id == folder_id,
                    entries.c.uidvalidity == old_uidvalidity,
                    _live,
                )
                .values(superseded_at=now)
            )
            self._write_cursor(conn, folder_id, cursor, None, now)
            marked = conn.execute(
                update(folders)
                .where(folders.c.id == folder_id, folders.c.uidvalidity_unstable_at.is_(None))
                .values(uidvalidity_unstable_at=now)
            )
            return bool(marked.rowcount)

    def set_uidvalidity_stable(self, account: str, folder: str) -> None:
        """Forget that the folder's UIDVALIDITY was unstable (a run saw it hold)."""
        with self._write(f"marking folder {folder!r} of {account!r} stable") as conn:
            folder_id = self._folder_id(conn, account, folder)
            conn.execute(
                update(folders)
                .where(folders.c.id == folder_id)
                .values(uidvalidity_unstable_at=None)
            )

    # ------------------------------------------------------------------ incremental state

    def live_uids(self, account: str, folder: str, uidvalidity: int) -> set[int]:
        """UIDs of the live entries (not gone, not superseded) of the folder."""
        with self._read(f"listing UIDs of folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return set()
            query = select(entries.c.uid).where(
                entries.c.folder_id == folder_id, entries.c.uidvalidity == uidvalidity, _live
            )
            return set(conn.execute(query).scalars())

    def entry_flags(
        self, account: str, folder: str, uidvalidity: int
    ) -> dict[int, tuple[str, ...]]:
        """``uid -> flags`` (sorted) of the live entries of the folder."""
        with self._read(f"listing flags of folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return {}
            query = select(entries.c.uid, entries.c.flags).where(
                entries.c.folder_id == folder_id, entries.c.uidvalidity == uidvalidity, _live
            )
            return {uid: tuple(flags.split()) for uid, flags in conn.execute(query)}

    def update_flags(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        changes: list[FlagState],
        cursor: FolderCursor | None,
    ) -> int:
        """Apply flag states from the server to live entries; write the cursor too.

        Gmail labels (``FlagState.labels``) are applied the same way: they change
        MODSEQ like flags, so CONDSTORE keeps them current.
        Only entries whose flags or labels really differ are rewritten and counted; a
        newer MODSEQ alone is recorded without counting. UIDs the archive does
        not have are ignored.

        :returns: the number of entries whose flags changed.
        """
        if cursor is not None:
            self._cursor_values(cursor, uidvalidity, utcnow())
        what = f"updating flags in folder {folder!r} of {account!r}"
        with self._write(what) as conn:
            folder_id = self._folder_id(conn, account, folder)
            current = self._current_flags(conn, folder_id, uidvalidity, changes)
            flag_rows: list[dict[str, Any]] = []
            modseq_rows: list[dict[str, Any]] = []
            for change in changes:
                known = current.get(change.uid)
                if known is None:
                    continue
                entry_id, flags, modseq, labels = known
                wanted = flags_text(change.flags)
                # Labels only where the server listed them (Gmail): None leaves them be.
                new_labels = labels if change.labels is None else labels_text(change.labels)
                new_modseq = change.modseq if change.modseq is not None else modseq
                if wanted != flags or new_labels != labels:
                    flag_rows.append(
                        {
                            "b_id": entry_id,
                            "b_flags": wanted,
                            "b_modseq": new_modseq,
                            "b_labels": new_labels,
                        }
                    )
                elif new_modseq != modseq:
                    modseq_rows.append({"b_id": entry_id, "b_modseq": new_modseq})
                current[change.uid] = (entry_id, wanted, new_modseq, new_labels)
            by_id = entries.c.id == bindparam("b_id")
            if flag_rows:
                conn.execute(
                    update(entries)
                    .where(by_id)
                    .values(
                        flags=bindparam("b_flags"),
                        modseq=bindparam("b_modseq"),
                        labels=bindparam("b_labels"),
                    ),
                    flag_rows,
                )
            if modseq_rows:
                conn.execute(
                    update(entries).where(by_id).values(modseq=bindparam("b_modseq")), modseq_rows
                )
            self._write_cursor(conn, folder_id, cursor, uidvalidity, utcnow())
        return len({row["b_id"] for row in flag_rows})

    def _current_flags(
        self, conn: Connection, folder_id: int, uidvalidity: int, changes: list[FlagState]
    ) -> dict[int, tuple[int, str, int | None, str | None]]:
        query = select(
            entries.c.uid, entries.c.id, entries.c.flags, entries.c.modseq, entries.c.labels
        ).where(entries.c.folder_id == folder_id, entries.c.uidvalidity == uidvalidity, _live)
        uids = sorted({change.uid for change in changes})
        if len(uids) > self._caps.max_params:
            # A full listing (no CONDSTORE): read the whole folder once.
            rows = conn.execute(query)
        elif not uids:
            return {}
        else:
            rows = conn.execute(query.where(entries.c.uid.in_(uids)))
        return {
            uid: (entry_id, flags, modseq, labels) for uid, entry_id, flags, modseq, labels in rows
        }

    def mark_gone(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        uids: Iterable[int],
        cursor: FolderCursor | None,
    ) -> int:
        """Mark live entries expunged on the server as gone; their messages stay.

        :returns: the number of entries newly marked gone.
        """
        if cursor is not None:
            self._cursor_values(cursor, uidvalidity, utcnow())
        wanted = sorted(set(uids))
        now = utcnow()
        count = 0
        with self._write(f"marking messages gone in folder {folder!r} of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, folder)
            for part in chunks(wanted, self._caps.max_params):
                result = conn.execute(
                    update(entries)
                    .where(
                        entries.c.folder_id == folder_id,
                        entries.c.uidvalidity == uidvalidity,
                        entries.c.uid.in_(part),
                        _live,
                    )
                    .values(gone_at=now)
                )
                count += result.rowcount
            self._write_cursor(conn, folder_id, cursor, uidvalidity, now)
        return count

    def set_cursor(self, account: str, folder: str, cursor: FolderCursor) -> None:
        """Record the folder's sync state (and the time of this sync)."""
        with self._write(f"saving the cursor of folder {folder!r} of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, folder)
            self._write_cursor(conn, folder_id, cursor, None, utcnow())

    def record_full_scan(self, account: str, folder: str, at: datetime) -> None:
        """Record when the folder's UID set was last reconciled in full."""
        with self._write(f"recording a full scan of folder {folder!r} of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, folder)
            conn.execute(
                update(folders).where(folders.c.id == folder_id).values(last_full_scan_at=at)
            )
