from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from shared.answering.engine import Answer, AnswerAction, AnswerOrigin
from shared.core.db import session_scope, utcnow
from shared.core.errors import QuestionNotFound
from shared.questions.models import Question, QuestionStatus
from shared.questions.service import (
    claim_question,
    complete_question,
    create_question,
    fail_question,
    get_question,
    list_history,
    reconcile_questions,
    release_question,
    renew_leases,
)

LEASE = 10.0


def _claim(session: Session, question_id: str, owner: str = "w1:1") -> Question | None:
    return claim_question(
        session=session, question_id=question_id, owner=owner, lease_seconds=LEASE
    )


def _expire_lease(sessions: sessionmaker[Session], question_id: str) -> None:
    with session_scope(sessions) as session:
        question = session.get(Question, question_id)
        assert question is not None
        question.lease_expires_at = utcnow() - timedelta(seconds=1)


def _answer(text: str) -> Answer:
    return Answer(
        text=text, action=AnswerAction.ANSWER, origin=AnswerOrigin.EXTRACTED, confidence=0.9,
        sources=[], provider="extractive",
        model="best-entry", knowledge_version="abc123",
    )  # fmt: skip


def _answered(sessions: sessionmaker[Session], text: str, *, answer: str = "answer") -> str:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text=text, context_method="keyword").id
    with session_scope(sessions) as session:
        question = _claim(session, question_id)
        assert question is not None and question.started_at is not None
        assert complete_question(
            session=session, question_id=question_id, answer=_answer(answer),
            started_at=question.started_at,
        )  # fmt: skip
    return question_id


def test_new_question_is_queued_with_utc_timestamp(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Hello?", context_method="all").id
    with session_scope(sessions) as session:
        question = get_question(session=session, question_id=question_id)
        assert question.status is QuestionStatus.QUEUED
        assert question.attempts == 0
        assert question.created_at.utcoffset() == timedelta(0)
        assert abs(utcnow() - question.created_at) < timedelta(seconds=5)


def test_unknown_question_raises_not_found(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session, pytest.raises(QuestionNotFound):
        get_question(session=session, question_id="nope")


def test_claim_marks_running_under_a_lease_and_counts_attempts(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Hi?", context_method="keyword").id
    for attempt, owner in ((1, "w1:1"), (2, "w2:7")):
        with session_scope(sessions) as session:
            question = _claim(session, question_id, owner)
            assert question is not None
            assert question.status is QuestionStatus.RUNNING
            assert question.attempts == attempt
            assert question.lease_owner == owner
            assert question.lease_expires_at is not None
            assert question.lease_expires_at > utcnow() + timedelta(seconds=LEASE - 2)
        _expire_lease(sessions, question_id)


def test_a_live_lease_keeps_other_workers_off(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Hi?", context_method="keyword").id
        assert _claim(session, question_id, "w1:1") is not None
    with session_scope(sessions) as session:
        assert _claim(session, question_id, "w2:2") is None  # a duplicate delivery


def test_only_the_holder_renews_a_lease(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Hi?", context_method="keyword").id
        assert _claim(session, question_id, "w1:1") is not None
    _expire_lease(sessions, question_id)
    with session_scope(sessions) as session:
        assert renew_leases(session=session, owner="w2:2", question_ids=[question_id],
                            lease_seconds=LEASE) == 0  # fmt: skip
        assert renew_leases(session=session, owner="w1:1", question_ids=[question_id],
                            lease_seconds=LEASE) == 1  # fmt: skip
    with session_scope(sessions) as session:
        question = get_question(session=session, question_id=question_id)
        assert question.lease_expires_at is not None and question.lease_expires_at > utcnow()


def test_an_expired_lease_is_requeued_by_the_reconciler(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        live = create_question(session=session, text="Live?", context_method="keyword").id
        lost = create_question(session=session, text="Lost?", context_method="keyword").id
        assert _claim(session, live) is not None and _claim(session, lost) is not None
    _expire_lease(sessions, lost)
    with session_scope(sessions) as session:
        report = reconcile_questions(session=session, queue_empty=False, queued_after=60,
                                     queued_max_wait=900, max_attempts=5)  # fmt: skip
    assert report.requeued == [lost] and report.gave_up == []
    with session_scope(sessions) as session:
        question = get_question(session=session, question_id=lost)
        assert question.status is QuestionStatus.QUEUED and question.lease_owner is None
        assert get_question(session=session, question_id=live).status is QuestionStatus.RUNNING


def test_a_released_question_can_be_claimed_again(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Hi?", context_method="keyword").id
        assert _claim(session, question_id) is not None
    with session_scope(sessions) as session:
        release_question(session=session, question_id=question_id)
    with session_scope(sessions) as session:
        question = _claim(session, question_id, "w1:1")
        assert question is not None and question.attempts == 2


def test_terminal_question_is_not_claimed_again(sessions: sessionmaker[Session]) -> None:
    question_id = _answered(sessions, "Done?")
    with session_scope(sessions) as session:
        assert _claim(session, question_id) is None
        assert _claim(session, "missing") is None


def test_second_completion_does_not_overwrite_the_answer(sessions: sessionmaker[Session]) -> None:
    question_id = _answered(sessions, "Twice?", answer="first")
    with session_scope(sessions) as session:
        stored = complete_question(
            session=session, question_id=question_id, answer=_answer("second"),
            started_at=utcnow(),
        )  # fmt: skip
        failed = fail_question(session=session, question_id=question_id, code="x", message="y")
    assert not stored and not failed
    with session_scope(sessions) as session:
        question = get_question(session=session, question_id=question_id)
        assert (question.answer, question.status) == ("first", QuestionStatus.COMPLETED)


def test_failure_is_stored_with_code_and_message(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text="Fail?", context_method="keyword").id
    with session_scope(sessions) as session:
        assert fail_question(
            session=session, question_id=question_id, code="llm_unavailable", message="down"
        )
    with session_scope(sessions) as session:
        question = get_question(session=session, question_id=question_id)
        assert question.status is QuestionStatus.FAILED
        assert (question.error_code, question.error_message) == ("llm_unavailable", "down")
        assert question.completed_at is not None


def test_history_lists_completed_newest_first(sessions: sessionmaker[Session]) -> None:
    first = _answered(sessions, "First question?")
    second = _answered(sessions, "Second question?")
    with session_scope(sessions) as session:
        create_question(session=session, text="Still queued?", context_method="keyword")
        questions, total = list_history(session=session, limit=10)
    assert [q.id for q in questions] == [second, first]
    assert total == 2


def test_history_limit_keeps_the_total(sessions: sessionmaker[Session]) -> None:
    for i in range(3):
        _answered(sessions, f"Question number {i}?")
    with session_scope(sessions) as session:
        questions, total = list_history(session=session, limit=2)
    assert (len(questions), total) == (2, 3)


def test_history_search_is_case_insensitive(sessions: sessionmaker[Session]) -> None:
    _answered(sessions, "What is your REFUND policy?")
    _answered(sessions, "How long does shipping take?")
    with session_scope(sessions) as session:
        questions, total = list_history(session=session, limit=10, search="refund")
    assert [q.question for q in questions] == ["What is your REFUND policy?"]
    assert total == 1


@pytest.mark.parametrize("search", ["%", "_", "50%", "a_b", "'", '"', "'; DROP TABLE questions;--"])
def test_history_search_treats_wildcards_and_quotes_as_text(
    sessions: sessionmaker[Session], search: str
) -> None:
    _answered(sessions, "Plain question here?")
    _answered(sessions, f"Contains {search} literally?")
    with session_scope(sessions) as session:
        questions, _ = list_history(session=session, limit=10, search=search)
    assert [q.question for q in questions] == [f"Contains {search} literally?"]
