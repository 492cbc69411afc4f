"""Normalized messages: header fields, verdicts and markers on messages; text apart.

Adds what normalization (``syncer.mime.normalize``) derives from the raw bytes:
date status and raw Date, In-Reply-To, References, List-Id, Auto-Submitted and
Precedence, attachment/security/risk markers, SPF/DKIM/DMARC verdicts, parse
defects, and the normalizer version that marks a message as normalized; the
search text in its own table ``message_texts``; the display domain of an
address; the safe file name and Content-ID of an attachment.

Reviewed by hand: every new column is nullable (NULL = not derived yet), so the
``ALTER TABLE ... ADD COLUMN`` statements need no table rewrite on either
database, however large the archive. The downgrade drops the indexes first
(SQLite refuses to drop an indexed column) and then the columns with
``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35 or newer), again without copying
the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("date_raw", sa.Text()),
    ("date_status", sa.String(16)),
    ("in_reply_to", sa.Text()),
    ("references_header", sa.Text()),
    ("list_id", sa.String(255)),
    ("auto_submitted", sa.String(64)),
    ("precedence", sa.String(32)),
    ("has_attachments", sa.Boolean()),
    ("signed", sa.Boolean()),
    ("encrypted", sa.Boolean()),
    ("security", sa.String(64)),
    ("suspicious", sa.Boolean()),
    ("risk_note", sa.Text()),
    ("spf", sa.String(16)),
    ("dkim", sa.String(16)),
    ("dmarc", sa.String(16)),
    ("dkim_verified", sa.String(16)),
    ("parse_defects", sa.Text()),
    ("normalizer_version", sa.Integer()),
    ("normalized_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, type_ in _MESSAGE_COLUMNS:
        op.add_column("messages", sa.Column(name, type_, nullable=True))
    op.create_index("ix_messages_date", "messages", ["date"])
    op.create_index("ix_messages_normalizer_version", "messages", ["normalizer_version"])

    op.add_column("addresses", sa.Column("domain", sa.Text(), nullable=True))
    op.add_column("attachments", sa.Column("safe_filename", sa.Text(), nullable=True))
    op.add_column("attachments", sa.Column("content_id", sa.Text(), nullable=True))

    op.create_table(
        "message_texts",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name="fk_message_texts_message_pk_messages"
        ),
        sa.PrimaryKeyConstraint("message_pk", name="pk_message_texts"),
    )


def downgrade() -> None:
    op.drop_table("message_texts")
    op.drop_column("attachments", "content_id")
    op.drop_column("attachments", "safe_filename")
    op.drop_column("addresses", "domain")
    op.drop_index("ix_messages_normalizer_version", table_name="messages")
    op.drop_index("ix_messages_date", table_name="messages")
    for name, _type in reversed(_MESSAGE_COLUMNS):
        op.drop_column("messages", name)
