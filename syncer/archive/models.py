"""The archive's tables, as SQLAlchemy 2 declarative models.

Why this module exists: it is the one description of the schema that Alembic
compares against (``alembic check``) and that the store's Core statements are
built from. ORM objects defined here never leave ``syncer.archive``; the store
marshals rows to ``syncer.model`` values.

Design notes:

* The raw message is the truth: ``blobs`` holds the bytes (zstd, addressed by
  SHA-256), ``messages`` one row per distinct raw message, ``entries`` one row
  per (folder, UIDVALIDITY, UID) pointing at a message. Nothing that the server
  deletes or renames is deleted here: folders get ``deleted_at``/``renamed_to``,
  entries get ``gone_at``/``superseded_at``.
* UIDs, UIDVALIDITY, UIDNEXT and MODSEQ are unsigned 32-bit (63-bit for
  MODSEQ, :rfc:`7162`) on the wire, so they are ``BigInteger`` (PostgreSQL's
  ``integer`` is signed 32-bit).
* Timestamps are UTC everywhere; :class:`UTCDateTime` stores naive UTC on
  SQLite (which has no time zones) and ``timestamptz`` on PostgreSQL, and
  always hands back aware UTC datetimes.
* Constraint and index names follow one naming convention so migrations can
  drop and alter them by name on both databases (batch mode on SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256 = String(64)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database.

    Naive datetimes passed in are taken to be UTC already (the stdlib's
    ``email.utils`` and imapclient hand out aware ones; tests sometimes don't).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Stored as text 'YYYY-MM-DD HH:MM:SS.ffffff', which sorts and compares correctly
            # only when every value is in the same zone: strip it after converting to UTC.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    protocol: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Folder(Base):
    """A folder of an account, keyed by its protocol wire name, with its sync state.

    ``uidvalidity``/``uidnext``/``highestmodseq``/``messages`` are the archive's
    high-water mark (what has been committed), not what STATUS last said; they
    stay NULL until the first batch is committed.
    """

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    delimiter: Mapped[str | None] = mapped_column(String(8))
    namespace: Mapped[str] = mapped_column(String(16), default="personal")
    special_use: Mapped[str | None] = mapped_column(String(32))
    selectable: Mapped[bool] = mapped_column(Boolean, default=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uidnext: Mapped[int | None] = mapped_column(BigInteger)
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger)
    messages: Mapped[int | None] = mapped_column(Integer)
    mailbox_id: Mapped[str | None] = mapped_column(String(255))
    last_full_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    renamed_to: Mapped[str | None] = mapped_column(Text)


class Blob(Base):
    """Raw message bytes, zstd-compressed, addressed by the SHA-256 of the raw bytes.

    ``data`` is NULL when the blob lives in the on-disk store.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(SHA256, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_size: Mapped[int] = mapped_column(BigInteger)
    compression: Mapped[str] = mapped_column(String(16), default="zstd")
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """One distinct raw message; the derived columns are filled by normalization.

    ``header_sha256`` hashes the header block (up to and including the first
    blank line, what IMAP ``BODY[HEADER]`` returns) so a body can be recognised
    after a UIDVALIDITY reset without downloading it again.
    """

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(
            "parse_status IN ('pending', 'ok', 'partial', 'failed')", name="parse_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    header_sha256: Mapped[str | None] = mapped_column(SHA256)
    message_id_header: Mapped[str | None] = mapped_column(Text, index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sender: Mapped[str | None] = mapped_column(Text)
    thread_key: Mapped[str | None] = mapped_column(String(255), index=True)
    parse_status: Mapped[str] = mapped_column(String(16), default="pending")
    parse_error: Mapped[str | None] = mapped_column(Text)
    auth_results: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Entry(Base):
    """A message in a folder under one UIDVALIDITY.

    ``flags`` is the sorted, space-separated flag list as the server spells it.
    ``gone_at``: expunged on the server. ``superseded_at``: the folder's
    UIDVALIDITY changed, so this UID means nothing any more.

    The unique constraint's index also serves lookups by (folder_id,
    uidvalidity), so no separate index on that prefix is kept (it would only
    slow the hot insert path).
    """

    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("folder_id", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    flags: Mapped[str] = mapped_column(Text, default="")
    internaldate: Mapped[datetime | None] = mapped_column(UTCDateTime)
    modseq: Mapped[int | None] = mapped_column(BigInteger)
    emailid: Mapped[str | None] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Address(Base):
    """An address in a header of a message (filled by normalization)."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # from, sender, reply-to, to, cc, bcc
    position: Mapped[int] = mapped_column(Integer)
    display_name: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text, index=True)


class Attachment(Base):
    """A MIME part of a message that is an attachment or inline file (filled by normalization)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    part_path: Mapped[str] = mapped_column(String(64))  # e.g. "2.1"
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(255))
    disposition: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(SHA256, index=True)
    inline: Mapped[bool] = mapped_column(Boolean, default=False)


class Pop3Seen(Base):
    """A POP3 UIDL already downloaded (and when it was deleted from the server, if ever)."""

    __tablename__ = "pop3_seen"
    __table_args__ = (UniqueConstraint("account_id", "uidl"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    uidl: Mapped[str] = mapped_column(String(255))  # RFC 1939 allows 70 characters
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SyncRun(Base):
    """One run of one job (``kind``) for one account, with its counters."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
        Index("ix_sync_runs_account_id_started_at", "account_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16), default="sync")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    new: Mapped[int] = mapped_column(Integer, default=0)
    flags_changed: Mapped[int] = mapped_column(Integer, default=0)
    expunged: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))


class Lease(Base):
    """A named, expiring lock held by one worker (e.g. ``account:work``)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """An append-only, hash-chained record of what was done to the archive.

    ``details`` is canonical JSON text (sorted keys) because ``hash`` covers it
    byte for byte; ``hash`` = SHA-256 over ``prev_hash`` and the event's fields.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(SHA256)
    hash: Mapped[str] = mapped_column(SHA256, unique=True)


class LegalHold(Base):
    """Messages matching ``query`` must not be deleted while the hold is not released."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    query: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outbox(Base):
    """A message to send through SMTP, made idempotent by ``idem_key``.

    The body is either a stored blob (``body_sha256``) or inline bytes
    (``body``); ``recipients`` is a JSON list.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # digest, forward
    smtp: Mapped[str] = mapped_column(String(200))  # name of the relay in the config
    envelope_from: Mapped[str] = mapped_column(Text)
    recipients: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PushLog(Base):
    """What a migration (IMAP APPEND to another account) already copied where."""

    __tablename__ = "push_log"
    __table_args__ = (UniqueConstraint("target_account", "target_folder", "message_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_account: Mapped[str] = mapped_column(String(200))
    target_folder: Mapped[str] = mapped_column(Text)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    target_uid: Mapped[int | None] = mapped_column(BigInteger)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


metadata = Base.metadata

# Core table handles for the store's statements (no ORM objects on the hot path).
accounts = metadata.tables["accounts"]
folders = metadata.tables["folders"]
blobs = metadata.tables["blobs"]
messages = metadata.tables["messages"]
entries = metadata.tables["entries"]
addresses = metadata.tables["addresses"]
attachments = metadata.tables["attachments"]
pop3_seen = metadata.tables["pop3_seen"]
sync_runs = metadata.tables["sync_runs"]
leases = metadata.tables["leases"]
audit_events = metadata.tables["audit_events"]
legal_holds = metadata.tables["legal_holds"]
outbox = metadata.tables["outbox"]
push_log = metadata.tables["push_log"]
