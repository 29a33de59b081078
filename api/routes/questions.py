"""Asking questions, following them, and reading past answers."""

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import Services, ServicesDep
from api.middleware import bearer_token, client_identity
from shared.core.db import session_scope
from shared.core.errors import STATUS_BY_CODE, BrokerUnavailable, IdempotencyConflict, QueueFull
from shared.core.logs import request_id_var
from shared.core.queue import enqueue_answer
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
    count_waiting,
    create_question,
    find_by_idempotency_key,
    get_question,
    list_history,
    mark_enqueue_failed,
)

logger = logging.getLogger(__name__)
router = APIRouter(tags=["questions"])

WaitQuery = Annotated[
    float | None,
    Query(ge=0, le=120, description="Seconds to wait for the answer (0 answers 202 at once)."),
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
                wait = min(max(float(value.strip().strip('"')), 0.0), maximum)
            except ValueError:
                continue
            applied.append(f"wait={value.strip()}")
    if respond_async:
        applied.insert(0, "respond-async")
        if not any(p.startswith("wait=") for p in applied):
            wait = 0.0
    return wait, applied


def _existing(session: Session, key: str, body: AskRequest) -> str | None:
    question = find_by_idempotency_key(session=session, key=key)
    if question is None:
        return None
    if question.question != body.question:
        raise IdempotencyConflict("this Idempotency-Key was used for a different question")
    return question.id


def _submit(services: Services, body: AskRequest, idempotency_key: str | None) -> tuple[str, bool]:
    """Store the question (or find the one this key already stored) and queue it; returns the
    id and whether a task is on its way."""
    settings = services.settings
    try:
        with session_scope(services.sessions) as session:
            if idempotency_key and (found := _existing(session, idempotency_key, body)):
                return found, True
            waiting = count_waiting(session=session) if settings.max_queue_depth else 0
            if settings.max_queue_depth and waiting >= settings.max_queue_depth:
                raise QueueFull(
                    f"{waiting} questions are waiting; please retry later",
                    retry_after=settings.retry_after_seconds * 5,
                )
            question_id = create_question(
                session=session,
                text=body.question,
                context_method=body.context_method,
                idempotency_key=idempotency_key,
            ).id
    except IntegrityError:  # the same key, at the same moment, from another request
        with session_scope(services.sessions) as session:
            found = _existing(session, idempotency_key or "", body)
        if found is None:
            raise
        return found, True
    # After the commit: the worker must find the row when it takes the task.
    try:
        enqueue_answer(services.producer, question_id=question_id, request_id=request_id_var.get())
    except BrokerUnavailable as exc:
        # Accepted all the same: the reconciler queues it once the broker is back.
        logger.error("question %s stored but not queued: %s", question_id, exc.message)
        with session_scope(services.sessions) as session:
            mark_enqueue_failed(session=session, question_id=question_id)
        return question_id, False
    return question_id, True


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
        wait_seconds = wait
    key = f"{client_identity(request.scope, bearer_token(request.scope))}:{idempotency_key}"
    question_id, enqueued = await run_in_threadpool(
        _submit, services, body, key if idempotency_key else None
    )
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
        timeout=wait or 0,
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
