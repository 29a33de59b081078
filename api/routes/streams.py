"""Server-Sent Events for one question: status changes, the answer as it is written, the end."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from api.deps import Services, ServicesDep
from api.routes.questions import load_question, question_url
from shared.core.events import event_log_key
from shared.core.schemas import ErrorResponse
from shared.questions.models import Question, QuestionStatus
from shared.questions.schemas import QuestionRecord

router = APIRouter(tags=["questions"])


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _final(question: Question, url: str) -> str:
    record = QuestionRecord.from_question(question, url=url).model_dump(mode="json")
    return sse(question.status.value, record)


async def question_events(
    services: Services, question: Question, *, url: str, keepalive: float
) -> AsyncIterator[str]:
    """What happened so far, then each new event; a keep-alive comment while nothing happens."""
    yield sse("status", {"status": question.status.value})
    if question.status.is_terminal:
        yield _final(question, url)
        return
    key, last_id = event_log_key(question.id), "0-0"
    while True:
        batch: Any
        try:
            batch = await services.redis.xread({key: last_id}, block=int(keepalive * 1000))
        except RedisError:
            batch = None
            await asyncio.sleep(min(keepalive, 1.0))
        if not batch:
            yield ": keep-alive\n\n"
            # The database is the truth: a lost event stream must not leave the client waiting.
            current = await run_in_threadpool(load_question, services, question.id)
            if current.status.is_terminal:
                yield _final(current, url)
                return
            continue
        for _key, entries in batch:
            for entry_id, fields in entries:
                last_id = entry_id
                kind = fields[b"type"].decode()
                if kind in (QuestionStatus.COMPLETED, QuestionStatus.FAILED):
                    current = await run_in_threadpool(load_question, services, question.id)
                    yield _final(current, url)
                    return
                yield sse(kind, json.loads(fields[b"data"]))


@router.get(
    "/questions/{question_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."},
        404: {"model": ErrorResponse},
    },
)
async def stream_question(question_id: str, request: Request, services: ServicesDep) -> Any:
    """Server-Sent Events: `status`, `token` (answer text as it is generated), `reset` (discard
    the text so far), then `completed` or `failed` with the whole record."""
    question = await run_in_threadpool(load_question, services, question_id)
    events = question_events(
        services,
        question,
        url=question_url(request, question_id),
        keepalive=services.settings.sse_keepalive_seconds,
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
