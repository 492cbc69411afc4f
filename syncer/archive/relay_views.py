"""Typed views of the archive's relay side: digest items and outbox rows as people see them.

Why this module exists: the archive's API returns frozen dataclasses, not dicts.
:class:`DigestItem` is what ``ArchiveStore.digest_items`` reads and what a digest
lists (:mod:`syncer.relay.render` renders it); :class:`OutboxEntry` is a row of
``syncer outbox list`` (never the body), whose ``to_dict()`` is the JSON that
command prints. The module imports the stdlib only, so the pure digest renderer
can use it without pulling in the database.

Public API: :class:`DigestItem`, :class:`OutboxEntry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncer.archive.views import iso

__all__ = ["DigestItem", "OutboxEntry"]


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One archived message as a digest lists it; ``folders`` as ``account/folder``."""

    id: int
    date: datetime | None
    sender: str | None
    subject: str | None
    folders: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row of the outbox without its body; ``size`` is the body's (None once pruned)."""

    id: int
    idem_key: str
    kind: str
    smtp: str
    envelope_from: str
    recipients: tuple[str, ...]
    #: pending, sending, sent or failed.
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    message_id: str | None
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``syncer outbox list --json`` prints (times in ISO 8601 UTC)."""
        return {
            "id": self.id,
            "idem_key": self.idem_key,
            "kind": self.kind,
            "smtp": self.smtp,
            "envelope_from": self.envelope_from,
            "recipients": list(self.recipients),
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_attempt_at),
            "sent_at": iso(self.sent_at),
            "message_id": self.message_id,
            "size": self.size,
        }
