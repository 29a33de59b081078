"""Service identity, liveness and readiness."""

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Services, ServicesDep
from shared import __version__
from shared.core.db import ping
from shared.system.schemas import CheckResult, Health, Readiness, ServiceInfo

router = APIRouter(tags=["system"])

SERVICE_NAME = "AI Customer Support Assistant"


@router.get("/", response_model=ServiceInfo)
def root() -> ServiceInfo:
    """What this service is."""
    return ServiceInfo(name=SERVICE_NAME, version=__version__, status="running")


@router.get(
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
        return CheckResult(ok=False, detail=f"unreachable: {exc}")
    return CheckResult(ok=True, detail=services.engine.dialect.name)


async def _check_broker(services: Services) -> CheckResult:
    try:
        await asyncio.wait_for(services.redis.ping(), timeout=2)
    except Exception as exc:
        return CheckResult(ok=False, detail=f"Redis unreachable: {exc!r}")
    return CheckResult(ok=True, detail="Redis answers")


def _check_workers(services: Services) -> CheckResult:
    try:
        replies = services.producer.control.ping(timeout=1.0)
    except Exception as exc:
        return CheckResult(ok=False, detail=f"cannot ask workers: {exc!r}")
    if not replies:
        return CheckResult(ok=False, detail="no worker answered")
    names = sorted(name for reply in replies for name in reply)
    return CheckResult(ok=True, detail=f"{len(names)} worker(s): {', '.join(names)}")


def _check_model(services: Services) -> CheckResult:
    status = services.backend.status()
    return CheckResult(ok=status.ok, detail=status.detail)


def _check_knowledge(services: Services) -> CheckResult:
    base = services.knowledge.current()
    if not base.entries:
        return CheckResult(ok=False, detail=f"no entries in {services.settings.knowledge_path}")
    return CheckResult(ok=True, detail=f"version {base.version}, {len(base.entries)} entries")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Whether the service can answer: database, broker, workers and model backend."""
    broker = await _check_broker(services)
    database, workers, model, knowledge = await asyncio.gather(
        run_in_threadpool(_check_database, services),
        run_in_threadpool(_check_workers, services) if broker.ok else _skipped("broker is down"),
        run_in_threadpool(_check_model, services),
        run_in_threadpool(_check_knowledge, services),
    )
    readiness = Readiness(
        status="ready",
        provider=services.backend.name,
        model=services.backend.model,
        checks={
            "database": database,
            "broker": broker,
            "workers": workers,
            "model": model,
            "knowledge": knowledge,
        },
    )
    if not readiness.ok:
        readiness.status = "not_ready"
    return JSONResponse(
        status_code=200 if readiness.ok else 503, content=readiness.model_dump(mode="json")
    )


async def _skipped(reason: str) -> CheckResult:
    return CheckResult(ok=False, detail=reason)
