"""Service functions over the `questions` table; callers own the transaction, except where a
function must queue a task after committing (`submit_question`, `dispatch`)."""

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from celery import Celery
from sqlalchemy import Table, Update, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.answering.engine import Answer
from shared.core.db import session_scope, utcnow
from shared.core.errors import BrokerUnavailable, QuestionNotFound
from shared.core.queue import enqueue_answer
from shared.questions.models import TERMINAL_STATUSES, Question, QuestionStatus

logger = logging.getLogger(__name__)


def create_question(
    *,
    session: Session,
    text: str,
    context_method: str,
    idempotency_key: str | None = None,
    conversation_id: str | None = None,
    message_id: str | None = None,
    answer: Answer | None = None,
) -> Question:
    """Store a new question as `queued` (its task is queued right after the commit), or, given
    its `answer` already (an answer cache hit), as `completed` with it (no task)."""
    now = utcnow()
    question = Question(
        id=str(uuid.uuid4()),  # known before the flush: the caller's one flush writes it all
        question=text,
        context_method=context_method,
        status=QuestionStatus.QUEUED,
        created_at=now,
        enqueued_at=now,
        enqueue_count=1,
        idempotency_key=idempotency_key,
        conversation_id=conversation_id,
        message_id=message_id,
    )
    if answer is not None:
        question.started_at = now
        for name, value in _answered(answer, started_at=now).items():
            setattr(question, name, value)
    session.add(question)
    return question


def find_by_idempotency_key(*, session: Session, key: str) -> Question | None:
    return session.scalar(select(Question).where(Question.idempotency_key == key))


def mark_enqueue_failed(*, session: Session, question_id: str) -> None:
    """Record that the task could not be queued, so the reconciler queues it first."""
    session.execute(update(Question).where(Question.id == question_id).values(enqueued_at=None))


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


def claim_question(
    *, session: Session, question_id: str, owner: str, lease_seconds: float
) -> Question | None:
    """Take the question for one more attempt, under a lease held by `owner`; None when there is
    nothing to do (unknown, already answered, or running under another worker's live lease)."""
    now = utcnow()
    claimed = session.execute(
        _claiming(),
        {
            "question_id": question_id,
            "now": now,
            "owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
        },
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    return session.get(Question, question_id, populate_existing=True)


@functools.cache
def _claiming() -> Update:
    """The claim of a question (queued, or running under an expired lease), built once."""
    table = cast(Table, Question.__table__)
    now = bindparam("now", type_=table.c.started_at.type)
    claimable = or_(
        table.c.status == QuestionStatus.QUEUED,
        (table.c.status == QuestionStatus.RUNNING)
        & (table.c.lease_expires_at.is_(None) | (table.c.lease_expires_at < now)),
    )
    return (
        update(table)
        .where(table.c.id == bindparam("question_id"), claimable)
        .values(
            {
                table.c.status: QuestionStatus.RUNNING,
                table.c.attempts: table.c.attempts + 1,
                table.c.started_at: now,
                table.c.lease_owner: bindparam("owner"),
                table.c.lease_expires_at: bindparam("lease_expires_at"),
            }
        )
    )


def renew_leases(
    *, session: Session, owner: str, question_ids: list[str], lease_seconds: float
) -> int:
    """Extend the leases `owner` holds on these running questions; how many it still holds."""
    if not question_ids:
        return 0
    result = session.execute(
        update(Question)
        .where(
            Question.id.in_(question_ids),
            Question.status == QuestionStatus.RUNNING,
            Question.lease_owner == owner,
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_question(*, session: Session, question_id: str) -> None:
    """Give a running question back to the queue (its task is retried later)."""
    session.execute(
        update(Question)
        .where(Question.id == question_id, Question.status == QuestionStatus.RUNNING)
        .values(
            status=QuestionStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            enqueued_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def _finish(*, session: Session, question_id: str, values: dict[str, Any]) -> bool:
    # Only a row that is not yet terminal may be finished: a duplicate delivery changes nothing.
    result = session.execute(_finishing(frozenset(values)), {"question_id": question_id, **values})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _finishing(columns: frozenset[str]) -> Update:
    """The statement that finishes a question with these columns, built once: building an
    UPDATE of twenty-odd values costs more than running it. A Core statement: the session does
    not flush before it, so a caller must not hold unflushed changes to the question."""
    table = cast(Table, Question.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("question_id"),
            table.c.status.not_in(TERMINAL_STATUSES),
        )
        .values({table.c[name]: bindparam(name) for name in sorted(columns)})
    )


def complete_question(
    *, session: Session, question_id: str, answer: Answer, started_at: datetime
) -> bool:
    """Store the answer unless the question is already terminal; True when this call stored it."""
    return _finish(
        session=session, question_id=question_id, values=_answered(answer, started_at=started_at)
    )


def _answered(answer: Answer, *, started_at: datetime) -> dict[str, Any]:
    """A question's columns once `answer` is stored."""
    completed_at = utcnow()
    return {
        "status": QuestionStatus.COMPLETED,
        "answer": answer.text,
        "sources": answer.sources,
        "provider": answer.provider,
        "model": answer.model,
        "action": answer.action.value,
        "origin": answer.origin.value,
        "standalone_question": answer.standalone_question,
        "confidence": answer.confidence,
        "knowledge_version": answer.knowledge_version,
        "fallback_reason": answer.fallback_reason,
        "rejected_draft": answer.rejected_draft,
        "timings": {**answer.timings, "tokens": answer.tokens},
        "vector": answer.vector,
        "vector_model": answer.vector_model,
        "handoff_reason": answer.handoff_reason,
        "cached_from": answer.cached_from,
        "error_code": None,
        "error_message": None,
        "completed_at": completed_at,
        "processing_time_ms": _elapsed_ms(started_at, completed_at),
        "lease_owner": None,
        "lease_expires_at": None,
    }


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
            "lease_owner": None,
            "lease_expires_at": None,
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
    max_attempts: int,
    limit: int = 500,
) -> ReconcileReport:
    """Find questions a lost task left behind; mark them re-queued, or failed after too many tries.

    Queued: never queued (the broker was down), or queued `queued_after` s ago while the queue is
    empty, or `queued_max_wait` s ago whatever the queue holds. Running: its worker stopped
    renewing its lease (killed, or its machine lost). The caller dispatches after committing.
    """
    now = utcnow()
    stale_queued = Question.enqueued_at < now - timedelta(seconds=queued_max_wait)
    if queue_empty:
        stale_queued = stale_queued | (Question.enqueued_at < now - timedelta(seconds=queued_after))
    lost = (
        (Question.status == QuestionStatus.QUEUED) & (Question.enqueued_at.is_(None) | stale_queued)
    ) | (
        (Question.status == QuestionStatus.RUNNING)
        & (Question.lease_expires_at.is_(None) | (Question.lease_expires_at < now))
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
            question.lease_owner, question.lease_expires_at = None, None
        requeued.append(question.id)
    session.flush()
    return ReconcileReport(requeued=requeued, gave_up=gave_up)


def dispatch(
    *,
    producer: Celery,
    sessions: sessionmaker[Session],
    question_id: str,
    request_id: str | None = None,
) -> bool:
    """Queue the answering task of a committed question; when the broker is down, record it so
    the reconciler queues it later. The one way into the queue, for the API and the reconciler."""
    try:
        enqueue_answer(producer, question_id=question_id, request_id=request_id)
    except BrokerUnavailable as exc:
        logger.error("question %s stored but not queued: %s", question_id, exc.message)
        with session_scope(sessions) as session:
            mark_enqueue_failed(session=session, question_id=question_id)
        return False
    return True
