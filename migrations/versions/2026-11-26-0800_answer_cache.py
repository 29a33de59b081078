"""the answer cache: reusable first-turn answers, the entries they cite, and which answers repeat
one

Revision ID: 0008_answer_cache
Revises: 0007_human_loop
Create Date: 2026-11-26 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_answer_cache"
down_revision: str | None = "0007_human_loop"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_cache",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("question_id", sa.String(length=36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("vector_model", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.String(length=300), nullable=False),
        sa.Column("statements", sa.String(length=64), nullable=False),
        sa.Column("anchors", sa.Text(), nullable=False),
        sa.Column("context_method", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("knowledge_version", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_answer_cache_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_cache")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_answer_cache_question_id"), "answer_cache", ["question_id"])
    op.create_index(op.f("ix_answer_cache_entry_id"), "answer_cache", ["entry_id"])
    op.create_table(
        "answer_cache_entries",
        sa.Column("cache_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=300), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["cache_id"],
            ["answer_cache.id"],
            name=op.f("fk_answer_cache_entries_cache_id_answer_cache"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cache_id", "entry_id", name=op.f("pk_answer_cache_entries")),
    )
    op.create_index(op.f("ix_answer_cache_entries_entry_id"), "answer_cache_entries", ["entry_id"])
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("cached_from", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_questions_cached_from"), ["cached_from"])


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_index(batch.f("ix_questions_cached_from"))
        batch.drop_column("cached_from")
    op.drop_table("answer_cache_entries")
    op.drop_table("answer_cache")
