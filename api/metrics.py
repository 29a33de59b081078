"""The API's Prometheus metrics: HTTP traffic, questions by status, queue depth (and, in
`api.counters`, the human loop's events)."""

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from api.deps import Services
from api.middleware import ASGIApp, Message, Receive, Scope, Send
from shared.core.db import read_scope
from shared.core.queue import waiting_tasks
from shared.questions.models import Question, QuestionStatus


class HttpMetrics:
    """Counts and times every request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "support_http_requests_total", "HTTP requests.", ["method", "route", "status"],
            registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "support_http_request_duration_seconds", "HTTP request latency.", ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_template(scope)
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route with its parameters as names ("/api/v1/questions/{question_id}"), so
    label values stay few; "unmatched" for a path no route serves."""
    if scope.get("route") is None:
        return "unmatched"
    path: str = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", "/{" + name + "}", 1)
    return path


class QuestionCollector(Collector):
    """Read at scrape time: questions by status from the database, the broker's queue depth."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self.services()
        by_status = GaugeMetricFamily(
            "support_questions", "Questions by status.", labels=["status"]
        )
        with read_scope(services.sessions) as session:
            counts = dict(
                session.execute(
                    select(Question.status, func.count()).group_by(Question.status)
                ).all()
            )
        for status in QuestionStatus:
            by_status.add_metric([status.value], counts.get(status, 0))
        yield by_status
        depth = GaugeMetricFamily("support_queue_depth", "Tasks waiting in the broker queue.")
        try:
            backlog = waiting_tasks(services.sync_redis, services.settings.celery_queue)
            depth.add_metric([], float(backlog))
        except Exception:  # the broker is down: no figure rather than a failed scrape
            return
        yield depth
