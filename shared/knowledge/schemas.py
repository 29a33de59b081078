"""What the API says about the knowledge base, and what operators send to change it."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.knowledge.loader import Entry
from shared.knowledge.models import KnowledgeChange


class KnowledgeInfo(BaseModel):
    version: str
    entries: int
    path: str


class EntryView(BaseModel):
    id: str
    question: str
    answer: str
    source: str = Field(description="The file it is written in, under KNOWLEDGE_PATH.")
    kind: str = Field(description="qa (a Q:/A: entry) or passage (markdown under a heading).")
    phrasings: list[str] = Field(
        default_factory=list,
        description="Other ways customers ask the question (the entry's further `Q:` lines).",
    )

    @classmethod
    def from_entry(cls, entry: Entry) -> "EntryView":
        return cls(
            id=entry.id,
            question=entry.question,
            answer=entry.answer,
            source=entry.source,
            kind=entry.kind.value,
            phrasings=list(entry.phrasings),
        )


class EntryList(BaseModel):
    version: str
    entries: list[EntryView]
    count: int


class EntryRequest(BaseModel):
    question: str = Field(max_length=300, examples=["Do you sell gift cards?"])
    answer: str = Field(max_length=4000, examples=["Yes: from $10 to $200, in the shop."])
    phrasings: list[str] | None = Field(
        default=None,
        max_length=20,
        examples=[["Can I buy a gift voucher?"]],
        description="Other ways customers ask the question; left out, an edit keeps the "
        "entry's own.",
    )
    agent: str | None = Field(default=None, max_length=200, description="Who makes the change.")


class NewEntryRequest(EntryRequest):
    file: str | None = Field(
        default=None,
        max_length=300,
        description="A .md file under KNOWLEDGE_PATH (default learned.md), created if need be.",
    )


class ChangeView(BaseModel):
    id: str
    entry_id: str
    action: str
    file: str
    actor: str
    created_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    suggestion_id: str | None

    @classmethod
    def from_change(cls, change: KnowledgeChange) -> "ChangeView":
        return cls(
            id=change.id,
            entry_id=change.entry_id,
            action=change.action,
            file=change.file,
            actor=change.actor,
            created_at=change.created_at,
            before=change.before,
            after=change.after,
            suggestion_id=change.suggestion_id,
        )


class ChangeList(BaseModel):
    changes: list[ChangeView]


class KnowledgeUpdate(BaseModel):
    """A change made, and the knowledge version every process answers from now."""

    version: str
    change: ChangeView
