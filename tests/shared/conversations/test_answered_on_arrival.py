"""A conversation's first message in words the answer cache holds is answered as it arrives, in
the transaction that stores it: with the real engine, the default knowledge base, a migrated
database (SQLite and PostgreSQL) and a Celery producer on the test Redis."""

from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import text as text_clause
from sqlalchemy.orm import Session, sessionmaker

from shared.answer_cache.service import CachedQuestions, SameWords, purge, store
from shared.answering.engine import answer_question
from shared.answering.reuse import CachedAnswer
from shared.conversations.service import Submitted, create_conversation, submit_message
from shared.core.config import ProviderName, Settings
from shared.core.db import read_scope, session_scope
from shared.core.errors import QueueFull
from shared.core.events import ConversationEvents, conversation_stream_key, decode_event
from shared.knowledge import KnowledgeBase
from shared.llm import ProviderChoice, create_http_client, create_provider
from shared.questions.models import Question, QuestionStatus

SETTINGS = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]
QUESTION = "How long does standard shipping take?"


@pytest.fixture
def same_words(sessions: sessionmaker[Session], knowledge: KnowledgeBase) -> SameWords:
    """The cache holding an extractive answer to QUESTION, as a worker would have kept it."""
    provider = create_provider(
        SETTINGS,
        client=create_http_client(SETTINGS),
        choice=ProviderChoice(ProviderName.EXTRACTIVE, ""),
    )
    answer = answer_question(
        question=QUESTION, context_method="hybrid", knowledge=knowledge, provider=provider,
        settings=SETTINGS,
    )  # fmt: skip
    with session_scope(sessions) as session:
        asked = Question(question=QUESTION, status=QuestionStatus.COMPLETED)
        session.add(asked)
        session.flush()
        store(session=session, question_id=asked.id, answer=answer, max_entries=100)
    return SameWords(CachedQuestions(sessions), lambda: knowledge, SETTINGS.handoff_threshold)


def _submit(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords, **options: Any
) -> Submitted:
    return submit_message(sessions=sessions, producer=producer, same_words=same_words, **options)


def test_a_first_message_is_answered_at_once_even_when_the_queue_is_full(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    full = {"max_queue_depth": 1, "waiting": 5}
    submitted = _submit(sessions, producer, same_words, text=QUESTION.upper(), **full)
    assert submitted.answered is not None and not submitted.queued
    assert submitted.answered.status is QuestionStatus.COMPLETED
    assert submitted.answered.provider == "cache" and submitted.answered.cached_from is not None
    assert submitted.reply is not None and submitted.reply["role"] == "assistant"
    with read_scope(sessions) as session:
        stored = session.get(Question, submitted.question_id)
        assert stored is not None and stored.status is QuestionStatus.COMPLETED
        assert stored.answer == submitted.answered.answer
    # Other words need a worker: refused while the queue is full.
    with pytest.raises(QueueFull):
        _submit(sessions, producer, same_words, text="Do you ship to Canada?", **full)


def test_a_later_turn_and_a_replayed_key_are_never_answered_twice(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    first = _submit(sessions, producer, same_words, text=QUESTION, idempotency_key="k1")
    assert first.answered is not None
    again = _submit(sessions, producer, same_words, text=QUESTION, idempotency_key="k1")
    assert again.question_id == first.question_id and again.answered is None
    later = _submit(
        sessions, producer, same_words, text=QUESTION, conversation_id=first.conversation_id
    )
    assert later.answered is None and later.queued  # it follows a turn: a worker answers it


def test_an_answer_removed_since_its_words_were_cached_is_not_given(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    assert same_words.may_hold(QUESTION)
    with session_scope(sessions) as session:
        assert purge(session=session) == 1  # an edit, a rating down or an operator
    assert same_words.may_hold(QUESTION)  # the process's set still has the words
    submitted = _submit(sessions, producer, same_words, text=QUESTION)
    assert submitted.answered is None and submitted.queued


def test_a_failing_lookup_queues_the_message(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    def broken() -> KnowledgeBase:
        raise redis.ConnectionError("Redis went away")

    failing = SameWords(same_words.questions, broken, same_words.min_confidence)
    submitted = _submit(sessions, producer, failing, text=QUESTION)
    assert submitted.answered is None and submitted.queued


class _BrokenRead(SameWords):
    """Its read of the cache fails in the database."""

    def find(
        self, session: Session, text: str, context_method: str, *, base: KnowledgeBase
    ) -> CachedAnswer | None:
        session.execute(text_clause("SELECT no_such_column FROM answer_cache"))
        return None


def test_a_cache_read_failing_in_the_database_still_stores_and_queues_the_message(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    broken = _BrokenRead(same_words.questions, same_words.knowledge, same_words.min_confidence)
    submitted = _submit(sessions, producer, broken, text=QUESTION)
    assert submitted.answered is None and submitted.queued
    with read_scope(sessions) as session:
        stored = session.get(Question, submitted.question_id)
        assert stored is not None and stored.status is QuestionStatus.QUEUED


def test_a_first_message_in_an_opened_conversation_is_answered(
    sessions: sessionmaker[Session], producer: Celery, same_words: SameWords
) -> None:
    with session_scope(sessions) as session:
        conversation, _ = create_conversation(session=session)
    submitted = _submit(
        sessions, producer, same_words, text=QUESTION, conversation_id=conversation.id
    )
    assert submitted.answered is not None and submitted.conversation_id == conversation.id


def test_the_stream_gets_the_message_the_reply_and_the_completed_turn_in_order(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    events = ConversationEvents(client, "arrival-test")
    client.delete(events.key)
    customer, reply = {"id": "m1", "role": "customer"}, {"id": "m2", "role": "assistant"}
    events.received(customer, reply=reply, question_id="q1")
    entries = client.xrange(conversation_stream_key("arrival-test"))
    decoded = [decode_event(fields) for _, fields in entries]
    assert [(kind.value, data) for kind, data in decoded] == [
        ("message", customer),
        ("message", reply),
        ("turn", {"question_id": "q1", "status": "completed"}),
    ]
    client.delete(events.key)
    client.close()
