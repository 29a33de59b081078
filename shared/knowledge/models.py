"""The record of every change made to the knowledge files through the service."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.core.db import Base, UTCDateTime, utcnow


class KnowledgeChange(Base):
    __tablename__ = "knowledge_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    entry_id: Mapped[str] = mapped_column(String(300), index=True)
    action: Mapped[str] = mapped_column(String(16))  # added, edited, removed
    file: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(200))  # who: the operator's name, or a key's id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {question, answer}
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    suggestion_id: Mapped[str | None] = mapped_column(String(36))  # when approving one made it
