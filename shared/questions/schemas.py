"""Request and response bodies of asking and following questions."""

import unicodedata
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field, field_validator

from shared.core.schemas import ErrorDetail, ErrorResponse
from shared.questions.models import Question, QuestionStatus

MIN_QUESTION_LENGTH = 3
MAX_QUESTION_LENGTH = 2000
_ALLOWED_CONTROL_CHARACTERS = {"\n", "\r", "\t"}


class AskRequest(BaseModel):
    question: str = Field(
        description="The customer's question, 3 to 2000 characters once stripped.",
        examples=["What is your refund policy?"],
    )
    context_method: Literal["hybrid", "keyword", "all"] = Field(
        default="hybrid",
        description=(
            "`hybrid` (default): BM25 and dense retrieval fused, the best entry's statements that "
            "answer the question; `keyword`: BM25 only; `all`: all of the best entry's statements."
        ),
    )

    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str) -> str:
        return checked_text(value, "question")


def checked_text(
    value: str,
    name: str,
    *,
    min_length: int = MIN_QUESTION_LENGTH,
    max_length: int = MAX_QUESTION_LENGTH,
) -> str:
    """A person's text, stripped: 3 to 2000 characters (unless said), a letter or digit, no
    control characters."""
    value = value.strip()
    if not min_length <= len(value) <= max_length:
        raise ValueError(f"{name} must be {min_length} to {max_length} characters long")
    if not any(char.isalnum() for char in value):
        raise ValueError(f"{name} must contain at least one letter or digit")
    if any(
        unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROL_CHARACTERS
        for char in value
    ):
        raise ValueError(f"{name} must not contain control characters")
    return value


Origin = Literal["generated", "extracted", "handoff", "courtesy"]
ORIGIN_DESCRIPTION = (
    "`generated`: the model's wording, every claim verified against the entry; `extracted`: the "
    "entry's own statements that answer the question; `handoff`: a person will answer; "
    "`courtesy`: a greeting or thanks answered in kind, nothing looked up."
)
_ORIGINS: dict[str, Origin] = {origin: origin for origin in get_args(Origin)}


def _origin(value: str | None) -> Origin | None:
    return _ORIGINS.get(value) if value is not None else None


class Source(BaseModel):
    id: str
    question: str
    score: float


class Links(BaseModel):
    self: str
    events: str | None = None


class AnswerErrorResponse(ErrorResponse):
    question_id: str | None = None


class AnswerResponse(BaseModel):
    question_id: str
    status: QuestionStatus
    answer: str
    action: Literal["answer", "handoff"] | None = Field(
        description="`handoff`: the knowledge base does not cover this; a person should follow up."
    )
    confidence: float | None = Field(
        description="0-1, calibrated from retrieval (1 for a courtesy reply: nothing to look up)."
    )
    origin: Origin | None = Field(description=ORIGIN_DESCRIPTION)
    sources: list[Source]
    timestamp: datetime
    processing_time: int | None = Field(description="Milliseconds the worker spent answering.")
    provider: str | None
    model: str | None
    knowledge_version: str | None
    conversation_id: str | None = Field(
        default=None, description="The conversation this question opened: follow up in it."
    )
    conversation_token: str | None = Field(
        default=None,
        description="The conversation's token (X-Conversation-Token), shown once: on the reply "
        "that created it.",
    )

    @classmethod
    def from_question(
        cls, question: Question, *, conversation_token: str | None = None
    ) -> "AnswerResponse":
        return cls(
            conversation_id=question.conversation_id,
            conversation_token=conversation_token,
            question_id=question.id,
            status=question.status,
            answer=question.answer or "",
            action=_action(question.action),
            confidence=question.confidence,
            origin=_origin(question.origin),
            sources=[Source(**source) for source in question.sources or []],
            timestamp=question.completed_at or question.created_at,
            processing_time=question.processing_time_ms,
            provider=question.provider,
            model=question.model,
            knowledge_version=question.knowledge_version,
        )


def _action(value: str | None) -> Literal["answer", "handoff"] | None:
    if value == "handoff":
        return "handoff"
    return "answer" if value == "answer" else None


class AcceptedResponse(BaseModel):
    question_id: str
    status: QuestionStatus
    links: Links
    conversation_id: str | None = None
    conversation_token: str | None = None


class QuestionRecord(BaseModel):
    question_id: str
    question: str
    status: QuestionStatus
    answer: str | None
    action: Literal["answer", "handoff"] | None
    confidence: float | None
    sources: list[Source]
    origin: Origin | None = Field(description=ORIGIN_DESCRIPTION)
    fallback_reason: str | None = Field(
        description="Why the model's wording was not sent, as a code (`misbound_figure`, "
        "`unverified_verdict`, `question_condition`, …, or `second_reading`: the statements of "
        "two near-equal entries); the draft itself stays internal."
    )
    handoff_reason: str | None = Field(
        default=None,
        description="Why a handoff answer handed off: `low_confidence` or `customer_request`.",
    )
    knowledge_version: str | None
    error: ErrorDetail | None
    provider: str | None
    model: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    processing_time: int | None
    links: Links

    @classmethod
    def from_question(cls, question: Question, *, url: str) -> "QuestionRecord":
        error = None
        if question.error_code:
            error = ErrorDetail(code=question.error_code, message=question.error_message or "")
        return cls(
            question_id=question.id,
            question=question.question,
            status=question.status,
            answer=question.answer,
            action=_action(question.action),
            confidence=question.confidence,
            sources=[Source(**source) for source in question.sources or []],
            origin=_origin(question.origin),
            fallback_reason=question.fallback_reason,
            handoff_reason=question.handoff_reason,
            knowledge_version=question.knowledge_version,
            error=error,
            provider=question.provider,
            model=question.model,
            attempts=question.attempts,
            created_at=question.created_at,
            started_at=question.started_at,
            completed_at=question.completed_at,
            processing_time=question.processing_time_ms,
            links=Links(self=url, events=f"{url}/events"),
        )


class HistoryEntry(BaseModel):
    id: str
    question: str
    answer: str
    action: Literal["answer", "handoff"] | None
    confidence: float | None
    sources: list[Source]
    timestamp: datetime = Field(description="When the question was asked (the list's order).")
    processing_time: int | None


class HistoryResponse(BaseModel):
    entries: list[HistoryEntry]
    count: int
    total: int

    @classmethod
    def from_questions(cls, questions: list[Question], *, total: int) -> "HistoryResponse":
        entries = [
            HistoryEntry(
                id=q.id,
                question=q.question,
                answer=q.answer or "",
                action=_action(q.action),
                confidence=q.confidence,
                sources=[Source(**source) for source in q.sources or []],
                timestamp=q.created_at,
                processing_time=q.processing_time_ms,
            )
            for q in questions
        ]
        return cls(entries=entries, count=len(entries), total=total)
