"""Gmail labels per entry; when a throttled or budget-stopped sync may resume.

Why: a Gmail user's labels are the organisation of the mailbox (issue 21). Each
entry keeps the ``X-GM-LABELS`` the server reported for it, newline-separated and
sorted (label names contain spaces, never a line break), NULL where the server has
no labels (every server but Gmail). Labels are per message at Gmail, so every
entry of one message carries the same list; ``label:NAME`` matches any live entry.

``sync_runs.resume_at`` records, for a run that stopped at a provider limit
(``[THROTTLED]``, ``[OVERQUOTA]``, a daily byte budget), when the next run may
start; ``syncer status`` shows it.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("labels", sa.Text(), nullable=True))
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("resume_at")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("labels")
