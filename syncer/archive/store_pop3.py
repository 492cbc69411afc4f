"""The archive's POP3 side: which UIDLs are archived, and which were deleted from the server.

Why this module exists: a POP3 maildrop has no folders, UIDVALIDITY or UIDs;
its state is the set of UIDLs already downloaded (``pop3_seen``). Messages
still go through the one ingest path (:meth:`ArchiveStore.archive_batch`:
blobs, message rows, entries), into the account's ``INBOX`` folder, and their
``pop3_seen`` rows are written in the same transaction, so a crash at any
instant leaves either both or neither (docs/architecture.md, principle 3).
:class:`~syncer.archive.store.ArchiveStore` inherits :class:`StorePOP3`, so
callers see one class.

Terminology: *uidl* is the key the pipeline gives a message: the server's
UIDL, or a fingerprint string for servers without UIDL (see
:mod:`syncer.sync.maildrop`). POP3 entries live under UIDVALIDITY
:data:`POP3_UIDVALIDITY` (0, which no IMAP server may use) with UIDs the
archive numbers 1, 2, 3... in the order messages were archived.

Deletion from the server is recorded in ``pop3_seen.deleted_at`` only; the
message's entry stays live (the archive still holds it, and nothing in the
archive is deleted by a sync).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, update

from syncer.archive.models import entries, folders, pop3_seen, utcnow
from syncer.archive.models import messages as messages_table
from syncer.archive.store_base import StoreCore, chunks
from syncer.errors import ArchiveError
from syncer.model import FolderCursor, RemoteMessage

__all__ = ["POP3_FOLDER", "POP3_UIDVALIDITY", "POP3Seen", "StorePOP3"]

#: The archive folder a POP3 account's messages land in.
POP3_FOLDER = "INBOX"
#: The UIDVALIDITY of POP3 entries: :rfc:`3501` UIDVALIDITY is a non-zero number.
POP3_UIDVALIDITY = 0


@dataclass(frozen=True, slots=True)
class POP3Seen:
    """A POP3 message the archive holds.

    :ivar sha256: the archived message, or None for a row without one (not written by syncer).
    :ivar size: the size LIST gave when it was archived.
    :ivar seen_at: when it was archived (``delete_after_days`` counts from here).
    :ivar deleted_at: when it was found deleted from the server, or None.
    :ivar message_pk: the archived message's id (what legal holds are checked against).
    """

    uidl: str
    sha256: str | None
    size: int | None
    seen_at: datetime
    deleted_at: datetime | None
    message_pk: int | None = None


class StorePOP3(StoreCore):
    """POP3 state (see :class:`~syncer.archive.store.ArchiveStore`)."""

    if TYPE_CHECKING:

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

    def pop3_seen(self, account: str) -> dict[str, POP3Seen]:
        """Every UIDL archived for ``account`` (deleted ones included), by UIDL."""
        with self._read(f"listing the POP3 UIDLs of {account!r}") as conn:
            account_id = self._find_account(conn, account)
            if account_id is None:
                return {}
            query = (
                select(
                    pop3_seen.c.uidl,
                    messages_table.c.sha256,
                    pop3_seen.c.size,
                    pop3_seen.c.seen_at,
                    pop3_seen.c.deleted_at,
                    pop3_seen.c.message_pk,
                )
                .outerjoin(messages_table, messages_table.c.id == pop3_seen.c.message_pk)
                .where(pop3_seen.c.account_id == account_id)
            )
            return {
                uidl: POP3Seen(uidl, sha, size, seen_at, deleted_at, pk)
                for uidl, sha, size, seen_at, deleted_at, pk in conn.execute(query)
            }

    def archive_pop3(self, account: str, messages: Sequence[RemoteMessage]) -> int:
        """Archive RETRieved messages into the account's INBOX, with their UIDLs.

        Blobs, message rows, entries and the ``pop3_seen`` rows (UIDL, LIST size,
        message) are written in one transaction. Messages whose UIDL the archive
        already has are left out, so re-running a batch adds nothing twice.

        :param messages: each with ``uidl`` set and ``size`` the LIST size.
        :returns: the number of messages newly archived.
        :raises ArchiveError: on a database or blob-store failure (nothing is
            committed then), or a message without a UIDL or with a UIDL twice.
        """
        uidls = [m.uidl for m in messages]
        if any(u is None for u in uidls) or len(set(uidls)) != len(uidls):
            raise ArchiveError(
                f"POP3 messages for {account!r} need one distinct UIDL each; nothing was archived."
            )
        with self._read(f"reading the POP3 state of {account!r}") as conn:
            account_id = self._account_id(conn, account)
            known: set[str] = set()
            for part in chunks([u for u in uidls if u is not None], self._caps.max_params):
                query = select(pop3_seen.c.uidl).where(
                    pop3_seen.c.account_id == account_id, pop3_seen.c.uidl.in_(part)
                )
                known.update(conn.execute(query).scalars())
            top = self._last_pop3_uid(conn, account)
        fresh = [m for m in messages if m.uidl not in known]
        if not fresh:
            return 0
        # The account's lease makes this the only writer, so numbering after the
        # highest UID read above cannot collide.
        numbered = [
            replace(m, folder=POP3_FOLDER, uid=top + i) for i, m in enumerate(fresh, start=1)
        ]

        def seen_rows(conn: Connection, message_pks: list[int]) -> None:
            now = utcnow()
            conn.execute(
                self._caps.insert(pop3_seen).on_conflict_do_nothing(
                    index_elements=["account_id", "uidl"]
                ),
                [
                    {
                        "account_id": account_id,
                        "uidl": m.uidl,
                        "message_pk": pk,
                        "size": m.size or len(m.raw),
                        "seen_at": now,
                        "deleted_at": None,
                    }
                    for m, pk in zip(numbered, message_pks, strict=True)
                ],
            )
            folder_id = self._folder_id(conn, account, POP3_FOLDER)
            conn.execute(
                update(folders).where(folders.c.id == folder_id).values(last_synced_at=now)
            )

        return self.archive_batch(
            account, POP3_FOLDER, POP3_UIDVALIDITY, numbered, None, also=seen_rows
        )

    def _last_pop3_uid(self, conn: Connection, account: str) -> int:
        folder_id = self._find_folder(conn, account, POP3_FOLDER)
        if folder_id is None:
            return 0
        top = conn.execute(
            select(func.max(entries.c.uid)).where(
                entries.c.folder_id == folder_id, entries.c.uidvalidity == POP3_UIDVALIDITY
            )
        ).scalar()
        return int(top or 0)

    def mark_pop3_deleted(self, account: str, uidls: Iterable[str], at: datetime) -> int:
        """Record that these UIDLs are no longer on the server (QUIT succeeded, or they vanished).

        :returns: how many rows were newly marked (already marked ones are left alone).
        """
        return self._set_pop3_deleted_at(
            account, uidls, at, f"recording POP3 deletions of {account!r}"
        )

    def mark_pop3_on_server(self, account: str, uidls: Iterable[str]) -> int:
        """Record that these UIDLs, once recorded as deleted, are on the server again.

        (A mailbox restored from a backup, or a QUIT that failed half-way.) They
        become due for deletion again, and ``syncer check`` counts them.

        :returns: how many rows changed.
        """
        return self._set_pop3_deleted_at(
            account, uidls, None, f"recording POP3 messages of {account!r} back on the server"
        )

    def _set_pop3_deleted_at(
        self, account: str, uidls: Iterable[str], at: datetime | None, doing: str
    ) -> int:
        """Set ``deleted_at`` of these UIDLs' rows where it changes (none -> ``at`` or back)."""
        differs = pop3_seen.c.deleted_at.is_(None) if at else pop3_seen.c.deleted_at.is_not(None)
        count = 0
        with self._write(doing) as conn:
            account_id = self._account_id(conn, account)
            for part in chunks(sorted(set(uidls)), self._caps.max_params):
                result = conn.execute(
                    update(pop3_seen)
                    .where(
                        pop3_seen.c.account_id == account_id,
                        pop3_seen.c.uidl.in_(part),
                        differs,
                    )
                    .values(deleted_at=at)
                )
                count += result.rowcount
        return count

    def record_pop3_sync(self, account: str, at: datetime) -> None:
        """Record when the account's maildrop was last synced (``syncer status`` shows it)."""
        with self._write(f"recording the POP3 sync of {account!r}") as conn:
            folder_id = self._folder_id(conn, account, POP3_FOLDER)
            conn.execute(update(folders).where(folders.c.id == folder_id).values(last_synced_at=at))
