"""an answer given again for the same words must come from the same revision of the answering
code: rows kept before have no revision and are never given again that way

Revision ID: 0010_answer_cache_revision
Revises: 0009_answer_cache_question
Create Date: 2026-11-26 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_answer_cache_revision"
down_revision: str | None = "0009_answer_cache_question"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "answer_cache",
        sa.Column("engine_revision", sa.String(length=16), server_default="", nullable=False),
    )


def downgrade() -> None:
    # Not a batch rebuild: on SQLite that drops the table (its cited entries cascade away) and
    # its AUTOINCREMENT sequence. SQLite 3.35 and later drop a column in place.
    op.drop_column("answer_cache", "engine_revision")
