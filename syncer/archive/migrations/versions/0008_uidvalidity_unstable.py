"""When a folder's UIDVALIDITY was found to change on every run.

Why: a Courier folder that lost its ``courierimapuiddb`` gets a new UIDVALIDITY on
every read-only session (issue 20 #7). The sync then moves the folder's live entries
to the new value instead of adding a generation per run, and warns once: this column
remembers that it warned (and since when), until a run sees the UIDVALIDITY stay.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "folders", sa.Column("uidvalidity_unstable_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Not in batch mode: SQLite would copy the table, and entries' foreign key to it
    # forbids dropping the original (ALTER TABLE DROP COLUMN needs no copy, SQLite >= 3.35).
    op.drop_column("folders", "uidvalidity_unstable_at")
