"""Asking questions, following them, and reading past answers."""

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import Services, ServicesDep
from shared.db import session_scope
from shared.errors import STATUS_BY_CODE, BrokerUnavailable
from shared.models import Question, QuestionStatus
from shared.questions import create_question, get_question, list_history
from shared.queue import enqueue_answer
from shared.schemas import (
    AcceptedResponse,
    AnswerErrorResponse,
    AnswerResponse,
    AskRequest,
    ErrorDetail,
    ErrorResponse,
    HistoryResponse,
    Links,
    QuestionRecord,
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


def _store_and_enqueue(services: Services, body: AskRequest) -> tuple[str, bool]:
    with session_scope(services.sessions) as session:
        question_id = create_question(
            session=session, text=body.question, context_method=body.context_method
        ).id
    # After the commit: the worker must find the row when it takes the task.
    try:
        enqueue_answer(services.producer, question_id=question_id)
    except BrokerUnavailable as exc:
        # The row is the truth: the reconciler queues it again once the broker is back.
        logger.error("question %s stored but not queued: %s", question_id, exc.message)
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
        422: {"model": ErrorResponse},
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
) -> AnswerResponse | JSONResponse:
    """Ask a question; wait for the answer (200) or come back for it (202 + `Location`)."""
    settings = services.settings
    wait_seconds, applied = parse_prefer(
        prefer, default=settings.ask_wait_seconds, maximum=settings.max_wait_seconds
    )
    if wait is not None:
        wait_seconds = wait
    question_id, enqueued = await run_in_threadpool(_store_and_enqueue, services, body)
    question = await services.waiter.wait_for(
        question_id,
        timeout=wait_seconds if enqueued else 0,
        load=lambda: run_in_threadpool(load_question, services, question_id),
    )
    if question.status is QuestionStatus.FAILED:
        return _failed(question)
    if question.status is not QuestionStatus.COMPLETED:
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
