"""Typed views of the archive's bookkeeping: leases, runs, status, the search index, audit events.

Why this module exists: the archive's API returns frozen dataclasses, not dicts, so
callers (the daemon, the web archive, the CLI) read typed fields (datetimes as
datetimes) and mypy checks every use. ``syncer ... --json`` prints what it always
printed through each view's ``to_dict()``; the JSON form is decided here, once.

Public API: :class:`LeaseView` (``ArchiveStore.leases``), :class:`RunView`
(``ArchiveStore.runs``), :class:`ArchiveStatus` with :class:`AccountStatus`,
:class:`FolderStatus` and :class:`ArchiveTotals` (``ArchiveStore.status``),
:class:`IndexStatus` (``ArchiveStore.index_status``), :class:`AuditEvent`
(``ArchiveStore.audit_events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncer.archive.views import iso

__all__ = [
    "AccountStatus",
    "ArchiveStatus",
    "ArchiveTotals",
    "AuditEvent",
    "FolderStatus",
    "IndexStatus",
    "LeaseView",
    "RunView",
]


@dataclass(frozen=True, slots=True)
class LeaseView:
    """A lease row; ``expired`` (when read) means anyone may take it."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    heartbeat_at: datetime
    expired: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, the times in ISO 8601 UTC."""
        return {
            "name": self.name,
            "holder": self.holder,
            "acquired_at": iso(self.acquired_at),
            "expires_at": iso(self.expires_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class RunView:
    """A recorded run (sync, POP3, ...) of one account; ``status`` is running, ok or failed."""

    run_id: str
    account: str
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    #: the run stopped at a provider limit or the daily budget; the next starts no earlier.
    resume_at: datetime | None
    error: str | None
    new: int
    flags_changed: int
    expunged: int
    bytes: int
    pid: int | None
    host: str | None
    worker: str | None

    @property
    def seconds(self) -> float | None:
        """How long the run took (None while it runs)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, the times in ISO 8601 UTC, with ``seconds``."""
        return {
            "run_id": self.run_id,
            "account": self.account,
            "kind": self.kind,
            "status": self.status,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "resume_at": iso(self.resume_at),
            "seconds": self.seconds,
            "error": self.error,
            "new": self.new,
            "flags_changed": self.flags_changed,
            "expunged": self.expunged,
            "bytes": self.bytes,
            "pid": self.pid,
            "host": self.host,
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """One folder in :class:`AccountStatus`; ``messages`` counts its live entries."""

    name: str
    display_name: str
    messages: int
    last_synced_at: datetime | None
    #: the folder is gone from the server (its archived mail stays).
    deleted: bool
    #: False while a download is part-way (budget, limit, crash): the next run resumes it.
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "messages": self.messages,
            "last_synced_at": iso(self.last_synced_at),
            "deleted": self.deleted,
            "complete": self.complete,
        }


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One account in :class:`ArchiveStatus`: its live entries and folders (sorted by name)."""

    protocol: str
    messages: int
    last_synced_at: datetime | None
    folders: tuple[FolderStatus, ...]
    #: when a run stopped by a provider limit or the daily budget continues, or None.
    resume_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "messages": self.messages,
            "last_synced_at": iso(self.last_synced_at),
            "folders": [folder.to_dict() for folder in self.folders],
            "resume_at": iso(self.resume_at),
        }


@dataclass(frozen=True, slots=True)
class ArchiveTotals:
    """Counts over the whole archive; ``awaiting_normalization`` counts the messages this
    syncer's normalizer has not seen yet."""

    messages: int
    entries: int
    blobs: int
    stored_bytes: int
    raw_bytes: int
    awaiting_normalization: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "entries": self.entries,
            "blobs": self.blobs,
            "stored_bytes": self.stored_bytes,
            "raw_bytes": self.raw_bytes,
            "awaiting_normalization": self.awaiting_normalization,
        }


@dataclass(frozen=True, slots=True)
class ArchiveStatus:
    """What is in the archive (``syncer status``); ``database`` has its password masked."""

    database: str
    blob_store: str
    #: by account name, in name order.
    accounts: dict[str, AccountStatus]
    totals: ArchiveTotals

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``syncer status --json`` prints (before jobs and push are added)."""
        return {
            "database": self.database,
            "blob_store": self.blob_store,
            "accounts": {name: account.to_dict() for name, account in self.accounts.items()},
            "totals": self.totals.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """The search index (``syncer index --status``)."""

    messages: int
    normalized: int
    indexed: int
    index_rows: int
    #: its size on disk; None where the database cannot tell.
    index_bytes: int | None
    #: the message an interrupted ``--rebuild`` stopped after, or None.
    rebuild_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "normalized": self.normalized,
            "indexed": self.indexed,
            "index_rows": self.index_rows,
            "index_bytes": self.index_bytes,
            "rebuild_at": self.rebuild_at,
        }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An event of the hash-chained audit trail; ``at`` is aware UTC, ``details`` parsed."""

    id: int
    at: datetime
    kind: str
    actor: str | None
    subject: str | None
    details: Any
    #: None for the first event of the chain.
    prev_hash: str | None
    hash: str

    @property
    def at_text(self) -> str:
        """``at`` as the chain hashes it: ISO 8601 UTC with microseconds."""
        return self.at.astimezone(UTC).isoformat(timespec="microseconds")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``syncer audit export`` and ``/api/audit`` give."""
        return {
            "id": self.id,
            "at": self.at_text,
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
