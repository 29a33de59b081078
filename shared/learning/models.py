"""Knowledge suggestions: a resolved handoff's question and the person's answer, waiting for an
operator to approve (into the knowledge files) or reject."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.core.db import Base, UTCDateTime, utcnow


class SuggestionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Suggestion(Base):
    __tablename__ = "knowledge_suggestions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # The conversation it came from; erasing the conversation erases its suggestions (what an
    # approved one taught is in the knowledge files and their change log by then).
    conversation_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    handoff_id: Mapped[str | None] = mapped_column(String(36))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    status: Mapped[SuggestionStatus] = mapped_column(
        Enum(
            SuggestionStatus,
            native_enum=False,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=SuggestionStatus.PENDING,
        index=True,
    )
    # The entries it resembles, most similar first: [{id, question, answer, score, kind}].
    similar: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The entry it nearly repeats (cosine above LEARNING_DUPLICATE_COSINE), if any.
    duplicate_of: Mapped[str | None] = mapped_column(String(300))
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    vector_model: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    entry_id: Mapped[str | None] = mapped_column(String(300))  # the entry approving it wrote
