"""answer confidence, action, knowledge version, grounding fallback and timings

Revision ID: 0002_answer_grounding
Revises: 0001_create_questions
Create Date: 2026-11-25 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_answer_grounding"
down_revision: str | None = "0001_create_questions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("action", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("knowledge_version", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("fallback_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rejected_draft", sa.Text(), nullable=True))
        batch.add_column(sa.Column("timings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        for column in (
            "timings", "rejected_draft", "fallback_reason", "knowledge_version", "confidence",
            "action",
        ):  # fmt: skip
            batch.drop_column(column)
