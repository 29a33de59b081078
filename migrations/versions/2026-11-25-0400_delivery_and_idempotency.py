"""delivery bookkeeping for the reconciler, and idempotency keys

Revision ID: 0003_delivery_idempotency
Revises: 0002_answer_grounding
Create Date: 2026-11-25 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_delivery_idempotency"
down_revision: str | None = "0002_answer_grounding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("enqueue_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(batch.f("uq_questions_idempotency_key"), ["idempotency_key"])
    op.execute("UPDATE questions SET enqueued_at = created_at, enqueue_count = 1")


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_constraint(batch.f("uq_questions_idempotency_key"), type_="unique")
        batch.drop_column("idempotency_key")
        batch.drop_column("enqueue_count")
        batch.drop_column("enqueued_at")
