"""Service identity, liveness and readiness."""

import asyncio
import logging
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Services, ServicesDep, require_operator
from shared import __version__
from shared.core.config import ProviderName
from shared.core.db import ping
from shared.llm import describe_backend
from shared.system.schemas import CheckResult, Health, Readiness, ServiceInfo
from shared.system.workers import read_pool_reports, summarize_pools

logger = logging.getLogger(__name__)
router = APIRouter(tags=["system"])
operators = APIRouter(tags=["system"], dependencies=[Depends(require_operator)])

SERVICE_NAME = "AI Customer Support Assistant"


@router.get("/", response_model=ServiceInfo)
def root() -> ServiceInfo:
    """What this service is."""
    return ServiceInfo(name=SERVICE_NAME, version=__version__, status="running")


@operators.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this API process (workers serve theirs on WORKER_METRICS_PORT)."""
    body = generate_latest(request.app.state.metrics_registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is alive (it checks nothing else)."""
    return Health(status="ok")


def _check_database(services: Services) -> CheckResult:
    try:
        ping(services.engine)
    except Exception as exc:
        logger.warning("readiness: database unreachable: %r", exc)
        return CheckResult(ok=False, detail="unreachable")
    return CheckResult(ok=True, detail=services.engine.dialect.name)


async def _check_broker(services: Services) -> CheckResult:
    try:
        await asyncio.wait_for(services.redis.ping(), timeout=2)
    except Exception as exc:
        logger.warning("readiness: Redis unreachable: %r", exc)
        return CheckResult(ok=False, detail="Redis unreachable")
    return CheckResult(ok=True, detail="Redis answers")


@dataclass(frozen=True)
class WorkerView:
    workers: CheckResult
    model: CheckResult
    provider: str
    model_name: str


def _check_workers(services: Services) -> WorkerView:
    """Readiness from the pool processes' own reports; the model check from what the ready ones
    answer with (and, for an HTTP backend, whether the API reaches it now)."""
    settings = services.settings
    configured = settings.llm_provider.value
    try:
        reports = read_pool_reports(services.sync_redis, queue=settings.celery_queue)
    except Exception as exc:
        logger.warning("readiness: cannot read worker reports: %r", exc)
        failed = CheckResult(ok=False, detail="cannot read worker reports")
        return WorkerView(failed, failed, configured, "")
    summary = summarize_pools(reports, start_timeout=settings.pool_start_timeout)
    workers = CheckResult(ok=summary.ok, detail=summary.detail)
    if not summary.ready:
        model = CheckResult(ok=False, detail="no ready worker has reported its model")
        return WorkerView(workers, model, configured, "")
    first = summary.ready[0]
    broken = [r for r in summary.ready if not r.model_ok]
    if broken:
        model = CheckResult(ok=False, detail=f"{broken[0].provider}: {broken[0].model_detail}")
        return WorkerView(workers, model, first.provider, first.model)
    backend = describe_backend(ProviderName(first.provider), settings, client=services.http)
    if backend is not None:
        status = backend.status()
        model = CheckResult(ok=status.ok, detail=status.detail)
    else:
        model = CheckResult(ok=True, detail=first.model_detail)
    return WorkerView(workers, model, first.provider, first.model)


def _check_knowledge(services: Services) -> CheckResult:
    base = services.knowledge.current()
    if not base.entries:
        return CheckResult(ok=False, detail="the knowledge base has no entries")
    return CheckResult(ok=True, detail=f"version {base.version}, {len(base.entries)} entries")


@operators.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Whether the service can answer: database, broker, workers and model backend."""
    broker = await _check_broker(services)
    database, knowledge = await asyncio.gather(
        run_in_threadpool(_check_database, services),
        run_in_threadpool(_check_knowledge, services),
    )
    if broker.ok:
        view = await run_in_threadpool(_check_workers, services)
    else:
        down = CheckResult(ok=False, detail="broker is down")
        view = WorkerView(down, down, services.settings.llm_provider.value, "")
    readiness = Readiness(
        status="ready",
        provider=view.provider,
        model=view.model_name,
        checks={
            "database": database,
            "broker": broker,
            "workers": view.workers,
            "model": view.model,
            "knowledge": knowledge,
        },
    )
    if not readiness.ok:
        readiness.status = "not_ready"
    return JSONResponse(
        status_code=200 if readiness.ok else 503, content=readiness.model_dump(mode="json")
    )
