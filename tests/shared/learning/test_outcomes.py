"""Real outcomes label examples for refitting the confidence curve: ratings, and handoffs that
the base turned out to cover or that taught it something (SQLite and PostgreSQL)."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from shared.cli import calibrate
from shared.conversations.models import (
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageRole,
    Rating,
)
from shared.core.config import Settings, get_settings
from shared.core.db import create_db_engine, create_session_factory, session_scope
from shared.inbox.models import Handoff
from shared.knowledge import KnowledgeBase, KnowledgeStore
from shared.learning.models import Suggestion, SuggestionStatus
from shared.learning.outcomes import read_outcomes
from shared.questions.models import Question, QuestionStatus
from tests.conftest import migrate

SHIPPING_TIME = "orders-and-shipping#how-long-does-shipping-take"


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    settings = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]
    return KnowledgeStore.from_settings(settings).current()


class Story:
    def __init__(self, session: Session, knowledge: KnowledgeBase) -> None:
        self.session, self.knowledge = session, knowledge

    def question(self, text: str, *, action: str, model: str | None = None) -> Question:
        conversation = Conversation(token_hash="x" * 64, status=ConversationStatus.OPEN)
        self.session.add(conversation)
        self.session.flush()
        vector = self.knowledge.embed_query(text)
        assert vector is not None and self.knowledge.index.embedder is not None
        question = Question(
            question=text,
            status=QuestionStatus.COMPLETED,
            conversation_id=conversation.id,
            action=action,
            handoff_reason="low_confidence" if action == "handoff" else None,
            vector=np.asarray(vector, np.float32).tobytes(),
            vector_model=model or self.knowledge.index.embedder.name,
        )
        self.session.add(question)
        self.session.flush()
        return question

    def rated(self, text: str, rating: Rating, *, model: str | None = None) -> None:
        question = self.question(text, action="answer", model=model)
        assert question.conversation_id is not None
        message = Message(
            conversation_id=question.conversation_id,
            role=MessageRole.ASSISTANT,
            text="…",
            question_id=question.id,
        )
        self.session.add(message)
        self.session.flush()
        self.session.add(
            Feedback(message_id=message.id, conversation_id=message.conversation_id, rating=rating)
        )

    def resolved(
        self, text: str, *, duplicate_of: str | None = None, taught: str | None = None
    ) -> None:
        question = self.question(text, action="handoff")
        assert question.conversation_id is not None
        handoff = Handoff(
            conversation_id=question.conversation_id,
            question_id=question.id,
            reason="low_confidence",
            packet={},
        )
        self.session.add(handoff)
        self.session.flush()
        self.session.add(
            Suggestion(
                conversation_id=question.conversation_id,
                handoff_id=handoff.id,
                question=text,
                answer="…",
                status=SuggestionStatus.APPROVED if taught else SuggestionStatus.PENDING,
                duplicate_of=duplicate_of,
                entry_id=taught,
                similar=[],
            )
        )
        self.session.flush()


def test_outcomes_label_examples_with_the_taught_entry_left_out(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    with session_scope(sessions) as session:
        story = Story(session, knowledge)
        story.rated("How long will delivery take?", Rating.UP)
        story.rated("Do you sell car insurance?", Rating.DOWN)
        story.rated("Can I pay in bitcoin?", Rating.UP, model="another-embedder")
        story.resolved("When will my parcel get here?", duplicate_of=SHIPPING_TIME)
        story.resolved("Do you sell gift cards?", taught="learned#do-you-sell-gift-cards")
        # As if the taught entry were this one: its own entry must not count as an answer.
        story.resolved("How long does shipping take?", taught=SHIPPING_TIME)
    with session_scope(sessions) as session:
        outcomes = read_outcomes(session=session, base=knowledge)
    assert outcomes.counts == {
        "rated up": 1,
        "rated down": 1,
        "handed off, the base had it": 1,
        "handed off, a person taught it": 2,
    }
    assert outcomes.skipped == 1  # the vector of another embedding model
    assert min(outcomes.answerable) > 0.6
    own = knowledge.index.cosines("How long does shipping take?")
    assert own is not None and max(outcomes.out_of_scope) < float(own.max()) - 0.05


def test_calibrate_outcomes_refits_from_them_and_prints_what_moves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    knowledge: KnowledgeBase,
) -> None:
    url = f"sqlite:///{tmp_path / 'outcomes.db'}"
    migrate(url)
    engine = create_db_engine(url)
    with session_scope(create_session_factory(engine)) as session:
        story = Story(session, knowledge)
        for text in ("How long will delivery take?", "Which cards can I pay with?"):
            story.rated(text, Rating.UP)
        for text in ("Do you sell car insurance?", "Can you fix my bicycle?"):
            story.rated(text, Rating.DOWN)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("EMBEDDING_CACHE_DIR", "")
    get_settings.cache_clear()
    try:
        assert calibrate.main(["--outcomes"]) == 0
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().out
    assert "outcomes: 2 rated down, 2 rated up" in printed
    assert "answerable (2): handled right" in printed
    assert "slope " in printed and "intercept " in printed
