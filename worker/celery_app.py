"""The one Celery app: configuration from the service's settings, per-process resources.

The worker's main process decides once which model provider its pool uses — probing a native
model in a child process first — and never loads a model itself: pool processes are forked from
it, and native thread pools (OpenMP, ONNX Runtime) do not survive a fork. Each pool process then
loads its resources and reports itself ready (`shared.system.workers`).
"""

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.answer_cache.service import AnswerCache
from shared.answering.places import load_gazetteer
from shared.core.config import Settings, get_settings
from shared.core.db import create_db_engine, create_session_factory, ping
from shared.core.logs import configure_logging, question_id_var, request_id_var
from shared.core.memory import give_back_freed_memory
from shared.core.queue import PURGE_TASK, RECONCILE_TASK, celery_config
from shared.knowledge import KnowledgeStore
from shared.knowledge.store import knowledge_generation
from shared.llm import LLMProvider, ProviderChoice, choose_provider, create_http_client
from shared.llm import create_provider as build_provider
from shared.llm.embedded import pool_threads
from worker.heartbeat import Heartbeat, new_report
from worker.metrics import process_exited, serve_worker_metrics

logger = logging.getLogger(__name__)

app = Celery("support_assistant")
app.config_from_object(celery_config(get_settings()))
app.conf.include = ["worker.tasks"]


@dataclass
class WorkerPlan:
    """Decided by the worker's main process before it forks its pool; inherited by the pool."""

    node: str
    pool_size: int
    choice: ProviderChoice | None = None


_plan = WorkerPlan(node=f"celery@{os.uname().nodename}", pool_size=1)


@dataclass
class WorkerResources:
    """Long-lived clients of one worker process, created once and shared by its tasks."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    http: httpx.Client
    provider: LLMProvider
    knowledge: KnowledgeStore
    answer_cache: AnswerCache | None  # None when ANSWER_CACHE is off

    @classmethod
    def create(cls, settings: Settings, plan: WorkerPlan) -> "WorkerResources":
        if not give_back_freed_memory():  # before the models are loaded
            logger.info("malloc thresholds left as they are (not glibc)")
        engine = create_db_engine(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        http = create_http_client(settings)
        provider = build_provider(settings, client=http, choice=plan.choice,
                                  pool_size=plan.pool_size)  # fmt: skip
        logger.info("worker answers with provider=%s model=%s", provider.name, provider.model)
        load_gazetteer()  # the cities a question may name, read before the first question
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
        sessions = create_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=client,
            http=http,
            provider=provider,
            knowledge=KnowledgeStore.from_settings(
                settings,
                generation=lambda: knowledge_generation(client),
                threads=pool_threads(plan.pool_size),
            ),
            answer_cache=(
                AnswerCache(sessions, similarity=settings.answer_cache_similarity)
                if settings.answer_cache
                else None
            ),
        )

    def close(self) -> None:
        self.http.close()
        self.redis.close()
        self.engine.dispose()


_resources: WorkerResources | None = None
_heartbeat: Heartbeat | None = None
_resources_lock = threading.Lock()


def get_resources() -> WorkerResources:
    """This process's resources, created on first use (prefork children create them at start)."""
    global _resources
    with _resources_lock:
        if _resources is None:
            _resources = WorkerResources.create(get_settings(), _plan)
        return _resources


def get_heartbeat() -> Heartbeat | None:
    return _heartbeat


class RoutineTaskFilter(logging.Filter):
    """Celery's INFO lines about the housekeeping tasks beat sends ("Sending due task",
    "received", "succeeded", "Discarding revoked task" for a run that expired in the queue):
    three every `RECONCILE_INTERVAL` drowned everything else. They are kept at DEBUG; what a run
    does it logs itself, and a failure is still an ERROR."""

    ROUTINE = (RECONCILE_TASK, PURGE_TASK)
    LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.worker.request", "celery.app.trace")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if not any(name in record.getMessage() for name in self.ROUTINE):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


_routine_tasks = RoutineTaskFilter()


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings().log_level, get_settings().log_format)
    for name in RoutineTaskFilter.LOGGERS:
        logging.getLogger(name).addFilter(_routine_tasks)  # the same filter once, however often


@task_prerun.connect
def _bind_log_context(task: Any = None, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    """Log lines of a task carry the request id it came with and its question id."""
    request = task.request if task is not None else None
    headers = (getattr(request, "headers", None) or {}) if request is not None else {}
    request_id_var.set(getattr(request, "request_id", None) or headers.get("request_id"))
    question_id_var.set((kwargs or {}).get("question_id"))


@task_postrun.connect
def _unbind_log_context(**_: Any) -> None:
    request_id_var.set(None)
    question_id_var.set(None)


@worker_init.connect
def _plan_worker(sender: Any = None, **_: Any) -> None:
    """In the main process, before the pool forks: check the services, choose the provider."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # Celery's comes later
    _plan.node = getattr(sender, "hostname", None) or _plan.node
    _plan.pool_size = int(getattr(sender, "concurrency", None) or 1)
    # Fail at start, loudly, rather than accept tasks a broken configuration cannot answer.
    engine = create_db_engine(settings.database_url)
    try:
        ping(engine)
    finally:
        engine.dispose()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    try:
        client.ping()
    finally:
        client.close()
    with create_http_client(settings) as http:
        _plan.choice = choose_provider(settings, client=http, pool_size=_plan.pool_size)
    logger.info(
        "worker %s: %d pool process(es), provider=%s model=%s (%s)",
        _plan.node, _plan.pool_size, _plan.choice.name, _plan.choice.model,
        _plan.choice.detail or "as configured",
    )  # fmt: skip
    serve_worker_metrics(settings.worker_metrics_port)


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    """In each pool process: report `starting`, load everything, report `ready`."""
    global _heartbeat
    settings = get_settings()
    choice = _plan.choice
    report_redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    heartbeat = Heartbeat(
        report=new_report(
            worker=_plan.node,
            queue=settings.celery_queue,
            provider=choice.name.value if choice else settings.llm_provider.value,
            model=choice.model if choice else "",
        ),
        redis_client=lambda: report_redis,
        interval=settings.heartbeat_interval,
        lease_seconds=settings.lease_seconds,
    )
    heartbeat.start()
    _heartbeat = heartbeat
    resources = get_resources()
    status = resources.provider.status()
    detail = status.detail if choice is None or not choice.detail else choice.detail
    heartbeat.ready(
        sessions=resources.sessions,
        provider=resources.provider.name,
        model=resources.provider.model,
        model_ok=status.ok,
        model_detail=detail,
        model_status=resources.provider.status,
    )


@worker_process_shutdown.connect
def _close_process(pid: int | None = None, **_: Any) -> None:
    global _resources, _heartbeat
    process_exited(pid or os.getpid())
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
    with _resources_lock:
        if _resources is not None:
            _resources.close()
            _resources = None
