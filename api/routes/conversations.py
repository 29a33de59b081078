"""Conversations: each belongs to its customer — whoever holds its token, or the signed-in
customer it was started for — and to the support team (operators' keys)."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from redis.exceptions import RedisError

from api.deps import CustomerDep, PrincipalDep, Services, ServicesDep
from api.security import Principal
from api.streaming import conversation_events
from api.waiting import IdempotencyKeyHeader, PreferHeader, WaitQuery, requested_wait
from shared.conversations.models import Conversation
from shared.conversations.schemas import (
    ConversationCreated,
    ConversationLinks,
    ConversationList,
    ConversationSummary,
    ConversationView,
    FeedbackRequest,
    FeedbackView,
    MessageReply,
    MessageRequest,
    ReplyLinks,
)
from shared.conversations.service import (
    Submitted,
    create_conversation,
    delete_conversation,
    get_conversation,
    list_for_customer,
    list_messages,
    rate_message,
    ratings_of,
    reply_to,
    submit_message,
    token_matches,
)
from shared.core.db import read_scope, session_scope
from shared.core.errors import STATUS_BY_CODE, ConversationNotFound, Forbidden, Unauthorized
from shared.core.events import ConversationEvents, forget_conversation
from shared.core.logs import request_id_var
from shared.core.queue import waiting_tasks
from shared.core.schemas import ErrorResponse
from shared.questions.models import Question
from shared.questions.service import get_question

logger = logging.getLogger(__name__)
router = APIRouter(tags=["conversations"])

TokenHeader = Annotated[
    str | None,
    Header(description="The token given when the conversation was created."),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "A forged or expired identity token."},
    404: {"model": ErrorResponse, "description": "Unknown, or not the caller's."},
}


def conversation_url(request: Request, conversation_id: str) -> str:
    return str(request.url_for("get_conversation_view", conversation_id=conversation_id))


def message_url(request: Request, conversation_id: str, message_id: str) -> str:
    return str(
        request.url_for("get_message_reply", conversation_id=conversation_id, message_id=message_id)
    )


def allowed(
    conversation: Conversation, *, principal: Principal, token: str | None, customer: str | None
) -> bool:
    """Operators see every conversation; a customer, one whose token they hold or that was
    started for them (their signed identity)."""
    return principal.is_operator or is_its_customer(conversation, token=token, customer=customer)


def is_its_customer(conversation: Conversation, *, token: str | None, customer: str | None) -> bool:
    """The caller holds the conversation's token, or is the signed-in customer it was started for.
    A signed-in customer's conversation is theirs alone, whatever token another presents."""
    if conversation.customer_id is not None and customer is not None:
        return conversation.customer_id == customer
    return token_matches(conversation, token)


def load_allowed(
    services: Services,
    conversation_id: str,
    *,
    principal: Principal,
    token: str | None,
    customer: str | None,
) -> Conversation:
    """The conversation, if the caller may see it; otherwise it does not exist for them (404)."""
    with read_scope(services.sessions) as session:
        conversation = get_conversation(session=session, conversation_id=conversation_id)
        if not allowed(conversation, principal=principal, token=token, customer=customer):
            raise ConversationNotFound(conversation_id)
        return conversation


def submit(
    services: Services,
    *,
    text: str,
    context_method: str,
    idempotency_key: str | None,
    conversation_id: str | None = None,
    customer: str | None = None,
) -> Submitted:
    """Store and queue a customer's message (or answer it from the cache at once), then put it
    on its conversation's event stream. Blocking: call it in the thread pool, once per request."""
    settings = services.settings
    submitted = submit_message(
        sessions=services.sessions,
        producer=services.producer,
        text=text,
        conversation_id=conversation_id,
        customer_id=customer,
        context_method=context_method,
        idempotency_key=idempotency_key,
        max_queue_depth=settings.max_queue_depth,
        waiting=_waiting_tasks(services) if settings.max_queue_depth else 0,
        retry_after=settings.retry_after_seconds * 5,
        request_id=request_id_var.get(),
        same_words=services.same_words,
    )
    if submitted.new_message is not None:
        ConversationEvents(services.sync_redis, submitted.conversation_id).received(
            submitted.new_message, reply=submitted.reply, question_id=submitted.question_id
        )
    if submitted.answered is not None:
        services.counters.answered_on_arrival.inc()
    return submitted


def _waiting_tasks(services: Services) -> int:
    """The broker's backlog; unknown (0) while Redis is down, when the question is stored
    and queued later by the reconciler."""
    try:
        return waiting_tasks(services.sync_redis, services.settings.celery_queue)
    except RedisError as exc:
        logger.warning("cannot read the queue's depth: %s", exc)
        return 0


@router.post(
    "/conversations",
    response_model=ConversationCreated,
    status_code=201,
    responses={401: {"model": ErrorResponse}},
)
def start_conversation(
    request: Request, response: Response, services: ServicesDep, customer: CustomerDep
) -> ConversationCreated:
    """Start a conversation. Its token is shown here only: every customer-side call about it
    presents it (`X-Conversation-Token`)."""
    with session_scope(services.sessions) as session:
        conversation, token = create_conversation(session=session, customer_id=customer)
    url = conversation_url(request, conversation.id)
    response.headers["Location"] = url
    return ConversationCreated(
        conversation_id=conversation.id,
        token=token,
        status=conversation.status,
        links=ConversationLinks(self=url, messages=f"{url}/messages", events=f"{url}/events"),
    )


def _reply(
    services: Services, request: Request, conversation_id: str, message_id: str
) -> MessageReply:
    with read_scope(services.sessions) as session:
        question, reply = reply_to(
            session=session, conversation_id=conversation_id, message_id=message_id
        )
        url = message_url(request, conversation_id, message_id)
        links = ReplyLinks(
            self=url,
            events=f"{conversation_url(request, conversation_id)}/events",
            conversation=conversation_url(request, conversation_id),
        )
        return MessageReply.build(
            message_id=message_id,
            conversation_id=conversation_id,
            question=question,
            reply=reply,
            links=links,
        )


async def _wait_for_reply(
    services: Services,
    request: Request,
    conversation_id: str,
    message_id: str,
    question_id: str | None,
    seconds: float,
) -> MessageReply:
    if question_id is not None and seconds > 0:
        await services.waiter.wait_for(
            question_id,
            timeout=seconds,
            load=lambda: run_in_threadpool(_question_status, services, question_id),
        )
    return await run_in_threadpool(_reply, services, request, conversation_id, message_id)


def _question_status(services: Services, question_id: str) -> Question:
    with read_scope(services.sessions) as session:
        return get_question(session=session, question_id=question_id)


def _respond(
    reply: MessageReply, *, accepted: bool, retry_after: int, applied: list[str]
) -> JSONResponse:
    content = reply.model_dump(mode="json")
    if reply.status == "failed" and not accepted:
        code = reply.error.code if reply.error else "internal_error"
        return JSONResponse(status_code=STATUS_BY_CODE.get(code, 500), content=content)
    if reply.status in ("completed", "with_agent") and not accepted:
        return JSONResponse(status_code=200, content=content)
    headers = {"Location": reply.links.self, "Retry-After": str(retry_after)}
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    return JSONResponse(status_code=202, content=content, headers=headers)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageReply,
    responses={
        202: {"model": MessageReply, "description": "Accepted; follow `Location`."},
        **NOT_FOUND,
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        500: {"model": MessageReply},
        503: {"model": MessageReply},
    },
)
async def post_message(
    conversation_id: str,
    body: MessageRequest,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
    wait: WaitQuery = None,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Say something in the conversation; the assistant's reply comes back (200), or where to
    wait for it (202 + `Location`) — with the same waiting rules as `/ask`. While a person owns
    the conversation, the message goes to them (`status: with_agent`)."""
    settings = services.settings
    wait_seconds, applied = requested_wait(settings, prefer, wait)
    await run_in_threadpool(
        load_allowed,
        services,
        conversation_id,
        principal=principal,
        token=x_conversation_token,
        customer=customer,
    )
    await services.limiter.check(
        principal.identity, scope="messages", limit=settings.message_rate_limit_per_minute
    )
    key = f"{principal.identity}:{conversation_id}:{idempotency_key}" if idempotency_key else None
    submitted = await run_in_threadpool(
        lambda: submit(
            services,
            text=body.text,
            conversation_id=conversation_id,
            context_method=body.context_method,
            idempotency_key=key,
        )
    )
    reply = await _wait_for_reply(
        services,
        request,
        conversation_id,
        submitted.message_id,
        submitted.question_id,
        wait_seconds if submitted.queued else 0,
    )
    return _respond(
        reply,
        accepted=wait_seconds <= 0 or not (submitted.queued or submitted.answered),
        retry_after=settings.retry_after_seconds,
        applied=applied,
    )


@router.get(
    "/conversations/{conversation_id}/messages/{message_id}",
    response_model=MessageReply,
    name="get_message_reply",
    responses=NOT_FOUND,
)
async def get_message_reply(
    conversation_id: str,
    message_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
    wait: WaitQuery = None,
) -> MessageReply:
    """The reply to one of the customer's messages; `?wait=N` holds the request until it is
    answered or N s pass."""
    await run_in_threadpool(
        load_allowed,
        services,
        conversation_id,
        principal=principal,
        token=x_conversation_token,
        customer=customer,
    )
    reply = await run_in_threadpool(_reply, services, request, conversation_id, message_id)
    if wait and reply.question_id and reply.status in ("queued", "running"):
        async with services.streams.hold(principal.identity):
            reply = await _wait_for_reply(
                services,
                request,
                conversation_id,
                message_id,
                reply.question_id,
                min(wait, services.settings.max_wait_seconds),
            )
    return reply


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationView,
    name="get_conversation_view",
    responses=NOT_FOUND,
)
def get_conversation_view(
    conversation_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
) -> ConversationView:
    """The conversation and all its messages, oldest first."""
    conversation = load_allowed(
        services,
        conversation_id,
        principal=principal,
        token=x_conversation_token,
        customer=customer,
    )
    with read_scope(services.sessions) as session:
        messages = list_messages(session=session, conversation_id=conversation_id)
        ratings = ratings_of(session=session, conversation_id=conversation_id)
        return ConversationView.build(conversation, messages, ratings)


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/feedback",
    response_model=FeedbackView,
    responses={**NOT_FOUND, 403: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
def rate_reply(
    conversation_id: str,
    message_id: str,
    body: FeedbackRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
) -> FeedbackView:
    """The customer rates a reply of the assistant or of a person: `up` or `down`, with an
    optional comment. One rating per message; rating again changes it. Only the conversation's
    customer rates (its token or their identity): the support team reads the ratings."""
    conversation = load_allowed(
        services,
        conversation_id,
        principal=principal,
        token=x_conversation_token,
        customer=customer,
    )
    if not is_its_customer(conversation, token=x_conversation_token, customer=customer):
        raise Forbidden("only the conversation's customer rates its replies")
    with session_scope(services.sessions) as session:
        feedback = rate_message(
            session=session,
            conversation_id=conversation_id,
            message_id=message_id,
            rating=body.rating,
            comment=body.comment,
        )
        view = FeedbackView.from_feedback(feedback)
    services.counters.feedback.labels(view.rating.value).inc()
    return view


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."},
        **NOT_FOUND,
        429: {"model": ErrorResponse},
    },
)
async def stream_conversation(
    conversation_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
    token: Annotated[
        str | None, Query(description="The conversation's token, for EventSource (no headers).")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events of the whole conversation: first every message so far (and the text
    of an answer being written), then each `message`, `token`, `reset`, `turn` and `status`
    event as it happens. A browser's EventSource cannot send headers: it may pass the token as
    `?token=`."""
    offered = x_conversation_token or token
    await run_in_threadpool(
        load_allowed,
        services,
        conversation_id,
        principal=principal,
        token=offered,
        customer=customer,
    )
    await services.streams.acquire(principal.identity)
    return StreamingResponse(
        conversation_events(
            services, conversation_id, release=lambda: services.streams.release(principal.identity)
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete("/conversations/{conversation_id}", status_code=204, responses=NOT_FOUND)
def erase_conversation(
    conversation_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    customer: CustomerDep,
    x_conversation_token: TokenHeader = None,
) -> Response:
    """Erase the conversation everywhere it is kept: its messages and questions in the database,
    its events in Redis (logs never hold customers' text)."""
    load_allowed(
        services,
        conversation_id,
        principal=principal,
        token=x_conversation_token,
        customer=customer,
    )
    with session_scope(services.sessions) as session:
        delete_conversation(session=session, conversation_id=conversation_id)
    forget_conversation(services.sync_redis, conversation_id)
    return Response(status_code=204)


@router.get(
    "/me/conversations", response_model=ConversationList, responses={401: {"model": ErrorResponse}}
)
def my_conversations(services: ServicesDep, customer: CustomerDep) -> ConversationList:
    """The signed-in customer's conversations (needs an identity token), newest first."""
    if customer is None:
        raise Unauthorized("an identity token is needed (X-Identity-Token)")
    with read_scope(services.sessions) as session:
        conversations = list_for_customer(session=session, customer_id=customer)
        return ConversationList(
            conversations=[
                ConversationSummary(
                    conversation_id=c.id,
                    status=c.status,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                )
                for c in conversations
            ]
        )
