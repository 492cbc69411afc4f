"""The audit trail: an append-only, hash-chained log of what was done to the archive.

Why this module exists: compliance retention has to prove what was deleted,
when and why, and that the record itself was not changed afterwards. Every
deletion, server expunge, legal hold change, policy change and retention run
appends one ``audit_events`` row whose ``hash`` is the SHA-256 of its canonical
content *and* the previous row's hash, so editing, removing or reordering a
row breaks the chain from that row on, and :func:`verify_chain` names it.

Canonical content: the JSON object ``{"actor", "at", "details", "kind",
"prev_hash", "subject"}`` with sorted keys, no whitespace, UTF-8, where ``at``
is ISO 8601 UTC with microseconds and ``details`` the stored canonical JSON
text. The last row's id and hash are also kept in ``job_state`` (kind
``audit``, name ``head``), updated in the same transaction, so removing the
newest rows is detected too.

What the database alone cannot prove: someone who can write to it can delete
the newest events *and* the recorded head (or rewrite the head to an earlier
row), and the shorter chain is still internally consistent. So the head is
also anchored outside the database: :class:`Anchor` (head id, head hash, event
count) is written to a file by ``syncer audit anchor`` and checked by
``syncer audit verify --anchor FILE``: the anchored event must still be in the
chain, with the same hash, at the same position. docs/audit.md says what the
chain proves and what it cannot.

Concurrency: appends are serialized so two writers cannot both chain onto the
same previous row: on PostgreSQL by a transaction-scoped advisory lock
(``pg_advisory_xact_lock``), on SQLite by the write lock every write
transaction takes up front (``BEGIN IMMEDIATE``). Call :func:`append_event`
inside the caller's write transaction, so the event commits with what it
records, or not at all.

Public API: :func:`append_event`, :func:`verify_chain`, :func:`read_events`,
:func:`canonical_json`, :class:`ChainReport`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from syncer.archive.admin_views import AuditEvent
from syncer.archive.models import audit_events, job_state, utcnow

__all__ = [
    "Anchor",
    "ChainReport",
    "append_event",
    "canonical_json",
    "read_events",
    "verify_chain",
]

#: The advisory lock key that serializes appends on PostgreSQL ("syncer audit" in ASCII, cut).
_PG_LOCK_KEY = 0x73796E636175
_HEAD = ("audit", "head")
_PAGE = 1000


def canonical_json(value: Any) -> str:
    """The one text form hashed and stored: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _at_text(at: datetime) -> str:
    value = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def event_hash(
    *,
    at: datetime,
    kind: str,
    actor: str | None,
    subject: str | None,
    details: str | None,
    prev_hash: str | None,
) -> str:
    """The SHA-256 of an event's canonical content chained to ``prev_hash``."""
    content = canonical_json(
        {
            "actor": actor,
            "at": _at_text(at),
            "details": details,
            "kind": kind,
            "prev_hash": prev_hash,
            "subject": subject,
        }
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def serialize(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    # SQLite: the caller's write transaction began with BEGIN IMMEDIATE and holds the lock.


def append_event(
    conn: Connection,
    kind: str,
    *,
    actor: str | None = None,
    subject: str | None = None,
    details: Any = None,
    at: datetime | None = None,
) -> str:
    """Append one event inside the caller's write transaction; returns its hash.

    :param kind: a dotted name, e.g. ``retention.deleted``, ``hold.added``.
    :param details: any JSON-serialisable value, stored as canonical JSON.
    """
    serialize(conn)
    # Microseconds are what both databases keep; hash what will be read back.
    when = (at or utcnow()).astimezone(UTC)
    details_text = None if details is None else canonical_json(details)
    last = conn.execute(
        select(audit_events.c.id, audit_events.c.hash).order_by(audit_events.c.id.desc()).limit(1)
    ).first()
    fields: dict[str, Any] = {
        "at": when,
        "kind": kind,
        "actor": actor,
        "subject": subject,
        "details": details_text,
        "prev_hash": last.hash if last is not None else None,
    }
    digest = event_hash(**fields)
    new_id = conn.execute(
        audit_events.insert().values(**fields, hash=digest).returning(audit_events.c.id)
    ).scalar_one()
    _write_head(conn, new_id, digest)
    return digest


def _write_head(conn: Connection, event_id: int, digest: str) -> None:
    data = canonical_json({"id": event_id, "hash": digest})
    now = utcnow()
    done = conn.execute(
        update(job_state)
        .where(job_state.c.kind == _HEAD[0], job_state.c.name == _HEAD[1])
        .values(cursor_pk=event_id, data=data, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(
            job_state.insert().values(
                kind=_HEAD[0], name=_HEAD[1], cursor_pk=event_id, data=data, updated_at=now
            )
        )


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify_chain` found.

    :ivar events: how many rows were checked.
    :ivar broken_at: the id of the first row that does not hold, or None.
    :ivar problem: why, in one sentence.
    :ivar head_id: the id of the last event (None for an empty trail).
    :ivar head_hash: its hash: print it, keep it elsewhere, compare it next time.
    """

    events: int
    broken_at: int | None = None
    problem: str | None = None
    head_id: int | None = None
    head_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the trail as seen once, kept where a database edit cannot move it.

    :ivar events: how many events the trail had up to and including the head.
    :ivar head_id: the last event's id (None: the trail was empty).
    :ivar head_hash: the last event's hash.
    """

    events: int
    head_id: int | None
    head_hash: str | None

    def to_json(self) -> str:
        return canonical_json(
            {"events": self.events, "head_id": self.head_id, "head_hash": self.head_hash}
        )

    @classmethod
    def from_json(cls, text_: str) -> Anchor:
        """:raises ValueError: when ``text_`` is not an anchor."""
        data = json.loads(text_)
        if not isinstance(data, dict) or not isinstance(data.get("events"), int):
            raise ValueError("not an audit anchor")
        head_id, head_hash = data.get("head_id"), data.get("head_hash")
        if not (head_id is None or isinstance(head_id, int)) or not (
            head_hash is None or isinstance(head_hash, str)
        ):
            raise ValueError("not an audit anchor")
        return cls(data["events"], head_id, head_hash)


def _rows(conn: Connection) -> Iterator[Any]:
    after = 0
    while True:
        page = conn.execute(
            select(audit_events)
            .where(audit_events.c.id > after)
            .order_by(audit_events.c.id)
            .limit(_PAGE)
        ).all()
        if not page:
            return
        yield from page
        after = page[-1].id


def verify_chain(conn: Connection, anchor: Anchor | None = None) -> ChainReport:
    """Walk the chain in id order and report the first row that breaks it.

    A row whose hash is not the hash of its own content was edited; a row whose
    ``prev_hash`` is not the hash of the row before it follows a removed row or
    was moved (two swapped rows break at the first of them); a chain that ends
    before the recorded head lost its newest rows; a chain that does not hold
    ``anchor``'s head event, with its hash, as its ``anchor.events``-th event was
    cut or rewritten since the anchor was taken.
    """
    report = _walk(conn)
    if report.ok and anchor is not None:
        return _check_anchor(conn, report, anchor)
    return report


def _check_anchor(conn: Connection, report: ChainReport, anchor: Anchor) -> ChainReport:
    if anchor.head_id is None:
        return report  # anchored empty: any intact chain extends it
    found = conn.execute(
        select(audit_events.c.hash).where(audit_events.c.id == anchor.head_id)
    ).scalar_one_or_none()
    position = conn.execute(
        select(func.count()).select_from(audit_events).where(audit_events.c.id <= anchor.head_id)
    ).scalar_one()
    if found == anchor.head_hash and position == anchor.events:
        return report
    return replace(
        report,
        broken_at=anchor.head_id,
        problem=(
            f"the anchored head, event {anchor.head_id} (hash {anchor.head_hash}) as event "
            f"{anchor.events} of the trail, is "
            + ("missing" if found is None else "not the same")
            + ": events were removed or rewritten since the anchor was taken"
        ),
    )


def _walk(conn: Connection) -> ChainReport:
    count = 0
    prev: Any = None
    for row in _rows(conn):
        count += 1
        expected_prev = prev.hash if prev is not None else None
        if row.prev_hash != expected_prev:
            after = f"event {prev.id}" if prev is not None else "the start of the trail"
            return ChainReport(
                count,
                row.id,
                f"event {row.id} ({row.kind}) does not follow {after}: its prev_hash does not "
                "match, so a row before it was removed, or rows were reordered",
            )
        digest = event_hash(
            at=row.at,
            kind=row.kind,
            actor=row.actor,
            subject=row.subject,
            details=row.details,
            prev_hash=row.prev_hash,
        )
        if digest != row.hash:
            return ChainReport(
                count,
                row.id,
                f"event {row.id} ({row.kind}) was altered: its content does not hash to its "
                "recorded hash",
            )
        prev = row
    head = conn.execute(
        select(job_state.c.cursor_pk, job_state.c.data).where(
            job_state.c.kind == _HEAD[0], job_state.c.name == _HEAD[1]
        )
    ).first()
    if head is not None:
        recorded = json.loads(head.data or "{}")
        last_id = prev.id if prev is not None else None
        last_hash = prev.hash if prev is not None else None
        if recorded.get("id") != last_id or recorded.get("hash") != last_hash:
            return ChainReport(
                count,
                recorded.get("id"),
                f"the trail ends at event {last_id} but its recorded head is event "
                f"{recorded.get('id')}: the newest events were removed or altered",
            )
    if prev is None:
        return ChainReport(count)
    return ChainReport(count, head_id=prev.id, head_hash=prev.hash)


def read_events(conn: Connection, *, newest: int | None = None) -> Iterator[AuditEvent]:
    """Every event in id order (or only the ``newest`` ones, newest first), ``details``
    parsed."""
    rows: Iterable[Any] = _rows(conn)
    if newest is not None:
        rows = conn.execute(
            select(audit_events).order_by(audit_events.c.id.desc()).limit(newest)
        ).all()
    for row in rows:
        yield AuditEvent(
            id=row.id,
            at=row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at.astimezone(UTC),
            kind=row.kind,
            actor=row.actor,
            subject=row.subject,
            details=json.loads(row.details) if row.details is not None else None,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
