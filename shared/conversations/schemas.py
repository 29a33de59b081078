"""Request and response bodies of conversations."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from shared.conversations.models import (
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    Rating,
)
from shared.core.schemas import ErrorDetail
from shared.questions.models import Question
from shared.questions.schemas import ORIGIN_DESCRIPTION, Origin, Source, checked_text


class ConversationLinks(BaseModel):
    self: str
    messages: str
    events: str


class ConversationCreated(BaseModel):
    conversation_id: str
    token: str = Field(
        description="Present it as X-Conversation-Token on every call about this conversation. "
        "Shown once: it is stored hashed."
    )
    status: ConversationStatus
    links: ConversationLinks


class MessageRequest(BaseModel):
    text: str = Field(
        description="3 to 2000 characters once stripped.", examples=["How long does it take?"]
    )
    context_method: Literal["hybrid", "keyword", "all"] = "hybrid"

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        return checked_text(value, "text")


class MessageView(BaseModel):
    id: str
    role: Literal["customer", "assistant", "agent", "system"]
    text: str
    sources: list[Source]
    action: Literal["answer", "handoff"] | None
    origin: Origin | None = Field(description=ORIGIN_DESCRIPTION)
    author: str | None = Field(description="Who of the support team wrote an agent message.")
    rating: Rating | None = Field(description="The customer's rating of this reply.")
    created_at: datetime

    @classmethod
    def from_message(cls, message: Message, feedback: Feedback | None = None) -> "MessageView":
        return cls.model_validate(
            {
                "id": message.id,
                "role": message.role.value,
                "text": message.text,
                "sources": message.sources or [],
                "action": message.action,
                "origin": message.origin,
                "author": message.author,
                "rating": feedback.rating if feedback else None,
                "created_at": message.created_at,
            }
        )


class ConversationView(BaseModel):
    conversation_id: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    messages: list[MessageView]

    @classmethod
    def build(
        cls,
        conversation: Conversation,
        messages: list[Message],
        ratings: dict[str, Feedback] | None = None,
    ) -> "ConversationView":
        ratings = ratings or {}
        return cls(
            conversation_id=conversation.id,
            status=conversation.status,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            messages=[MessageView.from_message(m, ratings.get(m.id)) for m in messages],
        )


class FeedbackRequest(BaseModel):
    rating: Rating
    comment: str | None = Field(default=None, max_length=1000)


class FeedbackView(BaseModel):
    message_id: str
    rating: Rating
    comment: str | None
    updated_at: datetime

    @classmethod
    def from_feedback(cls, feedback: Feedback) -> "FeedbackView":
        return cls(
            message_id=feedback.message_id,
            rating=feedback.rating,
            comment=feedback.comment,
            updated_at=feedback.updated_at,
        )


class ConversationSummary(BaseModel):
    conversation_id: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime


class ConversationList(BaseModel):
    conversations: list[ConversationSummary]


class ReplyLinks(BaseModel):
    self: str
    events: str
    conversation: str


class MessageReply(BaseModel):
    """The fate of one customer message: its answer, or where to wait for it."""

    message_id: str = Field(description="The customer's message.")
    conversation_id: str
    question_id: str | None = Field(
        description="The question answering it; null when a person owns the conversation."
    )
    status: Literal["queued", "running", "completed", "failed", "with_agent"] = Field(
        description="`with_agent`: a person owns the conversation and will reply."
    )
    answer: str | None
    reply_id: str | None = Field(description="The assistant's message, once there is one.")
    action: Literal["answer", "handoff"] | None
    origin: Origin | None = Field(description=ORIGIN_DESCRIPTION)
    confidence: float | None
    sources: list[Source]
    standalone_question: str | None = Field(
        description="What was retrieved with: the message made standalone against earlier turns."
    )
    provider: str | None = Field(
        default=None,
        description="What answered: the model provider, or `cache` for an earlier answer given "
        "again from the answer cache.",
    )
    error: ErrorDetail | None = None
    links: ReplyLinks

    @classmethod
    def build(
        cls,
        *,
        message_id: str,
        conversation_id: str,
        question: Question | None,
        reply: Message | None,
        links: ReplyLinks,
    ) -> "MessageReply":
        if question is None:
            return cls(
                message_id=message_id,
                conversation_id=conversation_id,
                question_id=None,
                status="with_agent",
                answer=None,
                reply_id=None,
                action=None,
                origin=None,
                confidence=None,
                sources=[],
                standalone_question=None,
                links=links,
            )
        error = (
            ErrorDetail(code=question.error_code, message=question.error_message or "")
            if question.error_code
            else None
        )
        fields: dict[str, Any] = {
            "message_id": message_id,
            "conversation_id": conversation_id,
            "question_id": question.id,
            "status": question.status.value,
            "answer": question.answer,
            "reply_id": reply.id if reply is not None else None,
            "action": question.action,
            "origin": question.origin,
            "confidence": question.confidence,
            "sources": question.sources or [],
            "standalone_question": question.standalone_question,
            "provider": question.provider,
            "error": error,
            "links": links,
        }
        return cls.model_validate(fields)
