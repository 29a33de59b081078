"""Celery tasks: thin, idempotent, keyed by the question id only."""

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from shared.answer_cache import service as answer_cache
from shared.answer_cache.service import CacheLookup
from shared.answering.engine import Answer, AnswerAction, answer_question
from shared.answering.handoff import HandoffReason
from shared.answering.reuse import AnswerLookup, CachedAnswer, CacheKey
from shared.conversations.models import Conversation, ConversationStatus, Message
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
from shared.core.queue import (
    ANSWER_QUESTION_TASK,
    COMPARE_SUGGESTION_TASK,
    NOTIFY_HANDOFF_TASK,
    PURGE_TASK,
    RECONCILE_TASK,
    send,
)
from shared.inbox import webhook
from shared.inbox.models import Handoff
from shared.inbox.service import hand_off, unsent_webhooks
from shared.inbox.webhook import Delivery, WebhookStatus
from shared.knowledge import KnowledgeBase
from shared.learning.service import compare, get_suggestion, uncompared
from shared.questions.models import Question, QuestionStatus
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
RESEND_AFTER_SECONDS = 60  # a webhook still pending this long after its handoff lost its task


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
        cached: str | None = None,
    ) -> None:
        """`handoff_reason`: the answer passed the conversation to the support team, and why;
        `cached`: the words the answer was just cached under. Waiting requests are woken first:
        they read the row, not the stream."""
        try:
            event = QuestionEvent(self.question_id, status.value, cached=cached)
            publish_question_event(self.redis, event)
        except Exception:  # waiters fall back to their timeout and re-read the row
            logger.warning(
                "could not publish %s for question %s", status, self.question_id, exc_info=True
            )
        if self.stream is not None:
            if message is not None:
                self.stream.message(message_payload(message))
            if handoff_reason is not None:
                self.stream.status(
                    ConversationStatus.WAITING_FOR_AGENT.value, reason=handoff_reason
                )
            self.stream.turn(self.question_id, status.value)


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
        noted = (
            note_failure(session=session, question_id=question_id, text=error.client_message)
            if stored
            else None
        )
        message, handoff = _failed_in_conversation(session, resources, question_id, noted)
    logger.warning("question %s failed: %s (%s)", question_id, error.code, error.message)
    metrics.FAILURES.labels(error.code).inc()
    announcer.turn(QuestionStatus.FAILED, message, handoff.reason if handoff else None)
    _after_handoff(resources, handoff)


def _failed_in_conversation(
    session: Session,
    resources: WorkerResources,
    question_id: str,
    noted: tuple[Message, Conversation] | None,
) -> tuple[Message | None, Handoff | None]:
    """A conversation's question that failed for good goes to the support team."""
    if noted is None:
        return None, None
    message, conversation = noted
    handoff = _hand_off(
        session,
        resources,
        conversation,
        reason=HandoffReason.MODEL_FAILED,
        question=session.get(Question, question_id),
    )
    return message, handoff


def _hand_off(
    session: Session,
    resources: WorkerResources,
    conversation: Conversation,
    *,
    reason: str,
    question: Question | None,
) -> Handoff | None:
    handoff = hand_off(session=session, conversation=conversation, reason=reason, question=question)
    if handoff is not None and resources.settings.handoff_webhook_url:
        handoff.webhook_status = WebhookStatus.PENDING
    return handoff


def _after_handoff(resources: WorkerResources, handoff: Handoff | None) -> None:
    """Once the handoff is committed: count it and send its webhook."""
    if handoff is None:
        return
    metrics.HANDOFFS.labels(handoff.reason).inc()
    if handoff.webhook_status == WebhookStatus.PENDING:
        send(app, NOTIFY_HANDOFF_TASK, handoff_id=handoff.id)


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
    knowledge = resources.knowledge.current()
    try:
        with holding:
            answer = answer_question(
                question=text,
                context_method=context_method,
                knowledge=knowledge,
                provider=resources.provider,
                settings=settings,
                history=history,
                on_token=announcer.token,
                on_reset=announcer.reset,
                cache=_cache_lookup(resources, knowledge),
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

    if answer.fallback_reason and answer.rejected_draft is not None:
        logger.info(
            "question %s: model draft replaced by the entry's statements (%s)",
            question_id,
            answer.fallback_reason,
        )
    with session_scope(resources.sessions) as session:
        recorded = record_answer(
            session=session, question_id=question_id, answer=answer, started_at=started_at
        )
        cached = None
        if recorded.stored and resources.answer_cache is not None:
            cached = answer_cache.store(
                session=session,
                question_id=question_id,
                answer=answer,
                max_entries=settings.answer_cache_max_entries,
            )
        handoff = None
        if (
            recorded.stored
            and recorded.conversation is not None
            and answer.action is AnswerAction.HANDOFF
        ):
            handoff = _hand_off(
                session,
                resources,
                recorded.conversation,
                reason=answer.handoff_reason or HandoffReason.LOW_CONFIDENCE,
                question=session.get(Question, question_id),
            )
    if not recorded.stored:
        logger.info(
            "question %s was answered by another delivery; this answer is dropped", question_id
        )
        return "duplicate"
    logger.info(STORED_MESSAGE)
    _observe(answer)
    announcer.turn(
        QuestionStatus.COMPLETED,
        recorded.message,
        handoff.reason if handoff else None,
        cached=cached,
    )
    _after_handoff(resources, handoff)
    if heartbeat is not None:
        heartbeat.answered()
    return "completed"


def _cache_lookup(resources: WorkerResources, knowledge: KnowledgeBase) -> AnswerLookup | None:
    if resources.answer_cache is None:
        return None
    return _CountedLookup(resources.answer_cache.over(knowledge))


@dataclass(frozen=True)
class _CountedLookup:
    """The cache as the engine sees it, counted; a failing lookup is a miss (the cache only
    saves work: without it the question is answered as usual)."""

    lookup: CacheLookup

    def repeated(self, question: str, context_method: str) -> CachedAnswer | None:
        return self._counted("repeated", lambda: self.lookup.repeated(question, context_method))

    def equivalent(self, key: CacheKey) -> CachedAnswer | None:
        return self._counted("equivalent", lambda: self.lookup.equivalent(key))

    @staticmethod
    def _counted(kind: str, find: Callable[[], CachedAnswer | None]) -> CachedAnswer | None:
        try:
            found = find()
        except Exception:
            logger.warning("answer cache lookup failed", exc_info=True)
            found = None
        metrics.ANSWER_CACHE_LOOKUPS.labels(kind, "hit" if found else "miss").inc()
        return found


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
            noted = note_failure(session=session, question_id=question_id, text=GAVE_UP_TEXT)
            message, handoff = _failed_in_conversation(session, resources, question_id, noted)
            conversation_id = message.conversation_id if message else None
        Announcer(resources, question_id, conversation_id).turn(
            QuestionStatus.FAILED, message, handoff.reason if handoff else None
        )
        _after_handoff(resources, handoff)
    _resend_background_work(resources)
    if report.requeued or report.gave_up:
        logger.warning(
            "reconciler: re-queued %d question(s), gave up on %d",
            len(report.requeued),
            len(report.gave_up),
        )
    return {"requeued": len(report.requeued), "gave_up": len(report.gave_up)}


def _resend_background_work(resources: WorkerResources) -> None:
    """Webhooks and suggestion comparisons whose task was lost (broker down when they were due,
    a worker killed mid-task) are sent again."""
    with session_scope(resources.sessions) as session:
        handoffs = unsent_webhooks(session=session, older_than=RESEND_AFTER_SECONDS)
        suggestions = uncompared(session=session)
    for handoff_id in handoffs:
        send(app, NOTIFY_HANDOFF_TASK, handoff_id=handoff_id)
    for suggestion_id in suggestions:
        send(app, COMPARE_SUGGESTION_TASK, suggestion_id=suggestion_id)


@app.task(name=NOTIFY_HANDOFF_TASK, bind=True, ignore_result=True)
def notify_handoff_task(self: Task, handoff_id: str) -> str:
    """POST the handoff to HANDOFF_WEBHOOK_URL, signed; retried with backoff while the receiver
    is down or busy. Nothing here ever holds up the customer: the handoff is stored already."""
    resources = get_resources()
    settings = resources.settings
    if not settings.handoff_webhook_url:
        return "off"
    with session_scope(resources.sessions) as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None or handoff.webhook_status != WebhookStatus.PENDING:
            return "skipped"  # erased with its conversation, or delivered by another delivery
        body = webhook.encode(
            webhook.payload(
                handoff,
                conversation_path=f"{settings.api_prefix}/conversations/{handoff.conversation_id}",
            )
        )
    with httpx.Client(follow_redirects=False) as client:
        outcome, detail = webhook.post(
            client,
            url=settings.handoff_webhook_url,
            body=body,
            secret=settings.handoff_webhook_secret,
            delivery_id=handoff_id,
            timeout=settings.webhook_timeout,
        )
    retrying = outcome is Delivery.RETRY and self.request.retries < settings.webhook_max_retries
    with session_scope(resources.sessions) as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is not None:
            handoff.webhook_attempts += 1
            if outcome is Delivery.DELIVERED:
                handoff.webhook_status = WebhookStatus.DELIVERED
            elif not retrying:
                handoff.webhook_status = WebhookStatus.FAILED
    if retrying:
        metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
        delay = settings.webhook_retry_backoff * 2**self.request.retries
        logger.warning("handoff %s webhook: %s; retry in %.0f s", handoff_id, detail, delay)
        raise self.retry(countdown=delay, max_retries=settings.webhook_max_retries)
    label = outcome.value if outcome is not Delivery.RETRY else "gave_up"
    metrics.WEBHOOK_DELIVERIES.labels(label).inc()
    log = logger.info if outcome is Delivery.DELIVERED else logger.warning
    log("handoff %s webhook %s: %s", handoff_id, label, detail)
    return label


@app.task(name=COMPARE_SUGGESTION_TASK, ignore_result=True)
def compare_suggestion_task(suggestion_id: str) -> str:
    """Find the entries a knowledge suggestion resembles (the workers hold the vectors)."""
    resources = get_resources()
    knowledge = resources.knowledge.current()
    with session_scope(resources.sessions) as session:
        try:
            suggestion = get_suggestion(session=session, suggestion_id=suggestion_id)
        except AppError:
            return "skipped"
        done = compare(
            suggestion=suggestion,
            knowledge=knowledge,
            duplicate_cosine=resources.settings.learning_duplicate_cosine,
        )
    return "compared" if done else "no_vectors"


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
