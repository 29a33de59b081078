"""The analytics' written definitions, each on a conversation made to fit it (SQLite and
PostgreSQL): confirmed and assumed resolution, a thumbs-down, a handoff, one still going."""

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from shared.analytics.service import report
from shared.conversations.models import (
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageRole,
    Rating,
)
from shared.core.db import session_scope, utcnow
from shared.inbox.models import Handoff
from shared.questions.models import Question, QuestionStatus

NOW = utcnow().replace(microsecond=0)
QUIET = 60  # minutes


class Builder:
    def __init__(self, session: Session) -> None:
        self.session = session

    def conversation(self, started: datetime) -> Conversation:
        conversation = Conversation(
            token_hash="x" * 64,
            status=ConversationStatus.OPEN,
            created_at=started,
            updated_at=started,
        )
        self.session.add(conversation)
        self.session.flush()
        return conversation

    def turn(
        self,
        conversation: Conversation,
        at: datetime,
        text: str,
        *,
        action: str = "answer",
        confidence: float = 0.95,
        vector: list[float] | None = None,
        reason: str | None = None,
        origin: str | None = None,
    ) -> Message:
        question = Question(
            question=text,
            status=QuestionStatus.COMPLETED,
            created_at=at,
            completed_at=at + timedelta(seconds=2),
            conversation_id=conversation.id,
            action=action,
            confidence=confidence,
            handoff_reason=reason,
            origin=origin,
            vector=None if vector is None else np.asarray(vector, np.float32).tobytes(),
            vector_model=None if vector is None else "test-model",
        )
        self.session.add(question)
        self.session.flush()
        self.message(conversation, MessageRole.CUSTOMER, at, text, question_id=question.id)
        return self.message(
            conversation, MessageRole.ASSISTANT, at + timedelta(seconds=2), "…",
            question_id=question.id, action=action, origin=origin,
        )  # fmt: skip

    def message(
        self,
        conversation: Conversation,
        role: MessageRole,
        at: datetime,
        text: str,
        **fields: object,
    ) -> Message:
        message = Message(
            conversation_id=conversation.id, role=role, text=text, created_at=at, **fields
        )
        self.session.add(message)
        self.session.flush()
        return message

    def rate(self, message: Message, rating: Rating, at: datetime) -> None:
        self.session.add(
            Feedback(
                message_id=message.id,
                conversation_id=message.conversation_id,
                rating=rating,
                created_at=at,
                updated_at=at,
            )
        )
        self.session.flush()


def test_each_definition_on_a_conversation_that_fits_it(sessions: sessionmaker[Session]) -> None:
    long_ago = NOW - timedelta(hours=3)
    recently = NOW - timedelta(minutes=5)
    insurance = [1.0, 0.0, 0.0]
    with session_scope(sessions) as session:
        build = Builder(session)
        # Assumed: answered, then quiet for longer than RESOLUTION_QUIET_MINUTES.
        assumed = build.conversation(long_ago)
        build.turn(assumed, long_ago, "How long does shipping take?")
        # Confirmed: the customer rated the answer up.
        confirmed = build.conversation(long_ago)
        build.rate(build.turn(confirmed, long_ago, "Can I cancel?"), Rating.UP, long_ago)
        # Rated down: not resolved, and a gap.
        down = build.conversation(long_ago)
        build.rate(
            build.turn(down, long_ago, "Do you insure cars?", vector=[0.9, 0.1, 0.0]),
            Rating.DOWN,
            long_ago,
        )
        # Handed off (low confidence), and a person answered 10 minutes later: a gap too.
        handed = build.conversation(long_ago)
        build.turn(
            handed, long_ago, "Do you sell car insurance?", action="handoff", confidence=0.2,
            vector=insurance, reason="low_confidence",
        )  # fmt: skip
        session.add(
            Handoff(
                conversation_id=handed.id,
                reason="low_confidence",
                packet={},
                created_at=long_ago + timedelta(seconds=2),
                answered_at=long_ago + timedelta(minutes=10, seconds=2),
            )
        )
        build.message(handed, MessageRole.AGENT, long_ago + timedelta(minutes=10), "No.")
        # Pending: answered five minutes ago.
        pending = build.conversation(recently)
        build.turn(pending, recently, "Where is my parcel?", confidence=0.5, vector=[0, 0, 1.0])
        # Never answered by the assistant (only a customer message): not involved.
        silent = build.conversation(recently)
        build.message(silent, MessageRole.CUSTOMER, recently, "Hello?")
        # Outside the period: not counted at all.
        old = build.conversation(NOW - timedelta(days=40))
        build.turn(old, NOW - timedelta(days=40), "Do you sell car insurance?", vector=insurance)

    with session_scope(sessions) as session:
        result = report(
            session=session,
            since=NOW - timedelta(days=1),
            until=NOW + timedelta(seconds=1),
            quiet_minutes=QUIET,
            gap_confidence_below=0.7,
            gap_cluster_cosine=0.8,
            now=NOW,
        )
    counts = result.counts
    assert counts.conversations == 6
    assert counts.customer_messages == 6
    assert counts.assistant_answers == 4  # the handoff's notice is not an answer
    assert (counts.handoffs, counts.handoffs_by_reason) == (1, {"low_confidence": 1})
    assert counts.agent_replies == 1
    assert (counts.thumbs_up, counts.thumbs_down) == (1, 1)
    assert counts.involved_conversations == 5
    assert (counts.resolved_confirmed, counts.resolved_assumed) == (1, 1)
    assert counts.resolution_pending == 1
    rates = result.rates
    assert rates.involvement == round(5 / 6, 4)
    assert rates.resolution == 0.4 and rates.handoff == 0.2
    assert rates.thumbs_up == 0.5
    assert result.timings.median_first_answer_seconds == 2.0
    assert result.timings.median_handoff_wait_seconds == 600.0
    # Gaps: the two insurance questions together (handed off, rated down), the low-confidence
    # parcel question alone; the 40-day-old one is outside the period.
    assert [(gap.count, sorted(e.why for e in gap.examples)) for gap in result.gaps] == [
        (2, ["handed_off", "rated_down"]),
        (1, ["low_confidence"]),
    ]
    assert result.unclustered_gaps == 0


def test_a_greeting_or_thanks_answered_in_kind_is_neither_question_nor_answer(
    sessions: sessionmaker[Session],
) -> None:
    long_ago = NOW - timedelta(hours=3)
    with session_scope(sessions) as session:
        build = Builder(session)
        # Only "hi": the assistant answered nothing the customer asked.
        greeted = build.conversation(long_ago)
        hello = build.turn(greeted, long_ago, "hi", confidence=1.0, origin="courtesy")
        build.rate(hello, Rating.UP, long_ago)  # a thumb on "Hello!" resolves nothing
        # Answered, then thanked: resolved once quiet, with one answer.
        thanked = build.conversation(long_ago)
        build.turn(thanked, long_ago, "How long does shipping take?", origin="extracted")
        later = long_ago + timedelta(minutes=1)
        build.turn(thanked, later, "thanks!", confidence=1.0, origin="courtesy")

    with session_scope(sessions) as session:
        result = report(
            session=session, since=NOW - timedelta(days=1), until=NOW + timedelta(seconds=1),
            quiet_minutes=QUIET, gap_confidence_below=0.7, gap_cluster_cosine=0.8, now=NOW,
        )  # fmt: skip
    counts = result.counts
    assert counts.assistant_answers == 1
    assert counts.involved_conversations == 1
    assert (counts.resolved_confirmed, counts.resolved_assumed) == (0, 1)
    assert (counts.thumbs_up, counts.thumbs_down) == (0, 0)
    # "hi" alone asked nothing: not a conversation the assistant could be involved in
    assert result.rates.involvement == 1.0
