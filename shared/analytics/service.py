"""Analytics over a period: what the assistant resolved, what went to people, how long things
took, and where the knowledge base has gaps. Definitions (after Intercom's for Fin):

- A conversation is *involved* when the assistant replied in it (an answer, or the notice of a
  handoff).
- The assistant *resolved* an involved conversation when no person took part (no handoff of any
  kind, no reply of the support team) and no reply of the assistant was rated down, and either the
  customer rated an answer of the assistant up (*confirmed*) or the conversation went quiet after
  the assistant's last reply for RESOLUTION_QUIET_MINUTES (*assumed*: the customer left without
  asking for more). Involved conversations that are neither resolved nor out of the count yet are
  *pending*.
- The *handoff rate* counts involved conversations the assistant handed to a person (low
  confidence, the customer asked, the model failed); an operator taking a conversation over on
  their own is not a handoff of the assistant's (but the conversation is then not the assistant's
  resolution either).

Period membership: conversations and their outcomes (handoffs and ratings whenever they came) by
the conversation's creation time; the counts of messages, handoffs and ratings by their own time."""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.analytics.schemas import (
    Counts,
    GapCluster,
    GapExample,
    Rates,
    Report,
    Timings,
)
from shared.answering.engine import AnswerAction, AnswerOrigin
from shared.answering.handoff import HandoffReason
from shared.answering.reuse import CACHE_PROVIDER
from shared.conversations.models import Conversation, Feedback, Message, MessageRole, Rating
from shared.core.db import utcnow
from shared.inbox.models import Handoff
from shared.inbox.service import OPERATOR_REASON
from shared.learning.models import Suggestion, SuggestionStatus
from shared.questions.models import Question

GAP_EXAMPLES = 5
REPLY_ROLES = (MessageRole.ASSISTANT, MessageRole.AGENT)
MAX_GAP_QUESTIONS = 1000  # the most recent gap questions clustered in one report
COURTESY = AnswerOrigin.COURTESY.value  # a greeting or thanks answered in kind


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


@dataclass
class _Thread:
    """One conversation's messages and outcome, as the report needs them."""

    messages: list[Message] = field(default_factory=list)
    handed_off: bool = False  # by the assistant, at any time
    with_a_person: bool = False  # handed off, taken over by an operator, or a person replied
    ups: int = 0  # ratings of the assistant's replies
    downs: int = 0


def report(
    *,
    session: Session,
    since: datetime,
    until: datetime,
    quiet_minutes: float,
    gap_confidence_below: float,
    gap_cluster_cosine: float,
    now: datetime | None = None,
) -> Report:
    now = now or utcnow()
    in_period = select(Conversation.id).where(
        Conversation.created_at >= since, Conversation.created_at < until
    )
    conversation_ids = list(session.scalars(in_period))
    threads: dict[str, _Thread] = defaultdict(_Thread)
    roles_by_id: dict[str, MessageRole] = {}
    messages = select(Message).where(Message.conversation_id.in_(in_period))
    in_conversations = list(session.scalars(messages.order_by(Message.created_at)))
    # A greeting or thanks answered in kind, and the reply, are neither a question nor an answer.
    courteous = {m.question_id for m in in_conversations if m.origin == COURTESY and m.question_id}
    for message in in_conversations:
        if message.question_id in courteous:
            continue
        threads[message.conversation_id].messages.append(message)
        roles_by_id[message.id] = message.role
        if message.role is MessageRole.AGENT:
            threads[message.conversation_id].with_a_person = True
    # Outcomes of the period's conversations: their handoffs and ratings whenever they came.
    for handoff in session.scalars(select(Handoff).where(Handoff.conversation_id.in_(in_period))):
        thread = threads[handoff.conversation_id]
        thread.with_a_person = True
        thread.handed_off = thread.handed_off or handoff.reason != OPERATOR_REASON
    for rating in session.scalars(select(Feedback).where(Feedback.conversation_id.in_(in_period))):
        if roles_by_id.get(rating.message_id) is not MessageRole.ASSISTANT:
            continue  # a person's reply rated: not the assistant's outcome
        thread = threads[rating.conversation_id]
        if rating.rating is Rating.UP:
            thread.ups += 1
        else:
            thread.downs += 1
    # Counts of the period's events.
    handoffs = list(
        session.scalars(
            select(Handoff).where(Handoff.created_at >= since, Handoff.created_at < until)
        )
    )
    by_assistant = [h for h in handoffs if h.reason != OPERATOR_REASON]
    ratings = list(
        session.scalars(
            select(Feedback)
            .join(Message, Message.id == Feedback.message_id)
            .where(
                Feedback.updated_at >= since,
                Feedback.updated_at < until,
                or_(Message.origin.is_(None), Message.origin != COURTESY),  # a thumb on "Hello!"
            )
        )
    )

    period_messages = list(
        session.scalars(
            select(Message).where(Message.created_at >= since, Message.created_at < until)
        )
    )
    roles = Counter(message.role for message in period_messages)
    quiet = timedelta(minutes=quiet_minutes)
    involved = confirmed = assumed = pending = handed_off = 0
    first_answers: list[float] = []
    with_customer = 0
    for conversation_id in conversation_ids:
        thread = threads.get(conversation_id) or _Thread()
        customer = [m for m in thread.messages if m.role is MessageRole.CUSTOMER]
        replies = [
            m for m in thread.messages if m.role in (MessageRole.ASSISTANT, MessageRole.AGENT)
        ]
        if customer:
            with_customer += 1
            after = [m for m in replies if m.created_at >= customer[0].created_at]
            if after:
                first_answers.append((after[0].created_at - customer[0].created_at).total_seconds())
        answers = [m for m in thread.messages if m.role is MessageRole.ASSISTANT]
        if not answers:
            continue
        involved += 1
        if thread.handed_off:
            handed_off += 1
        if thread.with_a_person or thread.downs:
            continue
        if thread.ups:
            confirmed += 1
        elif thread.messages[-1].role is not MessageRole.CUSTOMER and (
            now - answers[-1].created_at >= quiet
        ):
            assumed += 1
        else:
            pending += 1
    waits = [(h.answered_at - h.created_at).total_seconds() for h in handoffs if h.answered_at]
    answered = select(func.count()).where(
        Question.completed_at >= since,
        Question.completed_at < until,
        Question.action == AnswerAction.ANSWER.value,
        or_(Question.origin.is_(None), Question.origin != COURTESY),
    )
    answered_count = session.scalar(answered) or 0
    cached = session.scalar(answered.where(Question.provider == CACHE_PROVIDER)) or 0
    ups = sum(1 for r in ratings if r.rating is Rating.UP)
    downs = len(ratings) - ups
    gaps, unclustered = knowledge_gaps(
        session=session,
        since=since,
        until=until,
        confidence_below=gap_confidence_below,
        cluster_cosine=gap_cluster_cosine,
    )
    return Report(
        since=since,
        until=until,
        counts=Counts(
            conversations=len(conversation_ids),
            customer_messages=roles[MessageRole.CUSTOMER],
            assistant_answers=sum(
                1
                for m in period_messages
                if m.role is MessageRole.ASSISTANT
                and m.action == AnswerAction.ANSWER.value
                and m.origin != COURTESY
            ),
            cached_answers=cached,
            handoffs=len(by_assistant),
            handoffs_by_reason=dict(Counter(h.reason for h in handoffs)),
            agent_replies=roles[MessageRole.AGENT],
            thumbs_up=ups,
            thumbs_down=downs,
            involved_conversations=involved,
            resolved_confirmed=confirmed,
            resolved_assumed=assumed,
            resolution_pending=pending,
        ),
        rates=Rates(
            involvement=_share(involved, with_customer),
            resolution=_share(confirmed + assumed, involved),
            confirmed_resolution=_share(confirmed, involved),
            assumed_resolution=_share(assumed, involved),
            handoff=_share(handed_off, involved),
            cached=_share(cached, answered_count),
            thumbs_up=_share(ups, len(ratings)),
            thumbs_down=_share(downs, len(ratings)),
        ),
        timings=Timings(
            median_first_answer_seconds=_median(first_answers),
            median_handoff_wait_seconds=_median(waits),
            handoffs_waiting=sum(1 for h in handoffs if h.answered_at is None),
        ),
        gaps=gaps,
        unclustered_gaps=unclustered,
    )


@dataclass
class _Gap:
    question: Question
    why: str


def knowledge_gaps(
    *,
    session: Session,
    since: datetime,
    until: datetime,
    confidence_below: float,
    cluster_cosine: float,
) -> tuple[list[GapCluster], int]:
    """Questions of the period the knowledge base did not serve — handed off for low confidence,
    answered with confidence below `confidence_below`, or whose answer was rated down — grouped
    by meaning; and how many had no vector to group by."""
    in_period = (Question.created_at >= since) & (Question.created_at < until)
    gaps: dict[str, _Gap] = {}
    low = select(Question).where(
        in_period,
        (Question.handoff_reason == HandoffReason.LOW_CONFIDENCE.value)
        | ((Question.action == "answer") & (Question.confidence < confidence_below)),
    )
    for question in session.scalars(
        low.order_by(Question.created_at.desc()).limit(MAX_GAP_QUESTIONS)
    ):
        why = "handed_off" if question.action == "handoff" else "low_confidence"
        gaps[question.id] = _Gap(question, why)
    rated_down = (
        select(Question)
        .join(Message, Message.question_id == Question.id)
        .join(Feedback, Feedback.message_id == Message.id)
        .where(in_period, Feedback.rating == Rating.DOWN, Message.role == MessageRole.ASSISTANT)
    )
    for question in session.scalars(rated_down.limit(MAX_GAP_QUESTIONS)):
        gaps.setdefault(question.id, _Gap(question, "rated_down"))
    with_vectors = [g for g in gaps.values() if g.question.vector is not None]
    by_model: dict[str, list[_Gap]] = defaultdict(list)
    for gap in with_vectors:
        by_model[gap.question.vector_model or ""].append(gap)
    suggestions = list(
        session.scalars(select(Suggestion).where(Suggestion.status != SuggestionStatus.REJECTED))
    )
    clusters: list[GapCluster] = []
    for model, members in by_model.items():
        vectors = np.stack(
            [np.frombuffer(g.question.vector or b"", dtype=np.float32) for g in members]
        )
        for rows in cluster_vectors(vectors, threshold=cluster_cosine):
            group = sorted((members[i] for i in rows), key=lambda g: g.question.created_at)
            centroid = _unit(vectors[rows].mean(axis=0))
            clusters.append(
                GapCluster(
                    count=len(group),
                    examples=[
                        GapExample(
                            question=g.question.standalone_question or g.question.question,
                            conversation_id=g.question.conversation_id,
                            why=g.why,
                            created_at=g.question.created_at,
                        )
                        for g in group[-GAP_EXAMPLES:][::-1]
                    ],
                    covered_by=_covering(
                        suggestions,
                        conversations={g.question.conversation_id for g in group},
                        centroid=centroid,
                        model=model,
                        threshold=cluster_cosine,
                    ),
                )
            )
    clusters.sort(key=lambda c: (-c.count, -c.examples[0].created_at.timestamp()))
    return clusters, len(gaps) - len(with_vectors)


def _vector(raw: bytes | None) -> npt.NDArray[np.float32]:
    return np.frombuffer(raw or b"", dtype=np.float32)


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _covering(
    suggestions: list[Suggestion],
    *,
    conversations: set[str | None],
    centroid: npt.NDArray[np.float32],
    model: str,
    threshold: float,
) -> list[str]:
    """Suggestions drafted from one of the cluster's conversations, or asking what it asks."""
    covering = []
    for suggestion in suggestions:
        if suggestion.conversation_id in conversations:
            covering.append(suggestion.id)
        elif suggestion.vector is not None and suggestion.vector_model == model:
            vector = np.frombuffer(suggestion.vector, dtype=np.float32)
            if float(vector @ centroid) >= threshold:
                covering.append(suggestion.id)
    return covering


def cluster_vectors(vectors: npt.NDArray[np.float32], *, threshold: float) -> list[list[int]]:
    """Group unit vectors by meaning: average-linkage agglomerative clustering over cosine,
    merging the two closest groups while their mean pairwise cosine is at least `threshold`.
    Rows of `vectors` in, lists of row numbers out, the largest group first. Each merge updates
    one row of the group-to-group means (O(n) work besides finding the best pair)."""
    count = len(vectors)
    if count == 0:
        return []
    # sums[a, b]: the sum of pairwise cosines between groups a and b; mean = sums / sizes.
    sums = (vectors @ vectors.T).astype(np.float64)
    mean = sums.copy()
    np.fill_diagonal(mean, -np.inf)
    sizes = np.ones(count)
    alive = np.ones(count, dtype=bool)
    groups: dict[int, list[int]] = {i: [i] for i in range(count)}
    while len(groups) > 1:
        row, column = np.unravel_index(int(np.argmax(mean)), mean.shape)
        if mean[row, column] < threshold:
            break
        a, b = int(min(row, column)), int(max(row, column))
        groups[a] += groups.pop(b)
        sums[a, :] += sums[b, :]
        sums[:, a] = sums[a, :]
        sizes[a] += sizes[b]
        alive[b] = False
        mean[a, :] = np.where(alive, sums[a, :] / (sizes[a] * sizes), -np.inf)
        mean[a, a] = -np.inf
        mean[:, a] = mean[a, :]
        mean[b, :] = -np.inf
        mean[:, b] = -np.inf
    return sorted(groups.values(), key=lambda rows: (-len(rows), rows[0]))


EXPORT_FIELDS = (
    "conversation_id",
    "conversation_status",
    "conversation_created_at",
    "message_id",
    "role",
    "author",
    "text",
    "created_at",
    "action",
    "origin",
    "sources",
    "rating",
    "rating_comment",
)


def export_conversations(*, session: Session, since: datetime, until: datetime) -> list[str]:
    """The ids of the conversations started in the period, in order."""
    query = (
        select(Conversation.id)
        .where(Conversation.created_at >= since, Conversation.created_at < until)
        .order_by(Conversation.created_at, Conversation.id)
    )
    return list(session.scalars(query))


def export_rows(*, session: Session, conversation_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Every message of these conversations, a row each, in order."""
    rows = session.execute(
        select(Message, Conversation, Feedback)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Feedback, Feedback.message_id == Message.id)
        .where(Message.conversation_id.in_(conversation_ids))
        .order_by(Conversation.created_at, Conversation.id, Message.created_at)
    )
    for message, conversation, feedback in rows:
        yield {
            "conversation_id": conversation.id,
            "conversation_status": conversation.status.value,
            "conversation_created_at": conversation.created_at.isoformat(),
            "message_id": message.id,
            "role": message.role.value,
            "author": message.author,
            "text": message.text,
            "created_at": message.created_at.isoformat(),
            "action": message.action,
            "origin": message.origin,
            "sources": [source.get("id") for source in message.sources or []],
            "rating": feedback.rating.value if feedback else None,
            "rating_comment": feedback.comment if feedback else None,
        }
