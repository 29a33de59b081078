"""The floors bench/pipeline.py measures our figures against: the least any FastAPI service or
any Celery worker on this machine can cost.

    uvicorn --factory bench.floors:create_app --host 127.0.0.1 --port P --no-access-log
    FLOOR_DATABASE_URL=… FLOOR_REDIS_URL=redis://… \
        uvicorn --factory bench.floors:create_durable_app --host 127.0.0.1 --port P --no-access-log
    FLOOR_REDIS_URL=redis://… celery -A bench.floors:celery_app worker --concurrency 1

`create_app`: one POST endpoint that validates the body `/ask` takes and answers 202.
`create_durable_app`: the same endpoint doing the least a `202` that means "stored and queued"
needs on this stack: one row inserted and committed with SQLAlchemy Core, one Celery task sent.
`celery_app`: a Celery app with a no-op task and a Redis result backend, nothing configured
beyond that (prefetch 4 and early acknowledgement, Celery's defaults).
"""

import contextlib
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, event, insert

from shared.questions.schemas import AskRequest

NOOP_TASK = "floor.noop"
QUEUE = "bench-floor"
DURABLE_TABLE = "floor_questions"


def create_app() -> FastAPI:
    """A bare FastAPI app whose one endpoint parses what `/ask` parses."""
    app = FastAPI()

    @app.post("/api/v1/ask", status_code=202)
    async def ask(body: AskRequest) -> JSONResponse:
        return JSONResponse(status_code=202, content={"status": "queued"})

    return app


def create_durable_app() -> FastAPI:
    """A bare FastAPI app whose one endpoint stores and queues what `/ask` parses: a sync route
    (FastAPI's thread pool) inserting one row into its own table of `FLOOR_DATABASE_URL` and
    committing (SQLite in WAL mode with its default `synchronous=FULL`, as ours, one writer at a
    time so none sleeps in SQLite's busy handler), then sending a task to `FLOOR_REDIS_URL` with
    Celery's `send_task`."""
    engine = create_engine(os.environ["FLOOR_DATABASE_URL"])
    writer = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(connection: Any, _: Any) -> None:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=5000")

    metadata = MetaData()
    table = Table(
        DURABLE_TABLE,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("question", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(engine)
    producer = create_celery(os.environ["FLOOR_REDIS_URL"])
    app = FastAPI()

    @app.post("/api/v1/ask", status_code=202)
    def ask(body: AskRequest) -> JSONResponse:
        question_id = str(uuid.uuid4())
        with writer, engine.begin() as connection:
            connection.execute(
                insert(table).values(
                    id=question_id, question=body.question, created_at=datetime.now(UTC)
                )
            )
        producer.send_task(NOOP_TASK, queue=QUEUE)
        return JSONResponse(status_code=202, content={"id": question_id, "status": "queued"})

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
