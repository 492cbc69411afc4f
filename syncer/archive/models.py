"""The archive's tables, as SQLAlchemy Core ``Table`` definitions.

Why this module exists: it is the one description of the schema that Alembic
compares against (``alembic check``) and that the store's Core statements are
built from; the store marshals rows to ``syncer.model`` values.

Why Core and not declarative ORM classes: nothing in syncer loads ORM objects,
and importing ``sqlalchemy.orm`` and mapping the classes cost about a tenth of
a no-change ``syncer sync`` (start-up plus exit). A column is NOT NULL only
where it says ``nullable=False``; ``tests/integration/test_archive_migrations.py``
proves these tables equal what the migrations build.

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
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

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


metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _created(name: str = "created_at") -> Column[datetime]:
    return Column(name, UTCDateTime, nullable=False, default=utcnow)


accounts = Table(
    "accounts",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("protocol", String(16), nullable=False),
    _created(),
)

# A folder of an account, keyed by its protocol wire name, with its sync state.
# uidvalidity/uidnext/highestmodseq/messages are the archive's high-water mark (what
# has been committed), not what STATUS last said; they stay NULL until the first
# batch is committed.
folders = Table(
    "folders",
    metadata,
    _id(),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("delimiter", String(8)),
    Column("namespace", String(16), nullable=False, default="personal"),
    Column("special_use", String(32)),
    Column("selectable", Boolean, nullable=False, default=True),
    Column("uidvalidity", BigInteger),
    Column("uidnext", BigInteger),
    Column("highestmodseq", BigInteger),
    Column("messages", Integer),
    Column("mailbox_id", String(255)),
    Column("last_full_scan_at", UTCDateTime),
    Column("last_synced_at", UTCDateTime),
    _created(),
    Column("deleted_at", UTCDateTime),
    Column("renamed_to", Text),
    UniqueConstraint("account_id", "name"),
)

# Raw message bytes, zstd-compressed, addressed by the SHA-256 of the raw bytes.
# data is NULL when the blob lives in the on-disk store.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", SHA256, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("stored_size", BigInteger, nullable=False),
    Column("compression", String(16), nullable=False, default="zstd"),
    Column("data", LargeBinary),
    _created(),
)

# One distinct raw message; the derived columns are filled by normalization.
# header_sha256 hashes the header block (up to and including the first blank line,
# what IMAP BODY[HEADER] returns) so a body can be recognised after a UIDVALIDITY
# reset without downloading it again.
# Normalization (syncer.mime.normalize, stored by store_normalize) fills the rest; until
# then they are NULL and parse_status is 'pending'. normalizer_version says which
# normalizer derived them: a row whose version is NULL or older awaits normalization.
# date is the Date header in UTC (NULL when date_status is 'missing' or 'invalid',
# date_raw keeps what was there); references_header is the space-separated
# Message-IDs of References (the name avoids the SQL keyword); spf/dkim/dmarc are
# the receiving server's verdicts, auth_results the header they came from,
# dkim_verified our own check; security is e.g. 'pgp-mime' or 'smime'.
messages = Table(
    "messages",
    metadata,
    _id(),
    Column("sha256", SHA256, ForeignKey("blobs.sha256"), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("header_sha256", SHA256),
    Column("message_id_header", Text, index=True),
    Column("subject", Text),
    Column("date", UTCDateTime, index=True),
    Column("sender", Text),
    Column("thread_key", String(255), index=True),
    Column("parse_status", String(16), nullable=False, default="pending"),
    Column("parse_error", Text),
    Column("auth_results", Text),
    _created("first_seen_at"),
    Column("date_raw", Text),
    Column("date_status", String(16)),
    Column("in_reply_to", Text),
    Column("references_header", Text),
    Column("list_id", String(255)),
    Column("auto_submitted", String(64)),
    Column("precedence", String(32)),
    Column("has_attachments", Boolean),
    Column("signed", Boolean),
    Column("encrypted", Boolean),
    Column("security", String(64)),
    Column("suspicious", Boolean),
    Column("risk_note", Text),
    Column("spf", String(16)),
    Column("dkim", String(16)),
    Column("dmarc", String(16)),
    Column("dkim_verified", String(16)),
    Column("parse_defects", Text),
    Column("normalizer_version", Integer, index=True),
    Column("normalized_at", UTCDateTime),
    CheckConstraint("parse_status IN ('pending', 'ok', 'partial', 'failed')", name="parse_status"),
    # "Archived since" (a digest's first run) ranges over it (migration 0005).
    Index("ix_messages_first_seen_at", "first_seen_at"),
)

# The searchable text of a message (filled by normalization), apart from messages so
# that scans over messages stay small: it can be a megabyte per message.
message_texts = Table(
    "message_texts",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("text", Text, nullable=False),
)

# A message in a folder under one UIDVALIDITY. flags is the sorted, space-separated
# flag list as the server spells it. gone_at: expunged on the server. superseded_at:
# the folder's UIDVALIDITY changed, so this UID means nothing any more.
# The unique constraint's index also serves lookups by (folder_id, uidvalidity), so
# no separate index on that prefix is kept (it would only slow the hot insert path).
entries = Table(
    "entries",
    metadata,
    _id(),
    Column("folder_id", Integer, ForeignKey("folders.id"), nullable=False),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("flags", Text, nullable=False, default=""),
    Column("internaldate", UTCDateTime),
    Column("modseq", BigInteger),
    Column("emailid", String(255)),
    # Gmail's X-GM-LABELS, sorted and newline-separated; NULL: the server has no labels.
    Column("labels", Text),
    _created("first_seen_at"),
    Column("gone_at", UTCDateTime),
    Column("superseded_at", UTCDateTime),
    UniqueConstraint("folder_id", "uidvalidity", "uid"),
)

# An address in a header of a message (filled by normalization).
addresses = Table(
    "addresses",
    metadata,
    _id(),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    # from, sender, reply-to, to, cc, bcc, delivered-to; position counts within the role.
    Column("role", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("display_name", Text),
    # local@domain, the domain lower-cased in its ASCII (IDNA) form; domain is the
    # same domain as people read it (IDNA labels decoded).
    Column("address", Text, index=True),
    Column("domain", Text),
)

# A MIME part of a message that is an attachment or inline file (filled by normalization).
attachments = Table(
    "attachments",
    metadata,
    _id(),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("part_path", String(64), nullable=False),  # e.g. "2.1"
    Column("filename", Text),
    Column("content_type", String(255)),
    Column("disposition", String(32)),
    Column("size", BigInteger),
    Column("sha256", SHA256, index=True),
    Column("inline", Boolean, nullable=False, default=False),
    # filename is as the sender wrote it (decoded); safe_filename can be created in
    # any folder. sha256 and size are of the decoded content.
    Column("safe_filename", Text),
    Column("content_id", Text),
)

# The text extracted from an attachment (text/*, HTML, PDF, docx, xlsx, pptx) by
# normalization (syncer.mime.attachments), for the search index; part_path matches
# attachments.part_path. note says why the text is missing or cut short (too large,
# timed out, unreadable), NULL when it is whole.
attachment_texts = Table(
    "attachment_texts",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("part_path", String(64), primary_key=True),
    Column("text", Text, nullable=False),
    Column("note", Text),
)

#: Tables of the full-text index that these models do not describe (see
#: syncer/archive/migrations/versions/0004_search_index.py): on SQLite the FTS5 virtual table and
#: the shadow tables FTS5 keeps for it, on PostgreSQL a tsvector table with a GIN
#: index. Neither can be a portable Core Table; syncer.archive.search.index
#: addresses them, and the model comparison (alembic check) skips them by name.
SEARCH_INDEX_TABLES = frozenset(
    {
        "search_fts",
        "search_fts_data",
        "search_fts_idx",
        "search_fts_content",
        "search_fts_docsize",
        "search_fts_config",
        "search_chunks",
    }
)

#: PostgreSQL-only indexes outside these models: the trigram indexes for substring terms
#: (from:, filename:), made by migration 0004 when pg_trgm may be created, and the
#: newest-first order of search (date DESC NULLS LAST, id DESC; migration 0005), which
#: SQLite cannot declare.
SEARCH_INDEX_INDEXES = frozenset(
    {
        "ix_addresses_address_trgm",
        "ix_addresses_display_name_trgm",
        "ix_attachments_filename_trgm",
        "ix_messages_date_newest",
    }
)


def is_modelled(name: str | None, type_: str, _parents: object = None) -> bool:
    """Alembic's ``include_name`` hook: False for the index objects these models leave out.

    Used by syncer/archive/migrations/env.py (so autogenerate never proposes dropping the full-text
    index) and by the model-vs-database comparison in the tests.
    """
    if type_ == "index":
        return name not in SEARCH_INDEX_INDEXES
    return not (type_ == "table" and name in SEARCH_INDEX_TABLES)


# A POP3 UIDL already downloaded (and when it was deleted from the server, if ever).
pop3_seen = Table(
    "pop3_seen",
    metadata,
    _id(),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("uidl", String(255), nullable=False),  # RFC 1939 allows 70 characters
    Column("message_pk", Integer, ForeignKey("messages.id"), index=True),
    Column("size", BigInteger),
    _created("seen_at"),
    Column("deleted_at", UTCDateTime),
    UniqueConstraint("account_id", "uidl"),
)

# One run of one job (kind) for one account, with its counters.
sync_runs = Table(
    "sync_runs",
    metadata,
    _id(),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False, default="sync"),
    _created("started_at"),
    Column("finished_at", UTCDateTime),
    Column("status", String(16), nullable=False, default="running"),
    Column("error", Text),
    Column("new", Integer, nullable=False, default=0),
    Column("flags_changed", Integer, nullable=False, default=0),
    Column("expunged", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("worker", String(255)),
    # A run stopped by a provider limit or the daily byte budget: not before this.
    Column("resume_at", UTCDateTime),
    CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
    Index("ix_sync_runs_account_id_started_at", "account_id", "started_at"),
)

# A named, expiring lock held by one worker (e.g. account:work).
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# An append-only, hash-chained record of what was done to the archive. details is
# canonical JSON text (sorted keys) because hash covers it byte for byte; hash =
# SHA-256 over prev_hash and the event's fields.
audit_events = Table(
    "audit_events",
    metadata,
    _id(),
    Column("at", UTCDateTime, nullable=False, default=utcnow, index=True),
    Column("kind", String(64), nullable=False),
    Column("actor", String(255)),
    Column("subject", Text),
    Column("details", Text),
    Column("prev_hash", SHA256),
    Column("hash", SHA256, nullable=False, unique=True),
)

# Messages matching query must not be deleted while the hold is not released.
legal_holds = Table(
    "legal_holds",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("query", Text, nullable=False),
    Column("reason", Text),
    _created(),
    Column("released_at", UTCDateTime),
)

# A message to send through SMTP, made idempotent by idem_key. The body is either a
# stored blob (body_sha256) or inline bytes (body); recipients is a JSON list.
outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("idem_key", String(255), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # digest, forward
    Column("smtp", String(200), nullable=False),  # name of the relay in the config
    Column("envelope_from", Text, nullable=False),
    Column("recipients", Text, nullable=False),
    Column("body_sha256", SHA256, ForeignKey("blobs.sha256")),
    Column("body", LargeBinary),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    _created(),
    Column("next_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("message_id", Text),
    CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
)

# Where a scheduled job left off, one row per (kind, name): e.g. ('digest', 'morning'),
# ('forward', 'invoices'), ('retention', 'policies'). cursor_pk is the highest messages.id
# covered (ids only grow); data is job-specific canonical JSON.
job_state = Table(
    "job_state",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("cursor_pk", Integer),
    Column("cursor_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("data", Text),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow),
)

# What a migration (IMAP APPEND to another account) already copied where.
push_log = Table(
    "push_log",
    metadata,
    _id(),
    Column("target_account", String(200), nullable=False),
    Column("target_folder", Text, nullable=False),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("target_uid", BigInteger),
    Column("pushed_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("target_account", "target_folder", "message_pk"),
)
