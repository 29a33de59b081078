"""The floors bench/pipeline.py measures our figures against: the least any FastAPI service or
any Celery worker on this machine can cost.

    uvicorn --factory bench.floors:create_app --host 127.0.0.1 --port P --no-access-log
    FLOOR_REDIS_URL=redis://… celery -A bench.floors:celery_app worker --concurrency 1

`create_app`: one POST endpoint that validates the body `/ask` takes and answers 202.
`celery_app`: a Celery app with a no-op task and a Redis result backend, nothing configured
beyond that (prefetch 4 and early acknowledgement, Celery's defaults).
"""

import os

from celery import Celery
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from shared.questions.schemas import AskRequest

NOOP_TASK = "floor.noop"
QUEUE = "bench-floor"


def create_app() -> FastAPI:
    """A bare FastAPI app whose one endpoint parses what `/ask` parses."""
    app = FastAPI()

    @app.post("/api/v1/ask", status_code=202)
    async def ask(body: AskRequest) -> JSONResponse:
        return JSONResponse(status_code=202, content={"status": "queued"})

    return app


def create_celery(redis_url: str) -> Celery:
    """The floor's Celery app: broker and result backend on `redis_url`."""
    app = Celery("floor", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_expires=600,
    )
    return app


celery_app = create_celery(os.environ.get("FLOOR_REDIS_URL", "redis://127.0.0.1:6379/0"))


@celery_app.task(name=NOOP_TASK)
def noop() -> None:
    """Nothing: what remains is Celery and Redis."""
