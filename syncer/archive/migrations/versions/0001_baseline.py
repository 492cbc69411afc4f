"""Baseline: the whole archive schema (accounts, folders, blobs, messages, entries, ...).

Why this migration is written out rather than imported from the models: a
migration is a frozen record of a schema at one point in time; the models move
on. It was produced by autogenerate against ``syncer.archive.models`` and then
reviewed: timestamps are spelled ``DateTime(timezone=True)`` (the models' UTC
TypeDecorator is a Python-side concern), every constraint and index carries the
name the naming convention gives it, and the same operations run on SQLite and
PostgreSQL. The migration tests assert that the result has no difference from
the models on both databases.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    """A UTC timestamp: timestamptz on PostgreSQL, naive UTC text on SQLite."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _sha(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.String(64), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "blobs",
        _sha("sha256", nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        sa.Column("compression", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_blobs"),
    )
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("delimiter", sa.String(8), nullable=True),
        sa.Column("namespace", sa.String(16), nullable=False),
        sa.Column("special_use", sa.String(32), nullable=True),
        sa.Column("selectable", sa.Boolean(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uidnext", sa.BigInteger(), nullable=True),
        sa.Column("highestmodseq", sa.BigInteger(), nullable=True),
        sa.Column("messages", sa.Integer(), nullable=True),
        sa.Column("mailbox_id", sa.String(255), nullable=True),
        _ts("last_full_scan_at"),
        _ts("last_synced_at"),
        _ts("created_at", nullable=False),
        _ts("deleted_at"),
        sa.Column("renamed_to", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_folders_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_id_name"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        _sha("sha256", nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _sha("header_sha256"),
        sa.Column("message_id_header", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        _ts("date"),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("thread_key", sa.String(255), nullable=True),
        sa.Column("parse_status", sa.String(16), nullable=False),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("auth_results", sa.Text(), nullable=True),
        _ts("first_seen_at", nullable=False),
        sa.CheckConstraint(
            "parse_status IN ('pending', 'ok', 'partial', 'failed')",
            name="ck_messages_parse_status",
        ),
        sa.ForeignKeyConstraint(["sha256"], ["blobs.sha256"], name="fk_messages_sha256_blobs"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("sha256", name="uq_messages_sha256"),
    )
    op.create_index("ix_messages_message_id_header", "messages", ["message_id_header"])
    op.create_index("ix_messages_thread_key", "messages", ["thread_key"])

    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        _ts("internaldate"),
        sa.Column("modseq", sa.BigInteger(), nullable=True),
        sa.Column("emailid", sa.String(255), nullable=True),
        _ts("first_seen_at", nullable=False),
        _ts("gone_at"),
        _ts("superseded_at"),
        sa.ForeignKeyConstraint(["folder_id"], ["folders.id"], name="fk_entries_folder_id_folders"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_entries_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_entries"),
        # Its index also serves every lookup by (folder_id, uidvalidity).
        sa.UniqueConstraint(
            "folder_id", "uidvalidity", "uid", name="uq_entries_folder_id_uidvalidity_uid"
        ),
    )
    op.create_index("ix_entries_message_pk", "entries", ["message_pk"])

    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_addresses_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_addresses"),
    )
    op.create_index("ix_addresses_message_pk", "addresses", ["message_pk"])
    op.create_index("ix_addresses_address", "addresses", ["address"])

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("part_path", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        _sha("sha256"),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_attachments_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_message_pk", "attachments", ["message_pk"])
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])

    op.create_table(
        "pop3_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("uidl", sa.String(255), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        _ts("seen_at", nullable=False),
        _ts("deleted_at"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_pop3_seen_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_pop3_seen_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pop3_seen"),
        sa.UniqueConstraint("account_id", "uidl", name="uq_pop3_seen_account_id_uidl"),
    )
    op.create_index("ix_pop3_seen_message_pk", "pop3_seen", ["message_pk"])

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("flags_changed", sa.Integer(), nullable=False),
        sa.Column("expunged", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.CheckConstraint("status IN ('running', 'ok', 'failed')", name="ck_sync_runs_status"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_sync_runs_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
        sa.UniqueConstraint("run_id", name="uq_sync_runs_run_id"),
    )
    op.create_index("ix_sync_runs_account_id_started_at", "sync_runs", ["account_id", "started_at"])

    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        _ts("acquired_at", nullable=False),
        _ts("expires_at", nullable=False),
        _ts("heartbeat_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        _sha("prev_hash"),
        _sha("hash", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.UniqueConstraint("hash", name="uq_audit_events_hash"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])

    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("released_at"),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
        sa.UniqueConstraint("name", name="uq_legal_holds_name"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idem_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("smtp", sa.String(200), nullable=False),
        sa.Column("envelope_from", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        _sha("body_sha256"),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("next_attempt_at"),
        _ts("sent_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')", name="ck_outbox_status"
        ),
        sa.ForeignKeyConstraint(
            ["body_sha256"], ["blobs.sha256"], name="fk_outbox_body_sha256_blobs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idem_key", name="uq_outbox_idem_key"),
    )
    op.create_table(
        "push_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_account", sa.String(200), nullable=False),
        sa.Column("target_folder", sa.Text(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("target_uid", sa.BigInteger(), nullable=True),
        _ts("pushed_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_push_log_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_push_log"),
        sa.UniqueConstraint(
            "target_account",
            "target_folder",
            "message_pk",
            name="uq_push_log_target_account_target_folder_message_pk",
        ),
    )
    op.create_index("ix_push_log_message_pk", "push_log", ["message_pk"])


def downgrade() -> None:
    # Children before parents, so the foreign keys never dangle; dropping a table drops its
    # indexes on both databases.
    for table in (
        "push_log",
        "outbox",
        "legal_holds",
        "audit_events",
        "leases",
        "sync_runs",
        "pop3_seen",
        "attachments",
        "addresses",
        "entries",
        "messages",
        "folders",
        "blobs",
        "accounts",
    ):
        op.drop_table(table)
