"""Knowledge suggestions as operators review them."""

from datetime import datetime

from pydantic import BaseModel, Field

from shared.knowledge.loader import EntryKind
from shared.learning.models import Suggestion, SuggestionStatus


class SimilarEntry(BaseModel):
    id: str
    question: str
    answer: str
    score: float = Field(
        description="Cosine of the suggestion's question to the entry's (or its closest phrasing)."
    )
    # Suggestions compared before the kind was recorded read as Q:/A: (a phrasing approved for a
    # passage is refused: 422).
    kind: EntryKind = Field(
        default=EntryKind.QA,
        description="qa (a Q:/A: entry: it takes phrasings) or passage (markdown under a heading).",
    )


class SuggestionView(BaseModel):
    id: str
    status: SuggestionStatus
    question: str
    answer: str
    conversation_id: str | None
    similar: list[SimilarEntry] | None = Field(
        description="The entries it resembles, most similar first (null: not compared yet)."
    )
    duplicate_of: str | None = Field(description="The entry it nearly repeats, if any.")
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    entry_id: str | None = Field(description="The entry approving it wrote.")

    @classmethod
    def from_suggestion(cls, suggestion: Suggestion) -> "SuggestionView":
        compared = suggestion.vector is not None
        return cls(
            id=suggestion.id,
            status=suggestion.status,
            question=suggestion.question,
            answer=suggestion.answer,
            conversation_id=suggestion.conversation_id,
            similar=[SimilarEntry(**s) for s in suggestion.similar] if compared else None,
            duplicate_of=suggestion.duplicate_of,
            created_at=suggestion.created_at,
            decided_at=suggestion.decided_at,
            decided_by=suggestion.decided_by,
            entry_id=suggestion.entry_id,
        )


class SuggestionList(BaseModel):
    suggestions: list[SuggestionView]
    count: int


class ApproveRequest(BaseModel):
    question: str | None = Field(default=None, max_length=300, description="An edited question.")
    answer: str | None = Field(default=None, max_length=4000, description="An edited answer.")
    phrasing_of: str | None = Field(
        default=None,
        max_length=400,
        description="Instead of a new entry, add the (edited) question as one more phrasing of "
        "this entry: for a question the base answers already, asked in words retrieval missed.",
    )
    agent: str | None = Field(default=None, max_length=200)


class RejectRequest(BaseModel):
    agent: str | None = Field(default=None, max_length=200)


class Approved(BaseModel):
    suggestion: SuggestionView
    version: str = Field(description="The knowledge version every process answers from now.")
