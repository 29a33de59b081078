"""The answer cache's tables: answers that equivalent later questions receive as they are."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.core.db import Base, UTCDateTime, utcnow


class CachedAnswerRow(Base):
    """A first turn's answer, with what it depends on (`shared.answering.reuse.CacheKey`)."""

    __tablename__ = "answer_cache"
    # Ids are never reused (SQLite would reuse the largest after a delete): a worker's index
    # knows rows by id. Messages are looked up by their words as they arrive: a hash index on
    # PostgreSQL, where a question of 2,000 characters may exceed a B-tree entry.
    __table_args__ = (
        Index("ix_answer_cache_question", "question", postgresql_using="hash"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The question it answered; erasing that question (with its conversation) erases this too.
    question_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)  # normalised standalone question
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    vector_model: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[str] = mapped_column(String(300), index=True)
    statements: Mapped[str] = mapped_column(String(64))
    anchors: Mapped[str] = mapped_column(Text)
    context_method: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    knowledge_version: Mapped[str] = mapped_column(String(32))
    # The code that answered (`shared.answering.reuse.ENGINE_REVISION`); rows from before there
    # was one have "" and are never given again for the same words.
    engine_revision: Mapped[str] = mapped_column(String(16), server_default="")
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    entries: Mapped[list["CachedAnswerEntry"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class CachedAnswerEntry(Base):
    """An entry a cached answer cites, and its content's digest when the answer was made: an
    edit of the entry removes the answer (`forget_entries`), and a lookup that finds the
    entry changed does too."""

    __tablename__ = "answer_cache_entries"

    cache_id: Mapped[int] = mapped_column(
        ForeignKey("answer_cache.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)
    digest: Mapped[str] = mapped_column(String(64))
