from datetime import datetime

from pydantic import BaseModel, Field


class Rates(BaseModel):
    """Shares in [0, 1]; None when the denominator is zero."""

    involvement: float | None = Field(
        description="Conversations the assistant answered in, of the conversations with a "
        "customer message."
    )
    resolution: float | None = Field(
        description="Conversations the assistant resolved (confirmed + assumed), of those it "
        "answered in."
    )
    confirmed_resolution: float | None
    assumed_resolution: float | None
    handoff: float | None = Field(
        description="Conversations the assistant handed to a person, of those it answered in."
    )
    cached: float | None = Field(
        description="Questions the assistant answered from the answer cache, of the questions it "
        "answered."
    )
    thumbs_up: float | None = Field(description="Up ratings, of all ratings.")
    thumbs_down: float | None


class Counts(BaseModel):
    conversations: int
    customer_messages: int
    assistant_answers: int = Field(description="The assistant's answers (not its handoff notices).")
    cached_answers: int = Field(description="Answers given again from the answer cache.")
    handoffs: int
    handoffs_by_reason: dict[str, int]
    agent_replies: int
    thumbs_up: int
    thumbs_down: int
    involved_conversations: int
    resolved_confirmed: int
    resolved_assumed: int
    resolution_pending: int = Field(
        description="Answered, not handed off or rated down, but quiet for less than "
        "RESOLUTION_QUIET_MINUTES yet."
    )


class Timings(BaseModel):
    median_first_answer_seconds: float | None = Field(
        description="From a conversation's first customer message to its first reply."
    )
    median_handoff_wait_seconds: float | None = Field(
        description="From a handoff to the support team's first reply."
    )
    handoffs_waiting: int = Field(description="Handoffs of the period no person replied to yet.")


class GapExample(BaseModel):
    question: str
    conversation_id: str | None
    why: str  # handed_off, low_confidence, rated_down
    created_at: datetime


class GapCluster(BaseModel):
    count: int
    examples: list[GapExample]
    covered_by: list[str] = Field(
        description="Knowledge suggestions (ids) that answer questions of this cluster."
    )


class Report(BaseModel):
    since: datetime
    until: datetime
    counts: Counts
    rates: Rates
    timings: Timings
    gaps: list[GapCluster] = Field(description="Knowledge gaps, the largest first.")
    unclustered_gaps: int = Field(
        description="Gap questions without a stored vector (keyword-only retrieval)."
    )
