"""What the API and the workers agree on about the queue: task names and Celery's settings."""

import logging
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from shared.core.config import Settings
from shared.core.errors import BrokerUnavailable

logger = logging.getLogger(__name__)

ANSWER_QUESTION_TASK = "questions.answer"
RECONCILE_TASK = "questions.reconcile"
PURGE_TASK = "conversations.purge"
NOTIFY_HANDOFF_TASK = "handoffs.notify"  # the handoff webhook
COMPARE_SUGGESTION_TASK = "suggestions.compare"  # a suggestion's similar entries (needs vectors)
PURGE_INTERVAL_SECONDS = 3600


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from the service's settings, used by producers and workers alike."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Unacknowledged tasks come back only after this; it must outlast the longest task.
            "visibility_timeout": settings.task_time_limit * 2,
        },
        "task_default_queue": settings.celery_queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # Flower learns of a task when a worker receives it; a "sent" event per task would cost
        # the API a second Redis command on every question.
        "task_send_sent_event": False,
        "worker_send_task_events": True,
        "worker_prefetch_multiplier": 1,
        # A pool process loads its model before it takes tasks; give it time. One still loading
        # after POOL_START_TIMEOUT is reported by /ready as stuck, and replaced after twice that.
        "worker_proc_alive_timeout": settings.pool_start_timeout * 2,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        # SIGTERM: stop taking tasks and let running answers finish for this long.
        "worker_soft_shutdown_timeout": float(settings.task_time_limit),
        "beat_schedule": {
            "reconcile-questions": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval,
                "options": {"expires": settings.reconcile_interval},
            },
            "purge-old-conversations": {
                "task": PURGE_TASK,
                "schedule": PURGE_INTERVAL_SECONDS,
                "options": {"expires": PURGE_INTERVAL_SECONDS},
            },
        },
    }


def waiting_tasks(client: redis.Redis, queue: str) -> int:
    """Tasks waiting in the broker for a worker: Celery's Redis transport keeps a queue's
    messages in a list named after it (a task a worker took is no longer in it). One O(1) call,
    where counting the waiting rows would read an index on every request."""
    return int(client.llen(queue))


def create_producer(settings: Settings) -> Celery:
    """A Celery client that only sends tasks (by name: it never imports the worker's code)."""
    producer = Celery("support_assistant", set_as_current=False)
    producer.config_from_object(celery_config(settings))
    return producer


def enqueue_answer(producer: Celery, *, question_id: str, request_id: str | None = None) -> None:
    """Queue the answering task for a committed question; `BrokerUnavailable` if Redis is down.

    The request id travels in the message headers, so the worker's log lines carry it too."""
    try:
        producer.send_task(
            ANSWER_QUESTION_TASK,
            kwargs={"question_id": question_id},
            headers={"request_id": request_id} if request_id else None,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )
    except (KombuError, RedisError, OSError) as exc:
        raise BrokerUnavailable(f"cannot queue question {question_id}: {exc}") from exc


def send(producer: Celery, name: str, **kwargs: str) -> bool:
    """Queue a background task whose work the reconciler also finds in the database; False when
    the broker is down (the reconciler sends it later)."""
    try:
        producer.send_task(
            name,
            kwargs=kwargs,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )
    except (KombuError, RedisError, OSError) as exc:
        logger.warning("could not queue %s %s: %s", name, kwargs, exc)
        return False
    return True
