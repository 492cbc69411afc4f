"""Job state: where each scheduled job (a digest, a forward rule, retention) left off.

A digest covers the messages archived since its previous successful run, a
forward rule applies to messages archived after it was first seen, and
retention remembers the policies it last saw to audit changes; each keeps one
row here, keyed by (kind, name): ``cursor_pk`` is the highest ``messages.id``
it has covered (ids only grow, so "archived since" is ``id > cursor_pk``),
``cursor_at`` the time that cursor was taken, ``data`` job-specific canonical
JSON. The outbox gains the Message-ID of what it sends, so a duplicate after a
crash can be recognised by receivers and by us.

Reviewed by hand: a new table and one nullable column; no table rewrite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_state",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cursor_pk", sa.Integer(), nullable=True),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name="pk_job_state"),
    )
    op.add_column("outbox", sa.Column("message_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "message_id")
    op.drop_table("job_state")
