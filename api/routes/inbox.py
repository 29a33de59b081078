"""The support team's inbox: conversations handed to people, and what a person does with one —
assign, reply, resolve, hand back. Operators' keys only."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import PRINTABLE, OperatorDep, Services, ServicesDep, require_operator
from shared.conversations.models import Conversation, ConversationStatus, Message
from shared.conversations.schemas import ConversationView, FeedbackView, MessageView
from shared.conversations.service import (
    get_conversation,
    list_messages,
    message_payload,
    ratings_of,
)
from shared.core.db import read_scope, session_scope
from shared.core.events import ConversationEvents
from shared.core.queue import COMPARE_SUGGESTION_TASK, send
from shared.core.schemas import ErrorResponse
from shared.inbox import service as inbox_service
from shared.inbox.schemas import (
    AgentRequest,
    AssignRequest,
    HandoffView,
    Inbox,
    ReplyRequest,
)
from shared.learning.service import draft_suggestion

router = APIRouter(tags=["inbox"], dependencies=[Depends(require_operator)])

ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "Not an operator's key."},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "Not possible in the conversation's state."},
}


class ConversationState(BaseModel):
    conversation_id: str
    status: ConversationStatus
    assignee: str | None
    suggestion_id: str | None = None  # resolving with a person's reply drafted this


def _state(conversation: Conversation, suggestion_id: str | None = None) -> ConversationState:
    return ConversationState(
        conversation_id=conversation.id,
        status=conversation.status,
        assignee=conversation.assignee,
        suggestion_id=suggestion_id,
    )


class TeamConversation(BaseModel):
    """A conversation as the support team sees it: every message, its handoffs with their
    packets, and the customer's ratings."""

    conversation: ConversationView
    assignee: str | None
    handoffs: list[HandoffView]
    ratings: list[FeedbackView]


@router.get("/inbox", response_model=Inbox, responses=ERRORS)
def list_inbox(
    services: ServicesDep,
    status: Annotated[
        list[ConversationStatus] | None,
        Query(description="waiting_for_agent, assigned (default: both)."),
    ] = None,
    assignee: Annotated[str | None, Query(pattern=PRINTABLE, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Inbox:
    """Conversations waiting for a person or owned by one, the longest waiting first."""
    with read_scope(services.sessions) as session:
        items = inbox_service.inbox(
            session=session, statuses=status, assignee=assignee, limit=limit
        )
    return Inbox(conversations=items, count=len(items))


@router.get("/inbox/{conversation_id}", response_model=TeamConversation, responses=ERRORS)
def team_conversation(conversation_id: str, services: ServicesDep) -> TeamConversation:
    """One conversation with everything a person needs to take it over."""
    with read_scope(services.sessions) as session:
        conversation = get_conversation(session=session, conversation_id=conversation_id)
        messages = list_messages(session=session, conversation_id=conversation_id)
        ratings = ratings_of(session=session, conversation_id=conversation_id)
        handoffs = inbox_service.handoffs_of(session=session, conversation_id=conversation_id)
        return TeamConversation(
            conversation=ConversationView.build(conversation, messages, ratings),
            assignee=conversation.assignee,
            handoffs=[inbox_service.handoff_view(h) for h in handoffs],
            ratings=[FeedbackView.from_feedback(f) for f in ratings.values()],
        )


def _announce(services: Services, state: ConversationState, message: Message | None = None) -> None:
    events = ConversationEvents(services.sync_redis, state.conversation_id)
    if message is not None:
        events.message(message_payload(message))
    events.status(state.status.value)


@router.post(
    "/conversations/{conversation_id}/assign", response_model=ConversationState, responses=ERRORS
)
def assign_conversation(
    conversation_id: str, body: AssignRequest, services: ServicesDep
) -> ConversationState:
    """`agent` owns the conversation: the customer's messages go to them, not to the model."""
    with session_scope(services.sessions) as session:
        conversation = inbox_service.assign(
            session=session, conversation_id=conversation_id, agent=body.agent
        )
        state = _state(conversation)
    _announce(services, state)
    return state


@router.post(
    "/conversations/{conversation_id}/replies",
    response_model=MessageView,
    status_code=201,
    responses=ERRORS,
)
def reply_to_customer(
    conversation_id: str, body: ReplyRequest, services: ServicesDep
) -> MessageView:
    """A person's reply, delivered at once: an `agent` message in the conversation and on its
    event stream. A conversation nobody owned becomes the replier's."""
    with session_scope(services.sessions) as session:
        message = inbox_service.reply(
            session=session, conversation_id=conversation_id, agent=body.agent, text=body.text
        )
        conversation = get_conversation(session=session, conversation_id=conversation_id)
        state = _state(conversation)
        view = MessageView.from_message(message)
    _announce(services, state, message)
    services.counters.agent_replies.inc()
    return view


@router.post(
    "/conversations/{conversation_id}/resolve",
    response_model=ConversationState,
    responses=ERRORS,
)
def resolve_conversation(
    conversation_id: str,
    services: ServicesDep,
    operator: OperatorDep,
    body: AgentRequest | None = None,
) -> ConversationState:
    """The matter is settled. When a person answered the handoff, their answer is drafted as a
    knowledge suggestion for review (`GET /knowledge/suggestions`)."""
    agent = body.agent if body else None
    with session_scope(services.sessions) as session:
        resolution = inbox_service.resolve(
            session=session, conversation_id=conversation_id, agent=agent or operator.identity
        )
        suggestion = (
            draft_suggestion(session=session, handoff=resolution.handoff)
            if resolution.handoff is not None and resolution.answered_by_person
            else None
        )
        conversation = resolution.conversation
        state = _state(conversation, suggestion.id if suggestion else None)
    _announce(services, state)
    services.counters.resolutions.inc()
    if state.suggestion_id is not None:
        services.counters.suggestions.labels("drafted").inc()
        send(services.producer, COMPARE_SUGGESTION_TASK, suggestion_id=state.suggestion_id)
    return state


@router.post(
    "/conversations/{conversation_id}/handback",
    response_model=ConversationState,
    responses=ERRORS,
)
def hand_back_conversation(conversation_id: str, services: ServicesDep) -> ConversationState:
    """The assistant answers the customer's next message again."""
    with session_scope(services.sessions) as session:
        conversation = inbox_service.hand_back(session=session, conversation_id=conversation_id)
        state = _state(conversation)
    _announce(services, state)
    services.counters.handbacks.inc()
    return state
