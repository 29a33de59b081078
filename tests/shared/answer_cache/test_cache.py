"""The answer cache with the real engine, the default knowledge base and a migrated database."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.answer_cache.models import CachedAnswerRow
from shared.answer_cache.service import (
    AnswerCache,
    CachedQuestions,
    SameWords,
    forget_answer,
    forget_entries,
    purge,
    store,
)
from shared.answering.engine import Answer, AnswerAction, answer_question
from shared.answering.reuse import CACHE_PROVIDER, normalise
from shared.core.config import ProviderName, Settings
from shared.core.db import create_db_engine, create_session_factory, read_scope, session_scope
from shared.knowledge import Entry, KnowledgeBase
from shared.llm import ProviderChoice, create_http_client, create_provider
from shared.llm.base import Turn
from shared.questions.models import Question
from tests.conftest import fresh_database

SETTINGS = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]
PROVIDER = create_provider(
    SETTINGS,
    client=create_http_client(SETTINGS),
    choice=ProviderChoice(ProviderName.EXTRACTIVE, ""),
)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with fresh_database("sqlite", tmp_path) as url:
        engine = create_db_engine(url)
        yield create_session_factory(engine)
        engine.dispose()


class Asker:
    """Answers as a worker does: look up, answer, keep what may be reused."""

    def __init__(self, sessions: sessionmaker[Session], knowledge: KnowledgeBase) -> None:
        self.sessions = sessions
        self.knowledge = knowledge
        self.cache = AnswerCache(sessions, similarity=SETTINGS.answer_cache_similarity)
        self.kept: list[str | None] = []  # the words each answer was kept under

    def ask(
        self, text: str, history: list[Turn] | None = None, settings: Settings = SETTINGS
    ) -> tuple[Answer, str]:
        answer = answer_question(
            question=text, context_method="hybrid", knowledge=self.knowledge,
            provider=PROVIDER, settings=settings, history=history or [],
            cache=self.cache.over(self.knowledge),
        )  # fmt: skip
        with session_scope(self.sessions) as session:
            question = Question(question=text, status="completed")
            session.add(question)
            session.flush()
            kept = store(session=session, question_id=question.id, answer=answer, max_entries=100)
            self.kept.append(kept)
            return answer, question.id

    def rows(self) -> int:
        with session_scope(self.sessions) as session:
            return session.scalar(select(func.count()).select_from(CachedAnswerRow)) or 0


def edited(knowledge: KnowledgeBase, entry_id: str, added: str) -> KnowledgeBase:
    """The base with `added` at the end of one entry's answer, as an edit on disk leaves it."""
    entries = [
        Entry(e.id, e.question, e.answer + added, e.source, e.kind) if e.id == entry_id else e
        for e in knowledge.entries
    ]
    return replace(
        KnowledgeBase.from_entries(
            entries,
            embedder=knowledge.index.embedder,
            dense_weight=SETTINGS.retrieval_dense_weight,
            unit_weight=SETTINGS.retrieval_unit_weight,
        ),
        calibration=knowledge.calibration,
    )


def test_the_same_question_again_is_answered_from_the_cache(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    first, _ = asker.ask("How long does standard shipping take?")
    assert first.action is AnswerAction.ANSWER and first.provider == "extractive"
    again, _ = asker.ask("how long does standard shipping take")
    assert again.provider == "cache" and again.cached_from is not None
    assert again.text == first.text and again.sources == first.sources
    assert again.knowledge_version == first.knowledge_version
    assert asker.rows() == 1  # an answer from the cache is not stored again
    assert asker.kept == [normalise("How long does standard shipping take?"), None]
    # The same words over the same knowledge version: nothing is embedded or retrieved.
    assert again.timings == {"retrieval_ms": None}


def test_a_close_paraphrase_is_a_hit_and_another_fact_of_the_same_entry_is_not(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    asker.ask("How much does next-day delivery cost?")
    paraphrase, _ = asker.ask("How much does next day delivery cost?")
    assert paraphrase.provider == "cache"
    other, _ = asker.ask("How much does express delivery cost?")
    assert other.provider != "cache"


def test_handoffs_and_follow_ups_are_never_kept(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    handoff, _ = asker.ask("Do you sell car insurance?")
    assert handoff.action is AnswerAction.HANDOFF
    history = [
        Turn(role="customer", text="Do you ship internationally?"),
        Turn(role="assistant", text="Yes, we ship to over 40 countries."),
    ]
    follow_up, _ = asker.ask("How long does it take?", history=history)
    assert follow_up.action is AnswerAction.ANSWER and follow_up.cache_key is None
    assert asker.rows() == 0


def test_an_edited_entry_is_never_answered_from_its_old_content(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    first, _ = asker.ask("How long does standard shipping take?")
    asker.knowledge = edited(knowledge, first.sources[0]["id"], " Delays may happen.")
    again, _ = asker.ask("How long does standard shipping take?")
    assert again.provider != "cache"
    # The stale row stays unused (a process that has not loaded the change yet must not remove
    # rows made under the new content); the new answer is kept and given next time.
    assert asker.rows() == 2
    third, _ = asker.ask("How long does standard shipping take?")
    assert third.provider == "cache" and third.text == again.text


def test_an_answer_from_two_entries_is_gone_when_either_changes(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    question = "Can I return a broken item?"
    first, _ = asker.ask(question)
    assert first.text.count("\n\n") == 1  # the statements of two entries
    assert asker.ask(question)[0].provider == "cache"
    # the entry of the second reading
    asker.knowledge = edited(knowledge, first.sources[1]["id"], " Ask us first.")
    again, _ = asker.ask(question)
    assert again.provider != "cache"


def test_forgetting_by_entry_and_by_a_rating_down(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    first, _ = asker.ask("How long does standard shipping take?")
    asker.ask("Can I still cancel my order?")
    with session_scope(sessions) as session:
        assert forget_entries(session=session, entry_ids=[first.sources[0]["id"]]) >= 1
    assert asker.ask("How long does standard shipping take?")[0].provider != "cache"
    hit, hit_question = asker.ask("Can I still cancel my order?")
    assert hit.provider == "cache"
    with session_scope(sessions) as session:
        session.get(Question, hit_question).cached_from = hit.cached_from  # as the worker stores
    with session_scope(sessions) as session:
        assert forget_answer(session=session, question_id=hit_question) == 1
    assert asker.ask("Can I still cancel my order?")[0].provider != "cache"


def test_a_purged_answers_id_never_names_another_answer(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    asker.ask("How long does standard shipping take?")
    assert asker.ask("How long does standard shipping take?")[0].provider == "cache"
    with session_scope(sessions) as session:
        purge(session=session)
    other, _ = asker.ask("Can I still cancel my order?")  # stored after the purge
    again, _ = asker.ask("How long does standard shipping take?")
    assert again.provider != "cache" and again.text != other.text


def test_a_raised_handoff_threshold_is_never_bypassed(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    first, _ = asker.ask("How long does standard shipping take?")
    assert first.action is AnswerAction.ANSWER and first.confidence < 1
    stricter = SETTINGS.model_copy(update={"handoff_threshold": 1.0})
    again, _ = asker.ask("How long does standard shipping take?", settings=stricter)
    assert again.action is AnswerAction.HANDOFF and again.provider != "cache"
    # Nor by the API's lookup of a first message as it arrives.
    with read_scope(sessions) as session:
        for threshold, found in ((SETTINGS.handoff_threshold, True), (1.0, False)):
            same_words = SameWords(
                CachedQuestions(sessions), lambda: knowledge, min_confidence=threshold
            )
            cached = same_words.find(
                session, "How long does STANDARD shipping take", "hybrid", base=knowledge
            )
            assert (cached is not None) is found
            assert cached is None or cached.text == first.text


def test_the_same_words_are_found_only_for_the_knowledge_version_they_were_answered_from(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    asker = Asker(sessions, knowledge)
    first, _ = asker.ask("How long does standard shipping take?")
    same_words = SameWords(CachedQuestions(sessions), lambda: knowledge, min_confidence=0.0)
    with read_scope(sessions) as session:
        found = same_words.find(
            session, "how long does standard shipping take?", "hybrid", base=knowledge
        )
        assert found is not None and found.sources == first.sources
        for text, method in (
            ("how long does standard shipping take?", "keyword"),
            ("how long does express shipping take?", "hybrid"),
        ):
            assert same_words.find(session, text, method, base=knowledge) is None
    cited = first.sources[0]["id"]
    edited = KnowledgeBase.from_entries(
        [
            Entry(e.id, e.question, "Orders arrive in 3 days.", e.source, e.kind)
            if e.id == cited
            else e
            for e in knowledge.entries
        ]
    )
    with read_scope(sessions) as session:  # an edit makes another version: never found
        stale = SameWords(CachedQuestions(sessions), lambda: edited, min_confidence=0.0)
        question = "how long does standard shipping take?"
        assert stale.find(session, question, "hybrid", base=edited) is None


def test_the_same_words_are_found_only_for_the_code_that_answered_them(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    # A release that fixes an answer must not keep giving the old one for the same words.
    Asker(sessions, knowledge).ask("How long does standard shipping take?")
    same_words = SameWords(CachedQuestions(sessions), lambda: knowledge, min_confidence=0.0)
    question = "how long does standard shipping take?"
    with read_scope(sessions) as session:
        assert same_words.find(session, question, "hybrid", base=knowledge) is not None
    with session_scope(sessions) as session:  # as a row kept by an earlier release
        for row in session.scalars(select(CachedAnswerRow)):
            row.engine_revision = "an-earlier-one"
    with read_scope(sessions) as session:
        assert same_words.find(session, question, "hybrid", base=knowledge) is None
    # nor by a worker (its index of equivalent questions never holds the row)
    answer, _ = Asker(sessions, knowledge).ask("How long does standard shipping take?")
    assert answer.provider != CACHE_PROVIDER and answer.cached_from is None


def test_an_api_process_looks_up_only_the_words_the_cache_holds(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    fresh = CachedQuestions(sessions, refresh_seconds=0)
    late = CachedQuestions(sessions, refresh_seconds=3600)
    assert "how long does standard shipping take" not in fresh
    assert "how long does standard shipping take" not in late  # read once, now
    asker = Asker(sessions, knowledge)
    asker.ask("How long does standard shipping take?")
    assert "how long does standard shipping take" in fresh
    assert "how long does standard shipping take" not in late  # until its next refresh
    same_words = SameWords(fresh, lambda: knowledge, min_confidence=0.0)
    assert same_words.may_hold("How long does STANDARD shipping take?!")
    assert not same_words.may_hold("How long does express shipping take?")


def test_words_a_worker_announces_are_known_without_waiting_for_a_read(
    sessions: sessionmaker[Session], knowledge: KnowledgeBase
) -> None:
    late = CachedQuestions(sessions, refresh_seconds=3600)
    assert "how long does standard shipping take" not in late  # read once, now
    asker = Asker(sessions, knowledge)
    asker.ask("How long does standard shipping take?")
    assert "how long does standard shipping take" not in late  # its next read is an hour away
    late.learn("how long does standard shipping take")  # the worker's completion event
    assert "how long does standard shipping take" in late
