"""The one Celery app: configuration from the service's settings, per-process resources."""

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

from shared.core.config import Settings, get_settings
from shared.core.db import create_db_engine, create_session_factory
from shared.core.logs import configure_logging, question_id_var, request_id_var
from shared.core.queue import celery_config
from shared.knowledge import KnowledgeStore
from shared.knowledge.store import knowledge_generation
from shared.llm import LLMProvider, create_http_client, create_provider
from worker.metrics import process_exited, serve_worker_metrics

logger = logging.getLogger(__name__)

app = Celery("support_assistant")
app.config_from_object(celery_config(get_settings()))
app.conf.include = ["worker.tasks"]


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

    @classmethod
    def create(cls, settings: Settings) -> "WorkerResources":
        engine = create_db_engine(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        http = create_http_client(settings)
        provider = create_provider(settings, client=http)
        logger.info("worker answers with provider=%s model=%s", provider.name, provider.model)
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
        return cls(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            redis=client,
            http=http,
            provider=provider,
            knowledge=KnowledgeStore.from_settings(
                settings, generation=lambda: knowledge_generation(client)
            ),
        )

    def close(self) -> None:
        self.http.close()
        self.redis.close()
        self.engine.dispose()


_resources: WorkerResources | None = None
_resources_lock = threading.Lock()


def get_resources() -> WorkerResources:
    """This process's resources, created on first use (prefork children create them at start)."""
    global _resources
    with _resources_lock:
        if _resources is None:
            _resources = WorkerResources.create(get_settings())
        return _resources


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings().log_level, get_settings().log_format)


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
def _check_resources(**_: Any) -> None:
    # Fail at start, loudly, rather than accept tasks a broken configuration cannot answer.
    WorkerResources.create(get_settings()).close()
    serve_worker_metrics(get_settings().worker_metrics_port)


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    get_resources()


@worker_process_shutdown.connect
def _close_process(pid: int | None = None, **_: Any) -> None:
    global _resources
    process_exited(pid or os.getpid())
    with _resources_lock:
        if _resources is not None:
            _resources.close()
            _resources = None
