"""the human loop: handoffs, assignees, agent authors, feedback, suggestions, knowledge changes,
question vectors

Revision ID: 0007_human_loop
Revises: 0006_conversations
Create Date: 2026-11-26 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_human_loop"
down_revision: str | None = "0006_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("assignee", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(length=200), nullable=True))
        batch.create_index(batch.f("ix_conversations_assignee"), ["assignee"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author", sa.String(length=200), nullable=True))
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("vector", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("vector_model", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("handoff_reason", sa.String(length=32), nullable=True))
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_feedback_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feedback_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("message_id", name="uq_feedback_message_id"),
    )
    op.create_index(op.f("ix_feedback_conversation_id"), "feedback", ["conversation_id"])
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("question_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("packet", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_handoffs_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
    )
    op.create_index(op.f("ix_handoffs_conversation_id"), "handoffs", ["conversation_id"])
    op.create_index(op.f("ix_handoffs_created_at"), "handoffs", ["created_at"])
    op.create_table(
        "knowledge_suggestions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("handoff_id", sa.String(length=36), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("similar", sa.JSON(), nullable=False),
        sa.Column("duplicate_of", sa.String(length=300), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("vector_model", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("entry_id", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_knowledge_suggestions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_suggestions")),
    )
    op.create_index(
        op.f("ix_knowledge_suggestions_conversation_id"),
        "knowledge_suggestions",
        ["conversation_id"],
    )
    op.create_index(op.f("ix_knowledge_suggestions_status"), "knowledge_suggestions", ["status"])
    op.create_table(
        "knowledge_changes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("entry_id", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("file", sa.String(length=300), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("suggestion_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_changes")),
    )
    op.create_index(op.f("ix_knowledge_changes_entry_id"), "knowledge_changes", ["entry_id"])
    op.create_index(op.f("ix_knowledge_changes_created_at"), "knowledge_changes", ["created_at"])


def downgrade() -> None:
    op.drop_table("knowledge_changes")
    op.drop_table("knowledge_suggestions")
    op.drop_table("handoffs")
    op.drop_table("feedback")
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("handoff_reason")
        batch.drop_column("vector_model")
        batch.drop_column("vector")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("author")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index(batch.f("ix_conversations_assignee"))
        batch.drop_column("resolved_by")
        batch.drop_column("resolved_at")
        batch.drop_column("assignee")
