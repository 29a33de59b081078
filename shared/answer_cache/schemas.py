"""What operators see of the answer cache."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.answer_cache.models import CachedAnswerRow


class CachedAnswerView(BaseModel):
    id: int
    question: str = Field(description="The standalone question it answered, normalised.")
    entry_id: str = Field(description="The entry it was answered from.")
    answer: str
    origin: str
    model: str
    sources: list[dict[str, Any]]
    knowledge_version: str
    created_at: datetime
    hits: int = Field(description="How often it was given again.")
    last_hit_at: datetime | None

    @classmethod
    def from_row(
        cls, row: CachedAnswerRow, hits: int, last_hit_at: datetime | None
    ) -> "CachedAnswerView":
        return cls(
            id=row.id,
            question=row.question,
            entry_id=row.entry_id,
            answer=row.text,
            origin=row.origin,
            model=row.model,
            sources=row.sources,
            knowledge_version=row.knowledge_version,
            created_at=row.created_at,
            hits=hits,
            last_hit_at=last_hit_at,
        )


class CachedAnswerList(BaseModel):
    answers: list[CachedAnswerView]
    total: int


class Purged(BaseModel):
    removed: int
