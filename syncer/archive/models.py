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


def storable(value: str) -> str:
    """``value`` as every database stores it: NUL (PostgreSQL text refuses it) becomes
    U+FFFD, and lone surrogates (no UTF-8 for them) become "?".

    Everything derived from mail or from a server (headers, addresses, file names,
    folder names, flags, UIDLs) reaches the database through these column types, so one
    hostile value cannot block a folder; the raw message stays byte for byte in its blob.
    Lookups go through the same conversion, so a name is found as it was stored.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value


class StorableText(TypeDecorator[str]):
    """Text made :func:`storable` on the way in."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else storable(value)


class StorableString(TypeDecorator[str]):
    """A bounded string made :func:`storable` and cut to its length on the way in
    (PostgreSQL refuses a longer value, SQLite keeps it: the same on both now)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        value = storable(value)
        length = getattr(self.impl, "length", None)
        return value[:length] if length and len(value) > length else value


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
    Column("name", StorableString(200), nullable=False, unique=True),
    Column("protocol", StorableString(16), nullable=False),
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
    Column("name", StorableText(), nullable=False),
    Column("display_name", StorableText(), nullable=False),
    Column("delimiter", StorableString(8)),
    Column("namespace", StorableString(16), nullable=False, default="personal"),
    Column("special_use", StorableString(32)),
    Column("selectable", Boolean, nullable=False, default=True),
    Column("uidvalidity", BigInteger),
    Column("uidnext", BigInteger),
    Column("highestmodseq", BigInteger),
    Column("messages", Integer),
    Column("mailbox_id", StorableString(255)),
    Column("last_full_scan_at", UTCDateTime),
    Column("last_synced_at", UTCDateTime),
    _created(),
    Column("deleted_at", UTCDateTime),
    Column("renamed_to", StorableText()),
    # Set when the UIDVALIDITY was found changing on every run with the same messages
    # (a Courier folder without courierimapuiddb); cleared when it holds again.
    Column("uidvalidity_unstable_at", UTCDateTime),
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
    Column("compression", StorableString(16), nullable=False, default="zstd"),
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
    Column("message_id_header", StorableText(), index=True),
    Column("subject", StorableText()),
    Column("date", UTCDateTime, index=True),
    Column("sender", StorableText()),
    Column("thread_key", StorableString(255), index=True),
    Column("parse_status", StorableString(16), nullable=False, default="pending"),
    Column("parse_error", StorableText()),
    Column("auth_results", StorableText()),
    _created("first_seen_at"),
    Column("date_raw", StorableText()),
    Column("date_status", StorableString(16)),
    Column("in_reply_to", StorableText()),
    Column("references_header", StorableText()),
    Column("list_id", StorableString(255)),
    Column("auto_submitted", StorableString(64)),
    Column("precedence", StorableString(32)),
    Column("has_attachments", Boolean),
    Column("signed", Boolean),
    Column("encrypted", Boolean),
    Column("security", StorableString(64)),
    Column("suspicious", Boolean),
    Column("risk_note", StorableText()),
    Column("spf", StorableString(16)),
    Column("dkim", StorableString(16)),
    Column("dmarc", StorableString(16)),
    Column("dkim_verified", StorableString(16)),
    Column("parse_defects", StorableText()),
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
    Column("text", StorableText(), nullable=False),
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
    Column("flags", StorableText(), nullable=False, default=""),
    Column("internaldate", UTCDateTime),
    Column("modseq", BigInteger),
    Column("emailid", StorableString(255)),
    # Gmail's X-GM-LABELS, sorted and newline-separated; NULL: the server has no labels.
    Column("labels", StorableText()),
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
    Column("role", StorableString(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("display_name", StorableText()),
    # local@domain, the domain lower-cased in its ASCII (IDNA) form; domain is the
    # same domain as people read it (IDNA labels decoded).
    Column("address", StorableText(), index=True),
    Column("domain", StorableText()),
)

# A MIME part of a message that is an attachment or inline file (filled by normalization).
attachments = Table(
    "attachments",
    metadata,
    _id(),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("part_path", StorableString(64), nullable=False),  # e.g. "2.1"
    Column("filename", StorableText()),
    Column("content_type", StorableString(255)),
    Column("disposition", StorableString(32)),
    Column("size", BigInteger),
    Column("sha256", SHA256, index=True),
    Column("inline", Boolean, nullable=False, default=False),
    # filename is as the sender wrote it (decoded); safe_filename can be created in
    # any folder. sha256 and size are of the decoded content.
    Column("safe_filename", StorableText()),
    Column("content_id", StorableText()),
)

# The text extracted from an attachment (text/*, HTML, PDF, docx, xlsx, pptx) by
# normalization (syncer.mime.attachments), for the search index; part_path matches
# attachments.part_path. note says why the text is missing or cut short (too large,
# timed out, unreadable), NULL when it is whole.
attachment_texts = Table(
    "attachment_texts",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("part_path", StorableString(64), primary_key=True),
    Column("text", StorableText(), nullable=False),
    Column("note", StorableText()),
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
    Column("uidl", StorableString(255), nullable=False),  # RFC 1939 allows 70 characters
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
    Column("run_id", StorableString(64), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", StorableString(16), nullable=False, default="sync"),
    _created("started_at"),
    Column("finished_at", UTCDateTime),
    Column("status", StorableString(16), nullable=False, default="running"),
    Column("error", StorableText()),
    Column("new", Integer, nullable=False, default=0),
    Column("flags_changed", Integer, nullable=False, default=0),
    Column("expunged", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("pid", Integer),
    Column("host", StorableString(255)),
    Column("worker", StorableString(255)),
    # A run stopped by a provider limit or the daily byte budget: not before this.
    Column("resume_at", UTCDateTime),
    CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
    Index("ix_sync_runs_account_id_started_at", "account_id", "started_at"),
)

# A named, expiring lock held by one worker (e.g. account:work).
leases = Table(
    "leases",
    metadata,
    Column("name", StorableString(200), primary_key=True),
    Column("holder", StorableString(255), nullable=False),
    Column("pid", Integer),
    Column("host", StorableString(255)),
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
    Column("kind", StorableString(64), nullable=False),
    Column("actor", StorableString(255)),
    Column("subject", StorableText()),
    Column("details", StorableText()),
    Column("prev_hash", SHA256),
    Column("hash", SHA256, nullable=False, unique=True),
)

# Messages matching query must not be deleted while the hold is not released.
legal_holds = Table(
    "legal_holds",
    metadata,
    _id(),
    Column("name", StorableString(200), nullable=False, unique=True),
    Column("query", StorableText(), nullable=False),
    Column("reason", StorableText()),
    _created(),
    Column("released_at", UTCDateTime),
)

# A message to send through SMTP, made idempotent by idem_key. The body is either a
# stored blob (body_sha256) or inline bytes (body); recipients is a JSON list.
outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("idem_key", StorableString(255), nullable=False, unique=True),
    Column("kind", StorableString(32), nullable=False),  # digest, forward
    Column("smtp", StorableString(200), nullable=False),  # name of the relay in the config
    Column("envelope_from", StorableText(), nullable=False),
    Column("recipients", StorableText(), nullable=False),
    Column("body_sha256", SHA256, ForeignKey("blobs.sha256")),
    Column("body", LargeBinary),
    Column("status", StorableString(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", StorableText()),
    _created(),
    Column("next_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("message_id", StorableText()),
    CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
)

# Where a scheduled job left off, one row per (kind, name): e.g. ('digest', 'morning'),
# ('forward', 'invoices'), ('retention', 'policies'). cursor_pk is the highest messages.id
# covered (ids only grow); data is job-specific canonical JSON.
job_state = Table(
    "job_state",
    metadata,
    Column("kind", StorableString(32), primary_key=True),
    Column("name", StorableString(200), primary_key=True),
    Column("cursor_pk", Integer),
    Column("cursor_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("data", StorableText()),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow),
)

# What a migration (IMAP APPEND to another account) already copied where.
push_log = Table(
    "push_log",
    metadata,
    _id(),
    Column("target_account", StorableString(200), nullable=False),
    Column("target_folder", StorableText(), nullable=False),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("target_uid", BigInteger),
    Column("pushed_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("target_account", "target_folder", "message_pk"),
)

# People who may use the web archive (`syncer serve`, migration 0006). role: admin (all
# accounts, audit trail, holds, users), auditor (all accounts and the audit trail) or reader
# (only the accounts granted in user_accounts). password_hash is an argon2id PHC string
# (NULL: the user signs in only through single sign-on).
users = Table(
    "users",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text),
    _created(),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    CheckConstraint("role IN ('admin', 'auditor', 'reader')", name="role"),
)

# The accounts a reader may see, by account name (a grant may precede the account's first
# sync, so this is not a key of accounts).
user_accounts = Table(
    "user_accounts",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("account", String(200), primary_key=True),
)

# Bearer tokens for the JSON API. Only the SHA-256 of a token is kept: a token is 256
# random bits, so a fast hash is as safe as a slow one and costs nothing per request.
api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("token_sha256", SHA256, nullable=False, unique=True),
    _created(),
)

# Failed sign-ins per name (existing or not, so a lockout says nothing about whether a
# user exists); locked_until is set once failures reach the limit.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_failure_at", UTCDateTime),
    Column("locked_until", UTCDateTime),
)
