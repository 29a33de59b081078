"""Conversations and their messages: what a customer and the support side said, in order."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.core.db import Base, UTCDateTime, utcnow


class ConversationStatus(StrEnum):
    OPEN = "open"  # the assistant answers
    WAITING_FOR_AGENT = "waiting_for_agent"  # handed off; no person has taken it yet
    ASSIGNED = "assigned"  # a person owns it: customer messages go to them
    RESOLVED = "resolved"


class MessageRole(StrEnum):
    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    AGENT = "agent"
    SYSTEM = "system"


def _enum(kind: type[StrEnum], length: int) -> Enum:
    return Enum(
        kind,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


def _uuid() -> str:
    return str(uuid.uuid4())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_status_updated_at", "status", "updated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    # sha256 of the token the customer holds (the token itself is shown once, never stored)
    token_hash: Mapped[str] = mapped_column(String(64))
    # the company's own customer id, from a signed identity token (None: anonymous)
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[ConversationStatus] = mapped_column(
        _enum(ConversationStatus, 24), default=ConversationStatus.OPEN
    )
    handoff_reason: Mapped[str | None] = mapped_column(String(32))
    handoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The person of the support team who owns it (None: nobody yet, or the assistant).
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    conversation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[MessageRole] = mapped_column(_enum(MessageRole, 16))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The question that answered (or that a customer message started), for assistant messages:
    # its sources, action and origin.
    question_id: Mapped[str | None] = mapped_column(String(36), index=True)
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    action: Mapped[str | None] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(String(16))
    # Who of the support team wrote an agent message.
    author: Mapped[str | None] = mapped_column(String(200))


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class Feedback(Base):
    """A customer's rating of one assistant or agent message; one per message, changeable."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("message_id", name="uq_feedback_message_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    message_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("messages.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[Rating] = mapped_column(_enum(Rating, 8))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
