"""Typed read views of one archived message: :class:`MessageDetail` and its parts.

Why this module exists: ``syncer show`` prints the message view as JSON, while
the web archive needs the same facts as typed values (dates as datetimes, the
accounts a message is in, to decide who may see it). The store builds a
:class:`MessageDetail` (``ArchiveStore.message_detail``); :meth:`MessageDetail.to_dict`
is the JSON form ``syncer show --json`` has always printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AddressView", "AttachmentView", "MessageDetail", "PlacementView", "iso"]


def iso(value: datetime | None) -> str | None:
    """A datetime as the JSON forms of the archive's views write it (ISO 8601), or None."""
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class AddressView:
    """An address in one header role; ``display`` has the domain as people read it."""

    role: str
    name: str | None
    address: str | None
    display: str | None


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """An attachment or inline part; ``index`` counts from 1 as ``syncer show`` numbers them."""

    index: int
    part_path: str
    filename: str | None
    safe_filename: str | None
    content_type: str | None
    disposition: str | None
    size: int | None
    sha256: str | None
    inline: bool
    content_id: str | None


@dataclass(frozen=True, slots=True)
class PlacementView:
    """Where the message is (or was): a folder of an account, under one UIDVALIDITY."""

    account: str
    folder: str
    uidvalidity: int
    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None
    gone: bool
    #: Gmail's labels of the message there (empty where the server has none).
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageDetail:
    """Everything the archive knows of one message (see ``ArchiveStore.message_detail``)."""

    id: int
    sha256: str
    size: int
    first_seen_at: datetime | None
    parse_status: str
    parse_error: str | None
    parse_defects: tuple[str, ...]
    normalizer_version: int | None
    normalized_at: datetime | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str | None
    date: datetime | None
    date_raw: str | None
    date_status: str | None
    list_id: str | None
    auto_submitted: str | None
    precedence: str | None
    thread_key: str | None
    addresses: tuple[AddressView, ...]
    attachments: tuple[AttachmentView, ...]
    spf: str | None
    dkim: str | None
    dmarc: str | None
    dkim_verified: str | None
    authentication_results: str | None
    signed: bool | None
    encrypted: bool | None
    security: str | None
    suspicious: bool | None
    risk_note: str | None
    placements: tuple[PlacementView, ...]
    text_length: int
    text_excerpt: str

    @property
    def labels(self) -> tuple[str, ...]:
        """The message's Gmail labels (any placement's: they are per message at Gmail)."""
        return tuple(sorted({label for p in self.placements for label in p.labels}))

    @property
    def accounts(self) -> frozenset[str]:
        """The accounts holding (or having held) the message: who may see it depends on these."""
        return frozenset(p.account for p in self.placements)

    def by_role(self, role: str) -> tuple[AddressView, ...]:
        return tuple(a for a in self.addresses if a.role == role)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form ``syncer show --json`` prints."""
        roles: dict[str, list[dict[str, Any]]] = {}
        for a in self.addresses:
            roles.setdefault(a.role, []).append(
                {"name": a.name, "address": a.address, "display": a.display}
            )
        return {
            "id": self.id,
            "sha256": self.sha256,
            "size": self.size,
            "first_seen_at": iso(self.first_seen_at),
            "parse": {
                "status": self.parse_status,
                "error": self.parse_error,
                "defects": list(self.parse_defects),
                "normalizer_version": self.normalizer_version,
                "normalized_at": iso(self.normalized_at),
            },
            "headers": {
                "message_id": self.message_id,
                "in_reply_to": self.in_reply_to,
                "references": list(self.references),
                "subject": self.subject,
                "date": iso(self.date),
                "date_raw": self.date_raw,
                "date_status": self.date_status,
                "list_id": self.list_id,
                "auto_submitted": self.auto_submitted,
                "precedence": self.precedence,
            },
            "thread_key": self.thread_key,
            "addresses": roles,
            "attachments": [
                {
                    "index": a.index,
                    "part_path": a.part_path,
                    "filename": a.filename,
                    "safe_filename": a.safe_filename,
                    "content_type": a.content_type,
                    "disposition": a.disposition,
                    "size": a.size,
                    "sha256": a.sha256,
                    "inline": a.inline,
                    "content_id": a.content_id,
                }
                for a in self.attachments
            ],
            "auth": {
                "spf": self.spf,
                "dkim": self.dkim,
                "dmarc": self.dmarc,
                "dkim_verified": self.dkim_verified,
                "authentication_results": self.authentication_results,
            },
            "security": {
                "signed": self.signed,
                "encrypted": self.encrypted,
                "scheme": self.security,
            },
            "suspicious": self.suspicious,
            "risk_note": self.risk_note,
            "folders": [
                {
                    "account": p.account,
                    "folder": p.folder,
                    "uidvalidity": p.uidvalidity,
                    "uid": p.uid,
                    "flags": list(p.flags),
                    "labels": list(p.labels),
                    "internaldate": iso(p.internaldate),
                    "gone": p.gone,
                }
                for p in self.placements
            ],
            "labels": list(self.labels),
            "text_length": self.text_length,
            "text_excerpt": self.text_excerpt,
        }
