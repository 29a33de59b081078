"""Handing a conversation to the support team and what a person does with it: assign, reply,
resolve, hand back. Callers own the transaction."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from shared.conversations.service import WITH_THE_TEAM, add_message, get_conversation
from shared.core.db import utcnow
from shared.core.errors import InvalidState
from shared.inbox.models import Handoff
from shared.inbox.schemas import HandoffView, InboxItem, Packet, PacketSource
from shared.inbox.webhook import WebhookStatus
from shared.questions.models import Question

OPERATOR_REASON = "operator"  # a person took the conversation over without a handoff


def packet_of(*, question: Question | None, reason: str, customer_message: str) -> Packet:
    """The handoff packet of the question the assistant did not answer."""
    sources = [PacketSource(**s) for s in (question.sources or [])] if question else []
    return Packet(
        question_id=question.id if question else None,
        customer_message=customer_message,
        standalone_question=question.standalone_question if question else None,
        sources=sources,
        confidence=question.confidence if question else None,
        reason=reason,
        draft=question.rejected_draft if question else None,
        fallback_reason=question.fallback_reason if question else None,
        error=question.error_code if question else None,
    )


def hand_off(
    *, session: Session, conversation: Conversation, reason: str, question: Question | None
) -> Handoff | None:
    """Pass the conversation to the support team with the packet of `question`; None when the
    team has it already (one handoff at a time)."""
    if conversation.status in WITH_THE_TEAM:
        return None
    now = utcnow()
    customer_message = question.question if question else _last_customer_text(session, conversation)
    packet = packet_of(question=question, reason=reason, customer_message=customer_message or "")
    handoff = Handoff(
        conversation_id=conversation.id,
        question_id=question.id if question else None,
        reason=reason,
        packet=packet.model_dump(mode="json"),
        created_at=now,
        webhook_attempts=0,
    )
    session.add(handoff)
    conversation.status = ConversationStatus.WAITING_FOR_AGENT
    conversation.handoff_reason, conversation.handoff_at = reason, now
    conversation.assignee, conversation.resolved_at, conversation.resolved_by = None, None, None
    conversation.updated_at = now
    session.flush()
    return handoff


def open_handoff(*, session: Session, conversation_id: str) -> Handoff | None:
    """The conversation's handoff that no one has closed yet."""
    query = select(Handoff).where(
        Handoff.conversation_id == conversation_id, Handoff.closed_at.is_(None)
    )
    return session.scalar(query.order_by(Handoff.created_at.desc()).limit(1))


def handoffs_of(*, session: Session, conversation_id: str) -> list[Handoff]:
    query = select(Handoff).where(Handoff.conversation_id == conversation_id)
    return list(session.scalars(query.order_by(Handoff.created_at)))


def _last_customer_text(session: Session, conversation: Conversation) -> str | None:
    query = select(Message.text).where(
        Message.conversation_id == conversation.id, Message.role == MessageRole.CUSTOMER
    )
    return session.scalar(query.order_by(Message.created_at.desc()).limit(1))


def handoff_view(handoff: Handoff) -> HandoffView:
    return HandoffView(
        id=handoff.id,
        reason=handoff.reason,
        created_at=handoff.created_at,
        answered_at=handoff.answered_at,
        closed_at=handoff.closed_at,
        outcome=handoff.outcome,
        webhook_status=handoff.webhook_status,
        webhook_attempts=handoff.webhook_attempts,
        packet=Packet.model_validate(handoff.packet),
    )


def inbox(
    *,
    session: Session,
    statuses: list[ConversationStatus] | None = None,
    assignee: str | None = None,
    limit: int = 100,
) -> list[InboxItem]:
    """Conversations with the support team, the longest waiting first."""
    query = select(Conversation).where(Conversation.status.in_(statuses or WITH_THE_TEAM))
    if assignee is not None:
        query = query.where(Conversation.assignee == assignee)
    query = query.order_by(Conversation.handoff_at.is_(None), Conversation.handoff_at)
    now = utcnow()
    items = []
    for conversation in session.scalars(query.limit(limit)):
        handoff = open_handoff(session=session, conversation_id=conversation.id)
        since = conversation.handoff_at or conversation.updated_at
        items.append(
            InboxItem(
                conversation_id=conversation.id,
                status=conversation.status,
                assignee=conversation.assignee,
                waiting_seconds=round((now - since).total_seconds(), 1),
                last_customer_message=_last_customer_text(session, conversation),
                handoff=handoff_view(handoff) if handoff is not None else None,
            )
        )
    return items


def assign(*, session: Session, conversation_id: str, agent: str) -> Conversation:
    """`agent` owns the conversation: the customer's messages go to them, not to the model."""
    conversation = get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    if open_handoff(session=session, conversation_id=conversation_id) is None:
        hand_off(session=session, conversation=conversation, reason=OPERATOR_REASON, question=None)
    conversation.status, conversation.assignee = ConversationStatus.ASSIGNED, agent
    conversation.resolved_at, conversation.resolved_by = None, None
    conversation.updated_at = utcnow()
    session.flush()
    return conversation


def reply(*, session: Session, conversation_id: str, agent: str, text: str) -> Message:
    """A person's message to the customer; a conversation nobody owned is now theirs."""
    conversation = get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    if conversation.status is not ConversationStatus.ASSIGNED or conversation.assignee is None:
        assign(session=session, conversation_id=conversation_id, agent=agent)
    message = add_message(
        session=session,
        conversation=conversation,
        role=MessageRole.AGENT,
        text=text,
        author=agent,
    )
    handoff = open_handoff(session=session, conversation_id=conversation_id)
    if handoff is not None and handoff.answered_at is None:
        handoff.answered_at = message.created_at
    return message


@dataclass(frozen=True)
class Resolution:
    conversation: Conversation
    handoff: Handoff | None  # the handoff it closed
    answered_by_person: bool  # a person replied since the handoff: there is something to learn


def resolve(*, session: Session, conversation_id: str, agent: str | None) -> Resolution:
    conversation = get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    if conversation.status is ConversationStatus.RESOLVED:
        raise InvalidState("the conversation is resolved already")
    handoff = _close(session, conversation_id, outcome="resolved")
    now = utcnow()
    conversation.status = ConversationStatus.RESOLVED
    conversation.resolved_at, conversation.resolved_by = now, agent or conversation.assignee
    conversation.updated_at = now
    session.flush()
    answered = handoff is not None and handoff.answered_at is not None
    return Resolution(conversation, handoff, answered)


def hand_back(*, session: Session, conversation_id: str) -> Conversation:
    """The assistant answers the customer's next message again."""
    conversation = get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    if conversation.status not in WITH_THE_TEAM:
        raise InvalidState("the support team does not have this conversation")
    _close(session, conversation_id, outcome="handed_back")
    conversation.status, conversation.assignee = ConversationStatus.OPEN, None
    conversation.updated_at = utcnow()
    session.flush()
    return conversation


def _close(session: Session, conversation_id: str, *, outcome: str) -> Handoff | None:
    handoff = open_handoff(session=session, conversation_id=conversation_id)
    if handoff is not None:
        handoff.closed_at, handoff.outcome = utcnow(), outcome
    return handoff


def unsent_webhooks(*, session: Session, older_than: float, limit: int = 50) -> list[str]:
    """Handoffs whose webhook was due `older_than` seconds ago and never tried (its task was
    lost)."""
    query = select(Handoff.id).where(
        Handoff.webhook_status == WebhookStatus.PENDING,
        Handoff.webhook_attempts == 0,
        Handoff.created_at < utcnow() - timedelta(seconds=older_than),
    )
    return list(session.scalars(query.order_by(Handoff.created_at).limit(limit)))
