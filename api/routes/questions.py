"""Asking questions (each a one-turn conversation), following them, and reading past answers."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import PRINTABLE, CustomerDep, PrincipalDep, Services, ServicesDep, require_operator
from api.routes.conversations import message_url, submit
from api.streaming import question_events
from api.waiting import IdempotencyKeyHeader, PreferHeader, WaitQuery, requested_wait
from shared.core.db import read_scope
from shared.core.errors import STATUS_BY_CODE
from shared.core.schemas import ErrorDetail, ErrorResponse
from shared.questions.models import Question, QuestionStatus
from shared.questions.schemas import (
    AcceptedResponse,
    AnswerErrorResponse,
    AnswerResponse,
    AskRequest,
    HistoryResponse,
    Links,
    QuestionRecord,
)
from shared.questions.service import get_question, list_history

logger = logging.getLogger(__name__)
router = APIRouter(tags=["questions"])
operators = APIRouter(tags=["questions"], dependencies=[Depends(require_operator)])


def load_question(services: Services, question_id: str) -> Question:
    with read_scope(services.sessions) as session:
        return get_question(session=session, question_id=question_id)


def question_url(request: Request, question_id: str) -> str:
    return str(request.url_for("get_question_record", question_id=question_id))


def _failed(question: Question) -> JSONResponse:
    code = question.error_code or "internal_error"
    body = AnswerErrorResponse(
        error=ErrorDetail(code=code, message=question.error_message or "the answer failed"),
        question_id=question.id,
    )
    return JSONResponse(status_code=STATUS_BY_CODE.get(code, 500), content=body.model_dump())


@router.post(
    "/ask",
    response_model=AnswerResponse,
    responses={
        202: {"model": AcceptedResponse, "description": "Accepted; follow `Location`."},
        401: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        500: {"model": AnswerErrorResponse},
        503: {"model": AnswerErrorResponse},
    },
)
async def ask(
    body: AskRequest,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    wait: WaitQuery = None,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AnswerResponse | JSONResponse:
    """Ask a question; wait for the answer (200) or come back for it (202 + `Location`). The
    question opens a conversation: its id and token come with the answer, to follow up in it."""
    settings = services.settings
    wait_seconds, applied = requested_wait(settings, prefer, wait)
    await services.limiter.check(
        principal.identity, scope="messages", limit=settings.message_rate_limit_per_minute
    )
    submitted = await run_in_threadpool(
        lambda: submit(
            services,
            text=body.question,
            customer=customer,
            context_method=body.context_method,
            idempotency_key=f"{principal.identity}:{idempotency_key}" if idempotency_key else None,
        )
    )
    question_id = submitted.question_id or ""
    # An asynchronous ask is answered 202 at once, even when a worker (or the cache) was quicker.
    respond_async = wait_seconds <= 0 or not (submitted.queued or submitted.answered)
    if submitted.answered is not None:
        question = submitted.answered  # from the cache, as it was stored
    elif respond_async and submitted.new_message is not None:
        question = Question(id=question_id, status=QuestionStatus.QUEUED)  # just stored
    else:
        question = await services.waiter.wait_for(
            question_id,
            timeout=wait_seconds if submitted.queued else 0,
            load=lambda: run_in_threadpool(load_question, services, question_id),
        )
    if question.status is QuestionStatus.FAILED and not respond_async:
        return _failed(question)
    if question.status is not QuestionStatus.COMPLETED or respond_async:
        # Operators follow the question; a widget's key follows its conversation's message.
        url = (
            question_url(request, question.id)
            if principal.is_operator
            else message_url(request, submitted.conversation_id, submitted.message_id)
        )
        accepted = AcceptedResponse(
            question_id=question.id,
            status=question.status,
            links=Links(self=url, events=f"{url}/events"),
            conversation_id=submitted.conversation_id,
            conversation_token=submitted.token,
        )
        reply = JSONResponse(
            status_code=202,
            content=accepted.model_dump(mode="json"),
            headers={"Location": url, "Retry-After": str(settings.retry_after_seconds)},
        )
        if applied:
            reply.headers["Preference-Applied"] = ", ".join(applied)
        return reply
    return AnswerResponse.from_question(question, conversation_token=submitted.token)


@operators.get(
    "/questions/{question_id}",
    response_model=QuestionRecord,
    name="get_question_record",
    responses={403: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def get_question_record(
    question_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    wait: WaitQuery = None,
) -> QuestionRecord:
    """A question in any status; `?wait=N` holds the request until it is answered or N s pass."""
    async with services.streams.hold(principal.identity):
        question = await services.waiter.wait_for(
            question_id,
            timeout=min(wait or 0, services.settings.max_wait_seconds),
            load=lambda: run_in_threadpool(load_question, services, question_id),
        )
    return QuestionRecord.from_question(question, url=question_url(request, question_id))


@operators.get(
    "/questions/{question_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    },
)
async def stream_question(
    question_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> StreamingResponse:
    """Server-Sent Events: `status`, `token` (answer text as it is generated), `reset` (discard
    the text so far), then `completed` or `failed` with the whole record."""
    question = await run_in_threadpool(load_question, services, question_id)
    await services.streams.acquire(principal.identity)

    async def events() -> AsyncIterator[str]:
        try:
            async for event in question_events(
                services, question, url=question_url(request, question_id)
            ):
                yield event
        finally:
            await services.streams.release(principal.identity)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@operators.get(
    "/history",
    response_model=HistoryResponse,
    responses={403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
def history(
    services: ServicesDep,
    n: Annotated[int, Query(ge=1, le=100, description="How many answers to list.")] = 10,
    search: Annotated[
        str | None,
        Query(
            pattern=PRINTABLE,
            min_length=2,
            max_length=200,
            description="Text the question must contain.",
        ),
    ] = None,
) -> HistoryResponse:
    """Answered questions, newest first."""
    with read_scope(services.sessions) as session:
        questions, total = list_history(session=session, limit=n, search=search)
        return HistoryResponse.from_questions(questions, total=total)
