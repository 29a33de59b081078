"""A pool process's heartbeat: its report for readiness, and the leases of what it is answering."""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared.core.db import session_scope
from shared.llm.base import BackendStatus
from shared.questions.service import renew_leases
from shared.system.workers import (
    PoolReport,
    PoolState,
    publish_pool_report,
    withdraw_pool_report,
)

logger = logging.getLogger(__name__)


class Heartbeat:
    """Every `interval` seconds: refresh this process's pool report and renew the leases of the
    questions it is answering. A thread of its own, so it beats while a model generates."""

    def __init__(
        self,
        *,
        report: PoolReport,
        redis_client: Callable[[], redis.Redis],
        interval: float,
        lease_seconds: float,
    ) -> None:
        self.report = report
        self.redis_client = redis_client
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.owner = f"{report.worker}:{report.pid}"
        self.sessions: sessionmaker[Session] | None = None
        self._model_status: Callable[[], BackendStatus] | None = None
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def ready(
        self,
        *,
        sessions: sessionmaker[Session],
        provider: str,
        model: str,
        model_ok: bool,
        model_detail: str,
        model_status: Callable[[], BackendStatus] | None = None,
    ) -> None:
        """The process can answer now: say so, and start renewing leases. While the model is
        reported broken, each beat asks `model_status` again, so a backend that comes back (or
        was down only while this process started) is reported working."""
        self.sessions = sessions
        self._model_status = model_status
        self.report = replace(
            self.report,
            state=PoolState.READY,
            provider=provider,
            model=model,
            model_ok=model_ok,
            model_detail=model_detail,
        )
        self._beat()

    @contextmanager
    def holding(self, question_id: str) -> Iterator[None]:
        """Renew the lease of `question_id` while the block runs."""
        with self._lock:
            self._running.add(question_id)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(question_id)

    def answered(self) -> None:
        """A question was answered: if the model is reported broken, check it now rather than
        at the next beat, so readiness follows the backend's return at once."""
        if not self.report.model_ok:
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
        with suppress(redis.RedisError):
            withdraw_pool_report(self.redis_client(), self.report)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def _beat(self) -> None:
        self._recheck_model()
        try:
            publish_pool_report(self.redis_client(), self.report, ttl=self.interval * 3)
        except redis.RedisError as exc:
            logger.warning("heartbeat: cannot reach Redis (%s)", type(exc).__name__)
        with self._lock:
            running = list(self._running)
        if running and self.sessions is not None:
            try:
                with session_scope(self.sessions) as session:
                    held = renew_leases(
                        session=session,
                        owner=self.owner,
                        question_ids=running,
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:
                logger.warning("heartbeat: could not renew leases", exc_info=True)
                return
            if held < len(running):
                logger.warning(
                    "heartbeat: %d of %d leases were lost", len(running) - held, len(running)
                )

    def _recheck_model(self) -> None:
        if self.report.model_ok or self._model_status is None:
            return
        try:
            status = self._model_status()
        except Exception:
            logger.warning("heartbeat: the model check failed", exc_info=True)
            return
        if status.ok:
            logger.info("the model backend answers again: %s", status.detail)
            self.report = replace(self.report, model_ok=True, model_detail=status.detail)


def new_report(*, worker: str, queue: str, provider: str, model: str) -> PoolReport:
    """The report of a pool process that is starting now."""
    return PoolReport(
        worker=worker,
        queue=queue,
        pid=os.getpid(),
        state=PoolState.STARTING,
        since=time.time(),
        provider=provider,
        model=model,
        model_ok=True,
        model_detail="loading",
    )
