"""What the support team sees of a handoff, and what it sends."""

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from shared.conversations.models import ConversationStatus
from shared.questions.schemas import checked_text


class PacketSource(BaseModel):
    id: str
    question: str
    score: float


class Packet(BaseModel):
    """Everything a person needs to take a conversation over without reading the whole log."""

    question_id: str | None
    customer_message: str = Field(description="What the customer said last, as they said it.")
    standalone_question: str | None = Field(
        description="The message made standalone against the earlier turns (what was searched)."
    )
    sources: list[PacketSource] = Field(description="The entries retrieved, with their scores.")
    confidence: float | None = Field(description="That the knowledge base answers it (0-1).")
    reason: str = Field(
        description="low_confidence, customer_request, model_failed, or operator (a person took "
        "the conversation over)."
    )
    draft: str | None = Field(description="The assistant's draft that its checks rejected, if any.")
    fallback_reason: str | None = Field(
        description="Why the model's wording was not sent, as a code: the draft's check that "
        "failed, or `second_reading` (the statements of two near-equal entries, no draft)."
    )
    error: str | None = Field(description="The model's failure, for model_failed.")


class HandoffView(BaseModel):
    id: str
    reason: str
    created_at: datetime
    answered_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    webhook_status: str | None = Field(
        description="The handoff webhook: pending, delivered, failed (null: no webhook)."
    )
    webhook_attempts: int
    packet: Packet


class InboxItem(BaseModel):
    conversation_id: str
    status: ConversationStatus
    assignee: str | None
    waiting_seconds: float = Field(
        description="Since the handoff; while nobody has replied, the customer is waiting."
    )
    last_customer_message: str | None
    handoff: HandoffView | None


class Inbox(BaseModel):
    conversations: list[InboxItem]
    count: int


class AssignRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=200, examples=["dana"])


class ReplyRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=200, examples=["dana"])
    text: str = Field(description="1 to 4000 characters.", examples=["I've refunded it now."])

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        return checked_text(value, "text", min_length=1, max_length=4000)


class AgentRequest(BaseModel):
    agent: str | None = Field(default=None, max_length=200)
