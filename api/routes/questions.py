"""Asking questions, following them, and reading past answers."""

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import Services, ServicesDep
from api.middleware import bearer_token, client_identity
from shared.core.db import session_scope
from shared.core.errors import STATUS_BY_CODE
from shared.core.logs import request_id_var
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
from shared.questions.service import (
    get_question,
    list_history,
    submit_question,
)

logger = logging.getLogger(__name__)
router = APIRouter(tags=["questions"])

WaitQuery = Annotated[
    float | None,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="Seconds to wait for the answer (0 answers 202 at once); at most "
        "MAX_WAIT_SECONDS, longer waits are shortened to it.",
    ),
]


def parse_prefer(header: str | None, *, default: float, maximum: float) -> tuple[float, list[str]]:
    """The wait an RFC 7240 `Prefer` header asks for, and the preferences honoured."""
    wait, applied, respond_async = default, [], False
    for token in (header or "").split(","):
        name, _, value = token.strip().partition("=")
        name = name.strip().lower()
        if name == "respond-async":
            respond_async = True
        elif name == "wait":
            try:
                asked = float(value.strip().strip('"'))
            except ValueError:
                continue
            if not math.isfinite(asked):
                continue
            wait = min(max(asked, 0.0), maximum)
            applied.append(f"wait={value.strip()}")
    if respond_async:
        applied.insert(0, "respond-async")
        if not any(p.startswith("wait=") for p in applied):
            wait = 0.0
    return wait, applied


def load_question(services: Services, question_id: str) -> Question:
    with session_scope(services.sessions) as session:
        return get_question(session=session, question_id=question_id)


def question_url(request: Request, question_id: str) -> str:
    return str(request.url_for("get_question_record", question_id=question_id))


def _accepted(request: Request, services: Services, question: Question) -> JSONResponse:
    url = question_url(request, question.id)
    links = Links(self=url, events=f"{url}/events")
    body = AcceptedResponse(question_id=question.id, status=question.status, links=links)
    return JSONResponse(
        status_code=202,
        content=body.model_dump(mode="json"),
        headers={"Location": url, "Retry-After": str(services.settings.retry_after_seconds)},
    )


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
    wait: WaitQuery = None,
    prefer: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key returns the same question, never a second.",
        ),
    ] = None,
) -> AnswerResponse | JSONResponse:
    """Ask a question; wait for the answer (200) or come back for it (202 + `Location`)."""
    settings = services.settings
    wait_seconds, applied = parse_prefer(
        prefer, default=settings.ask_wait_seconds, maximum=settings.max_wait_seconds
    )
    if wait is not None:
        wait_seconds = min(wait, settings.max_wait_seconds)
    key = f"{client_identity(request.scope, bearer_token(request.scope))}:{idempotency_key}"
    submitted = await run_in_threadpool(
        lambda: submit_question(
            sessions=services.sessions,
            producer=services.producer,
            text=body.question,
            context_method=body.context_method,
            idempotency_key=key if idempotency_key else None,
            max_queue_depth=settings.max_queue_depth,
            retry_after=settings.retry_after_seconds * 5,
            request_id=request_id_var.get(),
        )
    )
    question_id, enqueued = submitted.question_id, submitted.queued
    question = await services.waiter.wait_for(
        question_id,
        timeout=wait_seconds if enqueued else 0,
        load=lambda: run_in_threadpool(load_question, services, question_id),
    )
    # An asynchronous ask is answered 202 at once, even when a worker was quicker.
    respond_async = wait_seconds <= 0 or not enqueued
    if question.status is QuestionStatus.FAILED and not respond_async:
        return _failed(question)
    if question.status is not QuestionStatus.COMPLETED or respond_async:
        reply = _accepted(request, services, question)
        if applied:
            reply.headers["Preference-Applied"] = ", ".join(applied)
        return reply
    return AnswerResponse.from_question(question)


@router.get(
    "/questions/{question_id}",
    response_model=QuestionRecord,
    name="get_question_record",
    responses={404: {"model": ErrorResponse}},
)
async def get_question_record(
    question_id: str, request: Request, services: ServicesDep, wait: WaitQuery = None
) -> QuestionRecord:
    """A question in any status; `?wait=N` holds the request until it is answered or N s pass."""
    question = await services.waiter.wait_for(
        question_id,
        timeout=min(wait or 0, services.settings.max_wait_seconds),
        load=lambda: run_in_threadpool(load_question, services, question_id),
    )
    return QuestionRecord.from_question(question, url=question_url(request, question_id))


@router.get("/history", response_model=HistoryResponse, responses={422: {"model": ErrorResponse}})
def history(
    services: ServicesDep,
    n: Annotated[int, Query(ge=1, le=100, description="How many answers to list.")] = 10,
    search: Annotated[
        str | None,
        Query(min_length=2, max_length=200, description="Text the question must contain."),
    ] = None,
) -> HistoryResponse:
    """Answered questions, newest first."""
    with session_scope(services.sessions) as session:
        questions, total = list_history(session=session, limit=n, search=search)
        return HistoryResponse.from_questions(questions, total=total)
