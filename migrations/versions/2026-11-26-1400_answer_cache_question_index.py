"""the answer cache is looked up by a message's normalised words when it arrives

Revision ID: 0009_answer_cache_question
Revises: 0008_answer_cache
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_answer_cache_question"
down_revision: str | None = "0008_answer_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A hash index on PostgreSQL: a question of 2,000 characters may exceed a B-tree entry.
    op.create_index(
        op.f("ix_answer_cache_question"), "answer_cache", ["question"], postgresql_using="hash"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_answer_cache_question"), table_name="answer_cache")
