"""The archive's retention side: legal holds, the audit trail, message facts for
planning, and the one way messages are ever deleted from the archive.

Why this module exists: deleting from an archive whose first principle is
"never lose mail" must happen in exactly one place that removes a message with
everything derived from it, leaves the audit record in the same transaction,
and removes blob files only once that transaction has committed.
:class:`~syncer.archive.store.ArchiveStore` inherits :class:`StoreRetention`.

What :meth:`StoreRetention.delete_messages` removes per message: its rows in
every table with a foreign key to ``messages.id`` (``entries``, ``addresses``,
``attachments``, ``message_texts``, ``attachment_texts``, ``push_log``, ...,
found from the metadata), its search index rows
(:func:`syncer.archive.search.index.remove_messages`) and the ``messages``
row; its ``pop3_seen`` rows are
kept with ``message_pk`` set to NULL (the UIDL stays known, so a message still
on a POP3 server is not downloaded again); its blob row, unless an ``outbox``
row still points at it (then the blob stays for the outbox; sent or failed
outbox rows let go of it first). On the on-disk blob store the files of
deleted blob rows are unlinked after the commit; a crash in between leaves a
file no row points at, which is harmless (and a later sync of the same
message writes the row back over it).

Known limit: a sync archiving the very same message while its blob is being
deleted could commit a row whose file is unlinked a moment later; the next
sync of that message writes the file again (``archive_batch`` re-checks files)
and ``syncer verify`` reports it meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, case, delete, func, select, update

from syncer.archive import audit
from syncer.archive.admin_views import AuditEvent
from syncer.archive.audit import Anchor, ChainReport
from syncer.archive.blobs import FSBlobStore
from syncer.archive.models import (
    accounts,
    blobs,
    entries,
    folders,
    job_state,
    legal_holds,
    messages,
    metadata,
    outbox,
    pop3_seen,
    utcnow,
)
from syncer.archive.store_base import StoreCore, chunks
from syncer.archive.store_normalize import awaiting_normalization
from syncer.errors import ArchiveError, UsageError

__all__ = [
    "HOLD_BLIND_REASONS",
    "DeletedBatch",
    "Hold",
    "MessageFacts",
    "ServerCopy",
    "StoreRetention",
]

#: Why a legal hold cannot see a message, by its normalization state.
HOLD_BLIND_REASONS = {
    "pending": "awaiting normalization",
    "failed": "normalization failed",
    "partial": "normalized partially",
}


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold: messages matching ``query`` are never deleted from the archive."""

    name: str
    query: str
    reason: str | None
    created_at: datetime
    released_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What retention needs to know of one message.

    :ivar aged_from: INTERNALDATE (the earliest of its entries), else the Date
        header, else when it was first archived: the moment its age counts from.
    """

    pk: int
    sha256: str
    size: int
    aged_from: datetime
    subject: str | None


@dataclass(frozen=True, slots=True)
class ServerCopy:
    """A copy of an archived message still on a server (as far as the archive knows).

    IMAP: ``folder``, ``uidvalidity`` and ``uid`` of a live entry. POP3:
    ``uidl`` of a ``pop3_seen`` row not recorded as deleted (folder INBOX).
    """

    account: str
    protocol: str
    folder: str
    uidvalidity: int
    uid: int
    uidl: str | None
    message_pk: int
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class DeletedBatch:
    """What one :meth:`StoreRetention.delete_messages` call removed."""

    messages: int
    bytes: int
    sha256s: tuple[str, ...]
    blobs_removed: int
    files_removed: int


def _derived_columns() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) pointing at ``messages.id`` whose rows go with the message.

    Found from the metadata rather than listed, so a table a later feature adds
    (e.g. ``attachment_texts``) is covered; ``pop3_seen`` is not (its link is
    cleared instead, see the module docstring).
    """
    found: list[tuple[Table, Column[Any]]] = []
    for table in metadata.sorted_tables:
        if table is messages or table is pop3_seen:
            continue
        for column in table.columns:
            if any(fk.column is messages.c.id for fk in column.foreign_keys):
                found.append((table, column))
    return found


class StoreRetention(StoreCore):
    """Holds, audit trail, retention facts and deletion (see :class:`ArchiveStore`)."""

    # ------------------------------------------------------------------ audit trail

    def audit(
        self,
        kind: str,
        *,
        actor: str | None = None,
        subject: str | None = None,
        details: Any = None,
    ) -> str:
        """Append one event to the audit trail in its own transaction; returns its hash."""
        with self._write(f"recording audit event {kind!r}") as conn:
            return audit.append_event(conn, kind, actor=actor, subject=subject, details=details)

    def audit_verify(self, anchor: Anchor | None = None) -> ChainReport:
        """Walk the audit chain; the report names the first broken link, if any.

        :param anchor: a head taken earlier (``syncer audit anchor``) that the chain must
            still hold: catches a cut of the newest events together with the recorded head.
        """
        with self._read("verifying the audit trail") as conn:
            return audit.verify_chain(conn, anchor)

    def audit_events(self, *, newest: int | None = None) -> list[AuditEvent]:
        """Every audit event in order, or the ``newest`` ones newest first."""
        with self._read("reading the audit trail") as conn:
            return list(audit.read_events(conn, newest=newest))

    def swap_job_data(
        self,
        kind: str,
        name: str,
        new: str,
        events: Callable[[str | None, str], list[tuple[str, Any]]],
        *,
        actor: str | None = None,
    ) -> list[tuple[str, Any]]:
        """Replace ``job_state(kind, name).data`` with ``new`` and audit the change.

        ``events(old, new)`` says which audit events the change is worth; they are
        appended in the same transaction (serialized with every other append), so
        two processes starting at once record one change once.

        :returns: the events appended.
        """
        with self._write(f"recording {kind}/{name}") as conn:
            audit.serialize(conn)
            old = conn.execute(
                select(job_state.c.data).where(job_state.c.kind == kind, job_state.c.name == name)
            ).scalar()
            found = conn.execute(
                select(func.count()).where(job_state.c.kind == kind, job_state.c.name == name)
            ).scalar_one()
            if found and old == new:
                return []
            wanted = events(old if found else None, new)
            for event_kind, details in wanted:
                audit.append_event(conn, event_kind, actor=actor, subject=name, details=details)
            now = utcnow()
            if found:
                conn.execute(
                    update(job_state)
                    .where(job_state.c.kind == kind, job_state.c.name == name)
                    .values(data=new, updated_at=now)
                )
            else:
                conn.execute(
                    job_state.insert().values(kind=kind, name=name, data=new, updated_at=now)
                )
            return wanted

    # ------------------------------------------------------------------ legal holds

    def add_hold(self, name: str, query: str, reason: str | None, *, actor: str | None) -> Hold:
        """Place a legal hold (audited).

        :raises UsageError: when an active hold has that name already.
        """
        now = utcnow()
        with self._write(f"placing legal hold {name!r}") as conn:
            row = conn.execute(select(legal_holds).where(legal_holds.c.name == name)).first()
            if row is not None and row.released_at is None:
                raise UsageError(
                    f"A legal hold named {name!r} is in place already (query {row.query!r}).",
                    hint="Choose another name, or release it first with `syncer hold release`.",
                )
            if row is not None:
                # A released hold's name is reused: keep the record of the old one in the
                # audit trail, and the row for the new one.
                conn.execute(delete(legal_holds).where(legal_holds.c.id == row.id))
            conn.execute(
                legal_holds.insert().values(name=name, query=query, reason=reason, created_at=now)
            )
            audit.append_event(
                conn,
                "hold.added",
                actor=actor,
                subject=name,
                details={"query": query, "reason": reason},
                at=now,
            )
        return Hold(name, query, reason, now, None)

    def release_hold(self, name: str, *, actor: str | None) -> Hold:
        """Release an active legal hold (audited).

        :raises UsageError: when there is no active hold of that name (the message
            lists the active ones).
        """
        now = utcnow()
        with self._write(f"releasing legal hold {name!r}") as conn:
            row = conn.execute(
                select(legal_holds).where(
                    legal_holds.c.name == name, legal_holds.c.released_at.is_(None)
                )
            ).first()
            if row is None:
                active = sorted(
                    conn.execute(
                        select(legal_holds.c.name).where(legal_holds.c.released_at.is_(None))
                    ).scalars()
                )
                raise UsageError(
                    f"No active legal hold named {name!r}. "
                    f"Active holds: {', '.join(active) or 'none'}."
                )
            conn.execute(
                update(legal_holds).where(legal_holds.c.id == row.id).values(released_at=now)
            )
            audit.append_event(
                conn,
                "hold.released",
                actor=actor,
                subject=name,
                details={"query": row.query, "reason": row.reason},
                at=now,
            )
        return Hold(row.name, row.query, row.reason, row.created_at, now)

    def holds(self, *, released: bool = False) -> list[Hold]:
        """The active legal holds by name (and the released ones with ``released``)."""
        query = select(legal_holds).order_by(legal_holds.c.name)
        if not released:
            query = query.where(legal_holds.c.released_at.is_(None))
        with self._read("listing legal holds") as conn:
            rows = conn.execute(query).all()
        return [Hold(r.name, r.query, r.reason, r.created_at, r.released_at) for r in rows]

    # ------------------------------------------------------------------ facts

    def message_count(self) -> int:
        """How many distinct messages the archive holds."""
        with self._read("counting messages") as conn:
            return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())

    def hold_blind(self, pks: Sequence[int]) -> dict[int, str]:
        """Those of ``pks`` whose derived fields a hold's query cannot fully see, with why.

        A hold matches normalized fields (subject, addresses, text): a message awaiting
        normalization, or one whose normalization failed or was partial, may be one a
        hold covers without the query finding it. Retention keeps these while any hold
        is active (DESIGN: "when in doubt, keep"). Reasons: :data:`HOLD_BLIND_REASONS`.
        """
        status = case((awaiting_normalization(), "pending"), else_=messages.c.parse_status).label(
            "status"
        )
        found: dict[int, str] = {}
        with self._read("checking what holds can see") as conn:
            for part in chunks(sorted(set(pks)), self._caps.max_params):
                query = select(messages.c.id, status).where(
                    messages.c.id.in_(part),
                    awaiting_normalization() | messages.c.parse_status.in_(("failed", "partial")),
                )
                for pk, why in conn.execute(query):
                    found[pk] = HOLD_BLIND_REASONS.get(why, HOLD_BLIND_REASONS["pending"])
        return found

    def message_facts(self, pks: Sequence[int]) -> dict[int, MessageFacts]:
        """Size, sha256, subject and the moment its age counts from, per message id."""
        earliest = (
            select(func.min(entries.c.internaldate))
            .where(entries.c.message_pk == messages.c.id)
            .scalar_subquery()
        )
        found: dict[int, MessageFacts] = {}
        with self._read("reading message dates") as conn:
            for part in chunks(sorted(set(pks)), self._caps.max_params):
                query = select(
                    messages.c.id,
                    messages.c.sha256,
                    messages.c.size,
                    messages.c.subject,
                    messages.c.date,
                    messages.c.first_seen_at,
                    earliest.label("internaldate"),
                ).where(messages.c.id.in_(part))
                for row in conn.execute(query):
                    aged_from = row.internaldate or row.date or row.first_seen_at
                    found[row.id] = MessageFacts(
                        row.id, row.sha256, row.size, aged_from, row.subject
                    )
        return found

    def server_copies(self, pks: Sequence[int]) -> list[ServerCopy]:
        """Where these messages are still on a server: live IMAP entries and POP3 UIDLs
        not recorded as deleted, ordered by account, folder, uidvalidity, uid."""
        live = entries.c.gone_at.is_(None) & entries.c.superseded_at.is_(None)
        result: list[ServerCopy] = []
        with self._read("listing server copies") as conn:
            for part in chunks(sorted(set(pks)), self._caps.max_params):
                imap_rows = conn.execute(
                    select(
                        accounts.c.name,
                        accounts.c.protocol,
                        folders.c.name.label("folder"),
                        entries.c.uidvalidity,
                        entries.c.uid,
                        entries.c.message_pk,
                        messages.c.sha256,
                        messages.c.size,
                    )
                    .join(folders, folders.c.id == entries.c.folder_id)
                    .join(accounts, accounts.c.id == folders.c.account_id)
                    .join(messages, messages.c.id == entries.c.message_pk)
                    .where(entries.c.message_pk.in_(part), live, accounts.c.protocol != "pop3")
                )
                result.extend(
                    ServerCopy(
                        r.name,
                        r.protocol,
                        r.folder,
                        r.uidvalidity,
                        r.uid,
                        None,
                        r.message_pk,
                        r.sha256,
                        r.size,
                    )
                    for r in imap_rows
                )
                pop_rows = conn.execute(
                    select(
                        accounts.c.name,
                        pop3_seen.c.uidl,
                        pop3_seen.c.message_pk,
                        messages.c.sha256,
                        messages.c.size,
                    )
                    .join(accounts, accounts.c.id == pop3_seen.c.account_id)
                    .join(messages, messages.c.id == pop3_seen.c.message_pk)
                    .where(pop3_seen.c.message_pk.in_(part), pop3_seen.c.deleted_at.is_(None))
                )
                result.extend(
                    ServerCopy(
                        r.name, "pop3", "INBOX", 0, 0, r.uidl, r.message_pk, r.sha256, r.size
                    )
                    for r in pop_rows
                )
        result.sort(key=lambda c: (c.account, c.folder, c.uidvalidity, c.uid, c.uidl or ""))
        return result

    # ------------------------------------------------------------------ deletion

    def delete_messages(
        self,
        pks: Sequence[int],
        *,
        actor: str | None,
        details: dict[str, Any],
    ) -> DeletedBatch:
        """Delete messages and everything derived from them in one transaction, audited.

        The audit event ``retention.deleted`` lists the SHA-256 of every message
        deleted, so what was deleted stays provable; ``details`` (e.g. the policy
        and run id) are added to it. Blob files are unlinked after the commit.

        :raises ArchiveError: on a database failure; nothing is deleted then.
        """
        wanted = sorted(set(pks))
        if not wanted:
            return DeletedBatch(0, 0, (), 0, 0)
        files: list[str] = []
        step = self._caps.max_params
        with self._write(f"deleting {len(wanted)} messages") as conn:
            audit.serialize(conn)  # the event's place in the chain is this transaction's
            rows = [
                row
                for part in chunks(wanted, step)
                for row in conn.execute(
                    select(messages.c.id, messages.c.sha256, messages.c.size).where(
                        messages.c.id.in_(part)
                    )
                )
            ]
            wanted = sorted(r.id for r in rows)
            if not wanted:
                return DeletedBatch(0, 0, (), 0, 0)
            shas = sorted(r.sha256 for r in rows)
            size = sum(r.size for r in rows)
            from syncer.archive.search.index import remove_messages as remove_from_index

            remove_from_index(conn, wanted)
            kept: set[str] = set()
            gone: list[str] = []
            for part in chunks(wanted, step):
                for table, column in _derived_columns():
                    conn.execute(delete(table).where(column.in_(part)))
                conn.execute(
                    update(pop3_seen)
                    .where(pop3_seen.c.message_pk.in_(part))
                    .values(message_pk=None)
                )
                conn.execute(delete(messages).where(messages.c.id.in_(part)))
            for sha_part in chunks(shas, step):
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.body_sha256.in_(sha_part), outbox.c.status.in_(("sent", "failed"))
                    )
                    .values(body_sha256=None)
                )
                kept.update(
                    conn.execute(
                        select(outbox.c.body_sha256).where(outbox.c.body_sha256.in_(sha_part))
                    ).scalars()
                )
                unused = [sha for sha in sha_part if sha not in kept]
                if unused:
                    files.extend(
                        conn.execute(
                            select(blobs.c.sha256).where(
                                blobs.c.sha256.in_(unused), blobs.c.data.is_(None)
                            )
                        ).scalars()
                    )
                    conn.execute(delete(blobs).where(blobs.c.sha256.in_(unused)))
                    gone.extend(unused)
            audit.append_event(
                conn,
                "retention.deleted",
                actor=actor,
                subject=details.get("policy"),
                details={
                    **details,
                    "messages": len(wanted),
                    "bytes": size,
                    "sha256": shas,
                    "blobs_kept_for_outbox": sorted(kept),
                },
            )
        removed = self._unlink_blob_files(files)
        return DeletedBatch(len(wanted), size, tuple(shas), len(gone), removed)

    def _unlink_blob_files(self, shas: list[str]) -> int:
        """Remove the files of blob rows deleted by a committed transaction."""
        if not shas or not isinstance(self._blobs, FSBlobStore):
            return 0
        removed = 0
        for sha in shas:
            path: Path = self._blobs.path(sha)
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ArchiveError(
                    f"Blob {sha} was deleted from the archive but its file {path} could not be "
                    f"removed: {exc}.",
                    hint="Remove the file by hand; no row points at it any more.",
                ) from exc
        return removed
