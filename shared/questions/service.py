"""Service functions over the `questions` table; callers own the transaction."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.answering.engine import Answer
from shared.core.db import utcnow
from shared.core.errors import QuestionNotFound
from shared.questions.models import TERMINAL_STATUSES, Question, QuestionStatus


def create_question(
    *, session: Session, text: str, context_method: str, idempotency_key: str | None = None
) -> Question:
    """Store a new question as `queued` (its task is queued right after the commit)."""
    now = utcnow()
    question = Question(
        question=text,
        context_method=context_method,
        status=QuestionStatus.QUEUED,
        created_at=now,
        enqueued_at=now,
        enqueue_count=1,
        idempotency_key=idempotency_key,
    )
    session.add(question)
    session.flush()
    return question


def find_by_idempotency_key(*, session: Session, key: str) -> Question | None:
    return session.scalar(select(Question).where(Question.idempotency_key == key))


def mark_enqueue_failed(*, session: Session, question_id: str) -> None:
    """Record that the task could not be queued, so the reconciler queues it first."""
    session.execute(update(Question).where(Question.id == question_id).values(enqueued_at=None))


def count_waiting(*, session: Session) -> int:
    """Questions accepted but not yet taken by a worker."""
    query = select(func.count()).select_from(Question)
    return session.scalar(query.where(Question.status == QuestionStatus.QUEUED)) or 0


def get_question(*, session: Session, question_id: str) -> Question:
    """Return the question or raise `QuestionNotFound`."""
    question = session.get(Question, question_id)
    if question is None:
        raise QuestionNotFound(question_id)
    return question


def list_history(
    *, session: Session, limit: int, search: str | None = None
) -> tuple[list[Question], int]:
    """Completed questions, newest first, optionally matching `search` in the question text."""
    condition = Question.status == QuestionStatus.COMPLETED
    if search:
        condition = condition & func.lower(Question.question).contains(
            search.lower(), autoescape=True
        )
    total = session.scalar(select(func.count()).select_from(Question).where(condition)) or 0
    rows = session.scalars(
        select(Question)
        .where(condition)
        .order_by(Question.created_at.desc(), Question.id.desc())
        .limit(limit)
    ).all()
    return list(rows), total


def claim_question(*, session: Session, question_id: str) -> Question | None:
    """Mark a non-terminal question `running` for one more attempt; None if nothing to do."""
    question = session.get(Question, question_id)
    if question is None or question.status in TERMINAL_STATUSES:
        return None
    question.status = QuestionStatus.RUNNING
    question.attempts += 1
    question.started_at = utcnow()
    session.flush()
    return question


def _finish(*, session: Session, question_id: str, values: dict[str, Any]) -> bool:
    # Only a row that is not yet terminal may be finished: a duplicate delivery changes nothing.
    result = session.execute(
        update(Question)
        .where(Question.id == question_id, Question.status.not_in(TERMINAL_STATUSES))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete_question(
    *, session: Session, question_id: str, answer: Answer, started_at: datetime
) -> bool:
    """Store the answer unless the question is already terminal; True when this call stored it."""
    completed_at = utcnow()
    return _finish(
        session=session,
        question_id=question_id,
        values={
            "status": QuestionStatus.COMPLETED,
            "answer": answer.text,
            "sources": answer.sources,
            "provider": answer.provider,
            "model": answer.model,
            "action": answer.action.value,
            "confidence": answer.confidence,
            "knowledge_version": answer.knowledge_version,
            "fallback_reason": answer.fallback_reason,
            "rejected_draft": answer.rejected_draft,
            "timings": {**answer.timings, "tokens": answer.tokens},
            "error_code": None,
            "error_message": None,
            "completed_at": completed_at,
            "processing_time_ms": _elapsed_ms(started_at, completed_at),
        },
    )


def fail_question(
    *, session: Session, question_id: str, code: str, message: str, provider: str | None = None
) -> bool:
    """Store a failure unless the question is already terminal; True when this call stored it."""
    return _finish(
        session=session,
        question_id=question_id,
        values={
            "status": QuestionStatus.FAILED,
            "error_code": code,
            "error_message": message,
            "provider": provider,
            "completed_at": utcnow(),
        },
    )


def _elapsed_ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


@dataclass(frozen=True)
class ReconcileReport:
    requeued: list[str]
    gave_up: list[str]


def reconcile_questions(
    *,
    session: Session,
    queue_empty: bool,
    queued_after: float,
    queued_max_wait: float,
    running_after: float,
    max_attempts: int,
    limit: int = 500,
) -> ReconcileReport:
    """Find questions a lost task left behind; mark them re-queued, or failed after too many tries.

    Queued: never queued (the broker was down), or queued `queued_after` s ago while the queue is
    empty, or `queued_max_wait` s ago whatever the queue holds. Running: started longer ago than
    the task may run. The caller sends the tasks after committing.
    """
    now = utcnow()
    stale_queued = Question.enqueued_at < now - timedelta(seconds=queued_max_wait)
    if queue_empty:
        stale_queued = stale_queued | (Question.enqueued_at < now - timedelta(seconds=queued_after))
    lost = (
        (Question.status == QuestionStatus.QUEUED) & (Question.enqueued_at.is_(None) | stale_queued)
    ) | (
        (Question.status == QuestionStatus.RUNNING)
        & (Question.started_at < now - timedelta(seconds=running_after))
    )
    requeued, gave_up = [], []
    for question in session.scalars(
        select(Question).where(lost).order_by(Question.created_at).limit(limit)
    ):
        if question.attempts >= max_attempts or question.enqueue_count >= 2 * max_attempts:
            fail_question(
                session=session,
                question_id=question.id,
                code="gave_up",
                message=f"no answer after {question.attempts} attempts",
            )
            gave_up.append(question.id)
            continue
        question.enqueued_at, question.enqueue_count = now, question.enqueue_count + 1
        if question.status is QuestionStatus.RUNNING:
            question.status = QuestionStatus.QUEUED
        requeued.append(question.id)
    session.flush()
    return ReconcileReport(requeued=requeued, gave_up=gave_up)
