"""Celery tasks: thin, idempotent, keyed by the question id only."""

import contextlib
import logging
import random

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from shared.answering.engine import Answer, answer_question
from shared.answering.handoff import HandoffReason
from shared.conversations.models import ConversationStatus, Message
from shared.conversations.service import (
    delete_conversation,
    expired_conversations,
    history_before,
    message_payload,
    note_failure,
    record_answer,
)
from shared.core.db import session_scope
from shared.core.errors import AppError, LLMError, LLMTimeout
from shared.core.events import (
    ConversationEvents,
    QuestionEvent,
    forget_conversation,
    publish_question_event,
)
from shared.core.queue import ANSWER_QUESTION_TASK, PURGE_TASK, RECONCILE_TASK
from shared.questions.models import QuestionStatus
from shared.questions.service import (
    claim_question,
    dispatch,
    fail_question,
    reconcile_questions,
    release_question,
)
from worker import metrics
from worker.celery_app import WorkerResources, app, get_heartbeat, get_resources

logger = logging.getLogger(__name__)
RECONCILE_LOCK = "support-assistant:reconcile-lock"
# Logged once per stored answer, with the question id as a structured field: the fault tests
# count these lines to prove no question is ever answered twice.
STORED_MESSAGE = "stored the answer"
GAVE_UP_TEXT = "Sorry, this message could not be answered. Please try again."


def retry_delay(*, retries: int, base: float, maximum: float) -> float:
    """Exponential backoff with full jitter, so retries of many questions spread out."""
    return random.uniform(0, min(maximum, base * 2**retries))


class Announcer:
    """Tells the customer's event stream and the waiting API requests what happened to a
    question; Redis trouble never fails the answer (the database stays the truth)."""

    def __init__(self, resources: WorkerResources, question_id: str, conversation_id: str | None):
        self.redis = resources.redis
        self.question_id = question_id
        self.stream = (
            ConversationEvents(resources.redis, conversation_id) if conversation_id else None
        )

    def token(self, text: str) -> None:
        if self.stream is not None:
            self.stream.token(self.question_id, text)

    def reset(self) -> None:
        if self.stream is not None:
            self.stream.reset(self.question_id)

    def turn(
        self,
        status: QuestionStatus,
        message: Message | None = None,
        handoff_reason: str | None = None,
    ) -> None:
        """`handoff_reason`: the answer passed the conversation to the support team, and why."""
        if self.stream is not None:
            if message is not None:
                self.stream.message(message_payload(message))
            if handoff_reason is not None:
                self.stream.status(
                    ConversationStatus.WAITING_FOR_AGENT.value, reason=handoff_reason
                )
            self.stream.turn(self.question_id, status.value)
        try:
            publish_question_event(self.redis, QuestionEvent(self.question_id, status.value))
        except Exception:  # waiters fall back to their timeout and re-read the row
            logger.warning(
                "could not publish %s for question %s", status, self.question_id, exc_info=True
            )


def _store_failure(resources: WorkerResources, announcer: Announcer, error: AppError) -> None:
    question_id = announcer.question_id
    with session_scope(resources.sessions) as session:
        stored = fail_question(
            session=session,
            question_id=question_id,
            code=error.code,
            message=error.client_message,  # customers see it: no hosts, paths or exception text
            provider=resources.provider.name,
        )
        message = (
            note_failure(session=session, question_id=question_id, text=error.client_message)
            if stored
            else None
        )
    logger.warning("question %s failed: %s (%s)", question_id, error.code, error.message)
    metrics.FAILURES.labels(error.code).inc()
    announcer.turn(QuestionStatus.FAILED, message)


def _owner() -> str:
    heartbeat = get_heartbeat()
    return heartbeat.owner if heartbeat is not None else "local"


@app.task(name=ANSWER_QUESTION_TASK, bind=True)
def answer_question_task(self: Task, question_id: str) -> str:
    """Answer one stored question; a terminal question, or one another worker holds, is left."""
    resources = get_resources()
    settings = resources.settings
    with session_scope(resources.sessions) as session:
        question = claim_question(
            session=session,
            question_id=question_id,
            owner=_owner(),
            lease_seconds=settings.lease_seconds,
        )
        if question is None:
            logger.info(
                "question %s is answered, unknown or held by another worker; nothing to do",
                question_id,
            )
            return "skipped"
        text, context_method, started_at = (
            question.question,
            question.context_method,
            question.started_at,
        )
        conversation_id = question.conversation_id
        history = (
            history_before(
                session=session, conversation_id=conversation_id, message_id=question.message_id
            )
            if conversation_id
            else []
        )
        assert started_at is not None
        metrics.TIME_QUEUED.observe((started_at - question.created_at).total_seconds())
    if settings.log_questions:
        logger.info("question text: %r", text)
    announcer = Announcer(resources, question_id, conversation_id)
    announcer.turn(QuestionStatus.RUNNING)

    heartbeat = get_heartbeat()
    holding = heartbeat.holding(question_id) if heartbeat else contextlib.nullcontext()
    try:
        with holding:
            answer = answer_question(
                question=text,
                context_method=context_method,
                knowledge=resources.knowledge.current(),
                provider=resources.provider,
                settings=settings,
                history=history,
                on_token=announcer.token,
                on_reset=announcer.reset,
            )
    except SoftTimeLimitExceeded:
        timeout = LLMTimeout(f"no answer within the {settings.task_soft_time_limit} s time limit")
        _store_failure(resources, announcer, timeout)
        return "failed"
    except LLMError as exc:
        if exc.transient and self.request.retries < settings.task_max_retries:
            delay = retry_delay(
                retries=self.request.retries,
                base=settings.task_retry_backoff,
                maximum=settings.task_retry_backoff_max,
            )
            logger.warning(
                "question %s: %s; retry %d/%d in %.1f s",
                question_id,
                exc.message,
                self.request.retries + 1,
                settings.task_max_retries,
                delay,
            )
            with session_scope(resources.sessions) as session:
                release_question(session=session, question_id=question_id)
            announcer.reset()
            metrics.RETRIES.labels(exc.code).inc()
            raise self.retry(exc=exc, countdown=delay) from exc
        _store_failure(resources, announcer, exc)
        return "failed"
    except Exception as exc:
        logger.exception("question %s: unexpected error", question_id)
        _store_failure(resources, announcer, AppError("an unexpected error occurred"))
        raise exc

    if answer.fallback_reason:
        logger.info(
            "question %s: model draft replaced by the entry's statements (%s)",
            question_id,
            answer.fallback_reason,
        )
    with session_scope(resources.sessions) as session:
        recorded = record_answer(
            session=session, question_id=question_id, answer=answer, started_at=started_at
        )
    if not recorded.stored:
        logger.info(
            "question %s was answered by another delivery; this answer is dropped", question_id
        )
        return "duplicate"
    logger.info(STORED_MESSAGE)
    _observe(answer)
    reason = answer.handoff_reason or HandoffReason.LOW_CONFIDENCE
    announcer.turn(
        QuestionStatus.COMPLETED, recorded.message, reason if recorded.handed_off else None
    )
    return "completed"


def _observe(answer: Answer) -> None:
    timings = answer.timings
    if (retrieval_ms := timings.get("retrieval_ms")) is not None:
        metrics.RETRIEVAL_SECONDS.observe(retrieval_ms / 1000)
    generation_ms, first_token_ms = timings.get("generation_ms"), timings.get("first_token_ms")
    if generation_ms:
        metrics.MODEL_SECONDS.labels(answer.provider).observe(generation_ms / 1000)
        if answer.tokens:
            rate = answer.tokens / (generation_ms / 1000)
            metrics.TOKENS_PER_SECOND.labels(answer.provider).observe(rate)
    if first_token_ms is not None:
        metrics.TIME_TO_FIRST_TOKEN.labels(answer.provider).observe(first_token_ms / 1000)
    metrics.ANSWERS.labels(answer.provider, answer.action.value, answer.origin.value).inc()


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> dict[str, int]:
    """Re-queue questions whose task was lost (worker killed, Redis emptied, broker down at
    `POST /ask`); fail those that used up their attempts. One run at a time, cluster-wide."""
    resources = get_resources()
    settings = resources.settings
    # The lock outlives a crashed run by a few intervals at most.
    lock_ms = int(max(settings.reconcile_interval * 3, 10) * 1000)
    if not resources.redis.set(RECONCILE_LOCK, "1", nx=True, px=lock_ms):
        return {"requeued": 0, "gave_up": 0}
    try:
        with session_scope(resources.sessions) as session:
            report = reconcile_questions(
                session=session,
                queue_empty=resources.redis.llen(settings.celery_queue) == 0,
                queued_after=settings.reconcile_queued_after,
                queued_max_wait=settings.reconcile_queued_max_wait,
                max_attempts=settings.max_attempts,
            )
    finally:
        resources.redis.delete(RECONCILE_LOCK)
    # After the commit, so every task finds its row re-queued.
    for question_id in report.requeued:
        dispatch(producer=app, sessions=resources.sessions, question_id=question_id)
    metrics.RECONCILER_ACTIONS.labels("requeued").inc(len(report.requeued))
    metrics.RECONCILER_ACTIONS.labels("gave_up").inc(len(report.gave_up))
    for question_id in report.gave_up:
        with session_scope(resources.sessions) as session:
            message = note_failure(session=session, question_id=question_id, text=GAVE_UP_TEXT)
            conversation_id = message.conversation_id if message else None
        Announcer(resources, question_id, conversation_id).turn(QuestionStatus.FAILED, message)
    if report.requeued or report.gave_up:
        logger.warning(
            "reconciler: re-queued %d question(s), gave up on %d",
            len(report.requeued),
            len(report.gave_up),
        )
    return {"requeued": len(report.requeued), "gave_up": len(report.gave_up)}


@app.task(name=PURGE_TASK, ignore_result=True)
def purge_task() -> int:
    """Erase conversations older than RETENTION_DAYS (database and Redis); how many."""
    resources = get_resources()
    days = resources.settings.retention_days
    if not days:
        return 0
    with session_scope(resources.sessions) as session:
        expired = expired_conversations(session=session, days=days)
        for conversation_id in expired:
            delete_conversation(session=session, conversation_id=conversation_id)
    for conversation_id in expired:
        forget_conversation(resources.redis, conversation_id)
    if expired:
        logger.info("erased %d conversation(s) older than %s days", len(expired), days)
    return len(expired)
