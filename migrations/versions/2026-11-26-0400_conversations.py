"""conversations and messages; questions belong to a conversation

Revision ID: 0006_conversations
Revises: 0005_answer_origin
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_conversations"
down_revision: str | None = "0005_answer_origin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("handoff_reason", sa.String(length=32), nullable=True),
        sa.Column("handoff_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(op.f("ix_conversations_customer_id"), "conversations", ["customer_id"])
    op.create_index(op.f("ix_conversations_updated_at"), "conversations", ["updated_at"])
    op.create_index("ix_conversations_status_updated_at", "conversations", ["status", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question_id", sa.String(length=36), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_question_id"), "messages", ["question_id"])
    op.create_index(
        "ix_messages_conversation_id_created_at", "messages", ["conversation_id", "created_at"]
    )
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("standalone_question", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_questions_conversation_id"), ["conversation_id"])
        batch.create_foreign_key(
            batch.f("fk_questions_conversation_id_conversations"),
            "conversations",
            ["conversation_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_constraint(
            batch.f("fk_questions_conversation_id_conversations"), type_="foreignkey"
        )
        batch.drop_index(batch.f("ix_questions_conversation_id"))
        batch.drop_column("standalone_question")
        batch.drop_column("message_id")
        batch.drop_column("conversation_id")
    op.drop_table("messages")
    op.drop_table("conversations")
