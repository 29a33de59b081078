"""A handoff: the moment a conversation was passed to the support team, with what a person
needs to take it over."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.core.db import Base, UTCDateTime, utcnow


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    conversation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    question_id: Mapped[str | None] = mapped_column(String(36))
    # low_confidence, customer_request, model_failed, operator (a person took it over)
    reason: Mapped[str] = mapped_column(String(32))
    # The customer's message and the standalone question, the entries retrieved with their
    # scores, the confidence, the assistant's rejected draft (see shared.inbox.schemas.Packet).
    packet: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # When a person first replied; when the handoff ended (resolved or handed back), and how.
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # resolved, handed_back
    # The webhook's delivery: pending, delivered, failed (None: no webhook configured).
    webhook_status: Mapped[str | None] = mapped_column(String(16))
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
