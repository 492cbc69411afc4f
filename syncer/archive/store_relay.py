"""The archive's relay side: the outbox, and where each digest and forward left off.

Why this module exists: sending mail must be idempotent, and that is a
property of transactions: :meth:`StoreRelay.queue_outgoing` writes the
messages to send *and* moves the job's cursor (``job_state``) in one
transaction, so a crash either leaves both or neither; each message carries an
idempotency key (``outbox.idem_key``, unique), so the same digest period or
the same message for the same forward rule is queued at most once, however
often or concurrently the job runs. The flush (:mod:`syncer.relay.outbox`) then
moves each row ``pending`` -> ``sending`` (claimed, just before SMTP) ->
``sent`` | ``failed`` (5xx, or out of attempts) | back to ``pending`` (4xx, no
connection; with ``next_attempt_at``).
:class:`~syncer.archive.store.ArchiveStore` inherits :class:`StoreRelay`.

Terminology: a job's *cursor* is the highest ``messages.id`` it has covered
(ids only grow, so "archived since" is ``id > cursor``); the *horizon* is the
highest id up to which every message is normalized, beyond which digests and
forwards do not look yet (their queries read normalized columns).

Bodies are stored inline (``outbox.body``); ``body_sha256`` is not used, so
retention may delete an archived message while a forward of it waits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, func, or_, select, update

from syncer.archive.models import accounts, entries, folders, job_state, messages, outbox, utcnow
from syncer.archive.relay_views import DigestItem, OutboxEntry
from syncer.archive.store_base import StoreCore, chunks
from syncer.archive.store_normalize import awaiting_normalization
from syncer.errors import ArchiveError, UsageError

__all__ = ["JobCursor", "OutboxRow", "QueuedMessage", "StoreRelay"]

Status = Literal["pending", "sending", "sent", "failed"]
#: What ``outbox_list`` shows of a row (never the body).
_LISTED = (
    outbox.c.id,
    outbox.c.idem_key,
    outbox.c.kind,
    outbox.c.smtp,
    outbox.c.envelope_from,
    outbox.c.recipients,
    outbox.c.status,
    outbox.c.attempts,
    outbox.c.last_error,
    outbox.c.created_at,
    outbox.c.next_attempt_at,
    outbox.c.sent_at,
    outbox.c.message_id,
)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message to put in the outbox.

    :ivar idem_key: unique: e.g. ``digest:morning:120-245``, ``forward:invoices:<sha256>``.
    :ivar smtp: the name of the ``[[smtp]]`` server to send through.
    """

    idem_key: str
    kind: str
    smtp: str
    envelope_from: str
    recipients: tuple[str, ...]
    body: bytes
    message_id: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A row of the outbox, with its body, as the flush sends it."""

    id: int
    idem_key: str
    smtp: str
    envelope_from: str
    recipients: tuple[str, ...]
    body: bytes
    attempts: int
    message_id: str | None


@dataclass(frozen=True, slots=True)
class JobCursor:
    """Where a digest or forward left off (a ``job_state`` row)."""

    cursor_pk: int | None
    cursor_at: datetime | None
    last_success_at: datetime | None


class StoreRelay(StoreCore):
    """The outbox and the relay jobs' cursors (see the module docstring)."""

    # ------------------------------------------------------------------ cursors

    def job_cursor(self, kind: str, name: str) -> JobCursor | None:
        """The cursor of the job ``(kind, name)``, or None when it never ran."""
        with self._read(f"reading where {kind} {name!r} left off") as conn:
            row = conn.execute(
                select(
                    job_state.c.cursor_pk, job_state.c.cursor_at, job_state.c.last_success_at
                ).where(job_state.c.kind == kind, job_state.c.name == name)
            ).first()
        return JobCursor(row.cursor_pk, row.cursor_at, row.last_success_at) if row else None

    def relay_horizon(self, after_pk: int | None) -> int:
        """The highest ``messages.id`` that a job whose cursor is ``after_pk`` may cover now:
        the newest message, or just below the first one (above ``after_pk``) that still
        awaits normalization. 0 for an empty archive."""
        with self._read("finding the newest normalized message") as conn:
            newest = conn.execute(select(func.max(messages.c.id))).scalar() or 0
            pending = select(func.min(messages.c.id)).where(awaiting_normalization())
            if after_pk is not None:
                pending = pending.where(messages.c.id > after_pk)
            first_pending = conn.execute(pending).scalar()
        if first_pending is not None:
            return int(min(newest, first_pending - 1))
        return int(newest)

    def last_message_before(self, when: datetime) -> int | None:
        """The highest ``messages.id`` first archived before ``when`` (None: none was)."""
        with self._read("finding the last message archived before a time") as conn:
            found = conn.execute(
                select(func.max(messages.c.id)).where(messages.c.first_seen_at < when)
            ).scalar()
        return int(found) if found is not None else None

    def highest_message_pk(self) -> int:
        """The newest ``messages.id`` (0 for an empty archive)."""
        with self._read("finding the newest message") as conn:
            return int(conn.execute(select(func.max(messages.c.id))).scalar() or 0)

    def set_job_cursor(self, kind: str, name: str, cursor_pk: int) -> None:
        """Record ``cursor_pk`` for ``(kind, name)`` (it never moves back)."""
        with self._write(f"saving where {kind} {name!r} left off") as conn:
            self._advance(conn, kind, name, cursor_pk, expect="any", now=utcnow())

    def queue_outgoing(
        self,
        items: Sequence[QueuedMessage],
        *,
        kind: str,
        name: str,
        cursor_pk: int,
        expect: int | Literal["any"] | None = "any",
    ) -> int:
        """Queue ``items`` and move the cursor of ``(kind, name)`` to ``cursor_pk``, in one
        transaction. A message whose ``idem_key`` is queued already is skipped.

        :param expect: the cursor the caller read (None: no row yet); when it moved
            meanwhile (another run got there first) nothing is written. ``"any"``:
            no check, and the cursor only moves forward.
        :returns: how many messages were newly queued.
        :raises ArchiveError: when ``expect`` no longer holds.
        """
        now = utcnow()
        with self._write(f"queueing mail for {kind} {name!r}") as conn:
            self._advance(conn, kind, name, cursor_pk, expect=expect, now=now)
            queued = 0
            # RETURNING says whether a row went in (rowcount is -1 for an
            # INSERT .. ON CONFLICT DO NOTHING on PostgreSQL).
            insert = (
                self._caps.insert(outbox)
                .on_conflict_do_nothing(index_elements=["idem_key"])
                .returning(outbox.c.id)
            )
            for item in items:
                result = conn.execute(
                    insert.values(
                        idem_key=item.idem_key,
                        kind=item.kind,
                        smtp=item.smtp,
                        envelope_from=item.envelope_from,
                        recipients=json.dumps(list(item.recipients)),
                        body=item.body,
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                        message_id=item.message_id,
                    )
                )
                queued += len(result.all())
        return queued

    def _advance(
        self,
        conn: Connection,
        kind: str,
        name: str,
        cursor_pk: int,
        *,
        expect: int | Literal["any"] | None,
        now: datetime,
    ) -> None:
        key = and_(job_state.c.kind == kind, job_state.c.name == name)
        values = {"cursor_pk": cursor_pk, "cursor_at": now, "last_success_at": now}
        if expect == "any":
            insert = self._caps.insert(job_state).values(kind=kind, name=name, updated_at=now)
            conn.execute(
                insert.values(**values).on_conflict_do_update(
                    index_elements=["kind", "name"],
                    set_={
                        "cursor_pk": func.max(
                            func.coalesce(job_state.c.cursor_pk, 0), insert.excluded.cursor_pk
                        )
                        if self._caps.dialect == "sqlite"
                        else func.greatest(
                            func.coalesce(job_state.c.cursor_pk, 0), insert.excluded.cursor_pk
                        ),
                        "cursor_at": now,
                        "last_success_at": now,
                        "updated_at": now,
                    },
                )
            )
            return
        if expect is None:
            inserted = conn.execute(
                self._caps.insert(job_state)
                .values(kind=kind, name=name, updated_at=now, **values)
                .on_conflict_do_nothing(index_elements=["kind", "name"])
                .returning(job_state.c.kind)
            ).all()
            moved = len(inserted) == 1
        else:
            moved = (
                conn.execute(
                    update(job_state)
                    .where(key, job_state.c.cursor_pk == expect)
                    .values(updated_at=now, **values)
                ).rowcount
                == 1
            )
        if not moved:
            raise ArchiveError(
                f"The {kind} {name!r} was run by someone else meanwhile (its cursor moved); "
                "nothing was queued by this run."
            )

    # ------------------------------------------------------------------ what to send

    def digest_items(self, message_pks: Sequence[int]) -> list[DigestItem]:
        """Each message as a digest lists it (its folders as ``account/folder``), in the
        order given; ids not in the archive are left out."""
        found: dict[int, Any] = {}
        places: dict[int, list[str]] = {}
        with self._read("reading messages for a digest") as conn:
            for part in chunks(list(message_pks), self._caps.max_params):
                rows = conn.execute(
                    select(
                        messages.c.id,
                        messages.c.date,
                        messages.c.sender,
                        messages.c.subject,
                        messages.c.size,
                    ).where(messages.c.id.in_(part))
                )
                found.update((row.id, row) for row in rows)
                for pk, account, folder in conn.execute(
                    select(entries.c.message_pk, accounts.c.name, folders.c.display_name)
                    .join(folders, folders.c.id == entries.c.folder_id)
                    .join(accounts, accounts.c.id == folders.c.account_id)
                    .where(entries.c.message_pk.in_(part))
                    .distinct()
                    .order_by(entries.c.message_pk, accounts.c.name, folders.c.display_name)
                ):
                    places.setdefault(pk, []).append(f"{account}/{folder}")
        return [
            DigestItem(
                id=found[pk].id,
                date=found[pk].date,
                sender=found[pk].sender,
                subject=found[pk].subject,
                folders=tuple(places.get(pk, ())),
                size=found[pk].size,
            )
            for pk in message_pks
            if pk in found
        ]

    def forward_candidates(self, message_pks: Sequence[int]) -> list[tuple[int, str, str | None]]:
        """(id, sha256, subject) of each message, in id order."""
        with self._read("reading messages to forward") as conn:
            rows: list[tuple[int, str, str | None]] = []
            for part in chunks(list(message_pks), self._caps.max_params):
                rows.extend(
                    (row.id, row.sha256, row.subject)
                    for row in conn.execute(
                        select(messages.c.id, messages.c.sha256, messages.c.subject)
                        .where(messages.c.id.in_(part))
                        .order_by(messages.c.id)
                    )
                )
        return rows

    # ------------------------------------------------------------------ the flush

    def outbox_recover(self) -> list[int]:
        """Put rows left ``sending`` by a flush that died back to ``pending``.

        Call only while holding the outbox lease (no other flush is running).
        Such a message may have been delivered (the crash came after DATA); it is
        sent again with the same bytes and Message-ID.
        """
        with self._write("recovering outbox rows left sending") as conn:
            ids = sorted(
                conn.execute(select(outbox.c.id).where(outbox.c.status == "sending")).scalars()
            )
            if ids:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.status == "sending")
                    .values(status="pending", next_attempt_at=utcnow())
                )
        return ids

    def outbox_due(self, now: datetime, *, after: int = 0, limit: int = 50) -> list[OutboxRow]:
        """Pending rows whose time has come, by id, with ids above ``after``."""
        due = or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now)
        with self._read("listing the outbox rows due") as conn:
            rows = conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.idem_key,
                    outbox.c.smtp,
                    outbox.c.envelope_from,
                    outbox.c.recipients,
                    outbox.c.body,
                    outbox.c.attempts,
                    outbox.c.message_id,
                )
                .where(outbox.c.status == "pending", due, outbox.c.id > after)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        return [
            OutboxRow(
                id=row.id,
                idem_key=row.idem_key,
                smtp=row.smtp,
                envelope_from=row.envelope_from,
                recipients=tuple(json.loads(row.recipients)),
                body=bytes(row.body or b""),
                attempts=row.attempts,
                message_id=row.message_id,
            )
            for row in rows
        ]

    def outbox_claim(self, row_id: int) -> bool:
        """Mark a pending row ``sending`` and count the attempt; False when it is not pending
        any more (someone else took it, or it was dropped)."""
        with self._write(f"claiming outbox row {row_id}") as conn:
            claimed = conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.status == "pending")
                .values(status="sending", attempts=outbox.c.attempts + 1)
            ).rowcount
        return claimed == 1

    def outbox_sent(self, row_id: int, *, note: str | None = None) -> None:
        """The server took the message (``note``: recipients it refused, if any)."""
        self._outbox_set(row_id, status="sent", sent_at=utcnow(), last_error=note)

    def outbox_prune(self, sent_before: datetime) -> int:
        """Let go of the bodies of messages sent before ``sent_before``; the rows stay,
        so their idempotency keys still stop a digest period or a forward being queued
        again. How many bodies went."""
        with self._write("pruning sent outbox bodies") as conn:
            return conn.execute(
                update(outbox)
                .where(
                    outbox.c.status == "sent",
                    outbox.c.sent_at < sent_before,
                    outbox.c.body.is_not(None),
                )
                .values(body=None)
            ).rowcount

    def outbox_deferred(self, row_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Sending failed for now: back to ``pending`` until ``retry_at``; ``None``: out of
        attempts, the row fails."""
        if retry_at is None:
            self._outbox_set(row_id, status="failed", last_error=error, next_attempt_at=None)
        else:
            self._outbox_set(row_id, status="pending", last_error=error, next_attempt_at=retry_at)

    def outbox_failed(self, row_id: int, error: str) -> None:
        """The server refused the message for good; ``error`` quotes its reply."""
        self._outbox_set(row_id, status="failed", last_error=error, next_attempt_at=None)

    def _outbox_set(self, row_id: int, **values: Any) -> None:
        with self._write(f"updating outbox row {row_id}") as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))

    # ------------------------------------------------------------------ by hand

    def outbox_list(self, *, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        """The newest rows (no bodies), newest first; ``status`` filters."""
        query = select(*_LISTED, func.length(outbox.c.body).label("size"))
        if status is not None:
            query = query.where(outbox.c.status == status)
        with self._read("listing the outbox") as conn:
            rows = conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all()
        return [_listed(row) for row in rows]

    def outbox_row(self, row_id: int) -> OutboxEntry:
        """One row (no body).

        :raises UsageError: when there is no such row.
        """
        with self._read(f"reading outbox row {row_id}") as conn:
            row = conn.execute(
                select(*_LISTED, func.length(outbox.c.body).label("size")).where(
                    outbox.c.id == row_id
                )
            ).first()
        if row is None:
            raise UsageError(
                f"There is no outbox message {row_id}.", hint="`syncer outbox list` shows them."
            )
        return _listed(row)

    def outbox_retry(self, row_id: int, now: datetime) -> OutboxEntry:
        """Make a failed (or waiting) row due now, with its attempts counted from zero.

        :raises UsageError: when the row is unknown, sent, or being sent.
        """
        row = self.outbox_row(row_id)
        if row.status in ("sent", "sending"):
            sent = f" (at {row.sent_at.isoformat()})" if row.sent_at else ""
            raise UsageError(
                f"Outbox message {row_id} is {row.status}{sent}; "
                "only pending or failed messages can be retried."
            )
        with self._write(f"retrying outbox row {row_id}") as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.status.in_(("pending", "failed")))
                .values(status="pending", attempts=0, next_attempt_at=now)
            )
        return self.outbox_row(row_id)

    def outbox_drop(self, row_id: int, now: datetime) -> OutboxEntry:
        """Give up on a pending (or failed) row: it is marked failed, "dropped by hand",
        and kept, so its idempotency key still stops it from being queued again.

        :raises UsageError: when the row is unknown, sent, or being sent.
        """
        row = self.outbox_row(row_id)
        if row.status in ("sent", "sending"):
            raise UsageError(
                f"Outbox message {row_id} is {row.status}; it can no longer be dropped."
            )
        with self._write(f"dropping outbox row {row_id}") as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.status.in_(("pending", "failed")))
                .values(
                    status="failed",
                    next_attempt_at=None,
                    last_error=f"dropped by hand at {now.isoformat(timespec='seconds')}"
                    + (f" (last error: {row.last_error})" if row.last_error else ""),
                )
            )
        return self.outbox_row(row_id)


def _listed(row: Any) -> OutboxEntry:
    """An outbox row selected with ``_LISTED`` and its body's ``size``."""
    return OutboxEntry(
        id=row.id,
        idem_key=row.idem_key,
        kind=row.kind,
        smtp=row.smtp,
        envelope_from=row.envelope_from,
        recipients=tuple(json.loads(row.recipients)),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        message_id=row.message_id,
        size=row.size,
    )
