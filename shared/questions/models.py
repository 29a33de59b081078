"""The `questions` table: the truth about every question asked."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.core.db import Base, UTCDateTime, utcnow


class QuestionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({QuestionStatus.COMPLETED, QuestionStatus.FAILED})


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    question: Mapped[str] = mapped_column(Text)
    context_method: Mapped[str] = mapped_column(String(16), default="keyword")
    status: Mapped[QuestionStatus] = mapped_column(
        Enum(
            QuestionStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=QuestionStatus.QUEUED,
    )
    answer: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str | None] = mapped_column(String(16))
    # generated (the model's verified wording), extracted (the entry's statements), handoff,
    # courtesy (a greeting or thanks answered in kind)
    origin: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    knowledge_version: Mapped[str | None] = mapped_column(String(32))
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    rejected_draft: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Delivery bookkeeping: when the answering task was last queued (None: queuing failed) and
    # how often; the reconciler re-queues questions that a lost task left behind.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0)
    # While running: the worker process answering it ("host:pid") and until when its lease holds;
    # the worker renews it, the reconciler re-queues the question once it expired.
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The conversation the question was asked in, the customer message that asked it, and what
    # was retrieved with: the message made standalone against the turns before it.
    conversation_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(String(36))
    standalone_question: Mapped[str | None] = mapped_column(Text)
    # The vector it was retrieved with (float32, unit length) and the embedding model's name:
    # the knowledge gaps are clusters of these.
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    vector_model: Mapped[str | None] = mapped_column(String(64))
    # The answer cache's row that this answer repeats (`provider` is then "cache").
    cached_from: Mapped[int | None] = mapped_column(Integer, index=True)
    # Why a handoff answer handed off (low_confidence, customer_request).
    handoff_reason: Mapped[str | None] = mapped_column(String(32))
