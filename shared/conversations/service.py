"""Service functions over conversations and their messages; callers own the transaction, except
where a function must queue a task after committing (`submit_message`)."""

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.answer_cache.service import SameWords, forget_answer
from shared.answering.courtesy import courtesy
from shared.answering.engine import Answer, repeat
from shared.answering.reuse import CachedAnswer
from shared.conversations.models import (
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageRole,
    Rating,
)
from shared.core.db import session_scope, utcnow
from shared.core.errors import ConversationNotFound, IdempotencyConflict, InvalidState, QueueFull
from shared.knowledge import KnowledgeBase
from shared.llm import Turn
from shared.questions.models import Question
from shared.questions.service import (
    complete_question,
    create_question,
    dispatch,
    find_by_idempotency_key,
)

logger = logging.getLogger(__name__)

HISTORY_MESSAGES = 12  # the most recent messages a follow-up is understood with
# Handed off: the support team has it, and the customer's messages go to a person.
WITH_THE_TEAM = (ConversationStatus.WAITING_FOR_AGENT, ConversationStatus.ASSIGNED)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_conversation(
    *, session: Session, customer_id: str | None = None
) -> tuple[Conversation, str]:
    """A new conversation, and the token its customer will present (shown once, kept hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    conversation = Conversation(
        id=str(uuid.uuid4()),  # known before the flush: the caller's one flush writes it all
        token_hash=hash_token(token),
        customer_id=customer_id,
        status=ConversationStatus.OPEN,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    return conversation, token


def get_conversation(
    *, session: Session, conversation_id: str, for_update: bool = False
) -> Conversation:
    """The conversation, or `ConversationNotFound`. `for_update` locks its row until the commit
    (on PostgreSQL), so that the assistant, the customer and a person changing its status one
    after the other never overwrite each other."""
    conversation = session.get(Conversation, conversation_id, with_for_update=for_update)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


def token_matches(conversation: Conversation, token: str | None) -> bool:
    """Whether `token` is this conversation's (compared in constant time)."""
    return token is not None and hmac.compare_digest(conversation.token_hash, hash_token(token))


def list_messages(*, session: Session, conversation_id: str) -> list[Message]:
    """The conversation's messages, oldest first."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    return list(session.scalars(query.order_by(Message.created_at, Message.id)))


def list_for_customer(*, session: Session, customer_id: str, limit: int = 50) -> list[Conversation]:
    """A customer's conversations, the most recently active first."""
    query = select(Conversation).where(Conversation.customer_id == customer_id)
    return list(session.scalars(query.order_by(Conversation.updated_at.desc()).limit(limit)))


def history_before(*, session: Session, conversation_id: str, message_id: str | None) -> list[Turn]:
    """The turns a follow-up is understood with: the messages before `message_id`."""
    messages = list_messages(session=session, conversation_id=conversation_id)
    cut = next((i for i, m in enumerate(messages) if m.id == message_id), len(messages))
    earlier = [m for m in messages[:cut] if m.role is not MessageRole.SYSTEM]
    return [Turn(role=m.role.value, text=m.text) for m in earlier[-HISTORY_MESSAGES:]]


def add_message(
    *,
    session: Session,
    conversation: Conversation,
    role: MessageRole,
    text: str,
    question_id: str | None = None,
    **fields: Any,
) -> Message:
    now = utcnow()
    message = Message(
        id=str(uuid.uuid4()),
        conversation_id=conversation.id,
        role=role,
        text=text,
        created_at=now,
        question_id=question_id,
        **fields,
    )
    session.add(message)
    conversation.updated_at = now
    return message


def message_payload(message: Message) -> dict[str, Any]:
    """A message as it is streamed and listed."""
    return {
        "id": message.id,
        "role": message.role.value,
        "text": message.text,
        "sources": message.sources or [],
        "action": message.action,
        "origin": message.origin,
        "question_id": message.question_id,
        "author": message.author,
        "created_at": message.created_at.isoformat(),
    }


@dataclass(frozen=True)
class Submitted:
    conversation_id: str
    message_id: str  # the customer's message
    question_id: str | None  # None: a person owns the conversation; the message waits for them
    # False: answered at once (`answered`), or stored while the broker was down (the reconciler
    # will queue it)
    queued: bool
    token: str | None = None  # a new conversation's token (shown once)
    new_message: dict[str, Any] | None = None  # the stored customer message, to be streamed
    answered: Question | None = None  # answered from the cache as it arrived: no task
    reply: dict[str, Any] | None = None  # then the assistant's message, to be streamed


def _same_key(session: Session, key: str, text: str) -> Question | None:
    question = find_by_idempotency_key(session=session, key=key)
    if question is not None and question.question != text:
        raise IdempotencyConflict("this Idempotency-Key was used for a different message")
    return question


def submit_message(
    *,
    sessions: sessionmaker[Session],
    producer: Celery,
    text: str,
    conversation_id: str | None = None,
    customer_id: str | None = None,
    context_method: str = "hybrid",
    idempotency_key: str | None = None,
    max_queue_depth: int = 0,
    waiting: int = 0,
    retry_after: int = 10,
    request_id: str | None = None,
    same_words: SameWords | None = None,
) -> Submitted:
    """Store a customer's message — in a new conversation when `conversation_id` is None — and
    queue its answer (or return the one this idempotency key already stored). A conversation a
    person owns takes the message for them, without asking the model. A conversation's first
    message whose words an earlier first message had is answered from the answer cache at once
    (`same_words`; nothing is queued, back-pressure does not apply).

    It commits before queuing — a worker must find the row when it takes the task — so it opens
    its own unit of work. `waiting` says how many questions waited for a worker (the broker's
    backlog, read before the transaction: no round trip to Redis while holding the database's
    write lock); at `max_queue_depth` a message for the assistant is refused."""
    # Whether to look, and in which base, is known before the unit of work (no Redis round trip
    # under SQLite's write lock); the answer is read in it, locked until it commits.
    base = _lookup_base(same_words, text)
    try:
        with session_scope(sessions) as session:
            if idempotency_key and (found := _same_key(session, idempotency_key, text)):
                return Submitted(
                    found.conversation_id or "", found.message_id or "", found.id, queued=True
                )
            conversation = None
            if conversation_id is not None:
                conversation = get_conversation(
                    session=session, conversation_id=conversation_id, for_update=True
                )
                if base is not None and _has_messages(session, conversation.id):
                    base = None  # a first message only
            # Read before anything is added: nothing pending to flush for it.
            cached = _repeated(session, same_words, text, context_method, base)
            token = None
            if conversation is None:
                conversation, token = create_conversation(session=session, customer_id=customer_id)
            message = add_message(
                session=session, conversation=conversation, role=MessageRole.CUSTOMER, text=text
            )
            payload = message_payload(message)
            if conversation.status in WITH_THE_TEAM:
                return Submitted(
                    conversation.id, message.id, None, queued=False, new_message=payload
                )
            if conversation.status is ConversationStatus.RESOLVED:  # a new matter
                conversation.status = ConversationStatus.OPEN
            answer = repeat(cached, model="", timings={"retrieval_ms": None}) if cached else None
            if answer is None and max_queue_depth and waiting >= max_queue_depth:
                raise QueueFull(
                    f"{waiting} questions are waiting; please retry later", retry_after=retry_after
                )
            question = create_question(
                session=session,
                text=text,
                context_method=context_method,
                idempotency_key=idempotency_key,
                conversation_id=conversation.id,
                message_id=message.id,
                answer=answer,
            )
            message.question_id = question.id
            if answer is not None:
                reply = _assistant_message(session, conversation, question.id, answer)
                return Submitted(
                    conversation.id,
                    message.id,
                    question.id,
                    queued=False,
                    token=token,
                    new_message=payload,
                    answered=question,
                    reply=message_payload(reply),
                )
            ids = (conversation.id, message.id, question.id)
    except IntegrityError:  # the same key, at the same moment, from another request
        with session_scope(sessions) as session:
            found = _same_key(session, idempotency_key or "", text)
        if found is None:
            raise
        return Submitted(found.conversation_id or "", found.message_id or "", found.id, queued=True)
    queued = dispatch(
        producer=producer, sessions=sessions, question_id=ids[2], request_id=request_id
    )
    return Submitted(*ids, queued=queued, token=token, new_message=payload)


def _lookup_base(same_words: SameWords | None, text: str) -> KnowledgeBase | None:
    """Where to look these words up, if the answer cache may hold them. The cache only saves
    work: when its words or the knowledge base cannot be read, the message is queued."""
    if same_words is None or courtesy(text) is not None:  # "hello" is answered in kind
        return None
    try:
        return same_words.base(text)
    except Exception:
        logger.warning("answer cache lookup failed; the message is queued", exc_info=True)
        return None


def _repeated(
    session: Session,
    same_words: SameWords | None,
    text: str,
    context_method: str,
    base: KnowledgeBase | None,
) -> CachedAnswer | None:
    """The cached answer to these words, read in a savepoint of the caller's unit of work: when
    the read fails, the message is stored and queued as any other."""
    if same_words is None or base is None:
        return None
    try:
        with session.begin_nested():
            return same_words.find(session, text, context_method, base=base)
    except Exception:
        logger.warning("answer cache lookup failed; the message is queued", exc_info=True)
        return None


def _has_messages(session: Session, conversation_id: str) -> bool:
    earlier = select(Message.id).where(Message.conversation_id == conversation_id).limit(1)
    return session.scalar(earlier) is not None


def reply_to(
    *, session: Session, conversation_id: str, message_id: str
) -> tuple[Question | None, Message | None]:
    """The question answering a customer message of this conversation, and its reply (raises
    `ConversationNotFound` when the message is not this conversation's)."""
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise ConversationNotFound(conversation_id)
    if message.question_id is None:
        return None, None
    question = session.get(Question, message.question_id)
    reply = session.scalar(
        select(Message).where(
            Message.question_id == message.question_id, Message.role == MessageRole.ASSISTANT
        )
    )
    return question, reply


@dataclass(frozen=True)
class Recorded:
    stored: bool  # False: another delivery stored the answer first; this one is dropped
    message: Message | None = None  # the assistant's message in the conversation
    conversation: Conversation | None = None


def record_answer(
    *, session: Session, question_id: str, answer: Answer, started_at: datetime
) -> Recorded:
    """Store the answer and, for a conversation's question, its assistant message — unless
    another delivery already stored it."""
    if not complete_question(
        session=session, question_id=question_id, answer=answer, started_at=started_at
    ):
        return Recorded(stored=False)
    conversation = _conversation_of(session, question_id)
    if conversation is None:  # a question of no conversation, or one deleted meanwhile
        return Recorded(stored=True)
    message = _assistant_message(session, conversation, question_id, answer)
    return Recorded(stored=True, message=message, conversation=conversation)


def _assistant_message(
    session: Session, conversation: Conversation, question_id: str, answer: Answer
) -> Message:
    return add_message(
        session=session,
        conversation=conversation,
        role=MessageRole.ASSISTANT,
        text=answer.text,
        question_id=question_id,
        sources=answer.sources,
        action=answer.action.value,
        origin=answer.origin.value,
    )


def note_failure(
    *, session: Session, question_id: str, text: str
) -> tuple[Message, Conversation] | None:
    """Tell a failed question's conversation, in a system message, that it was not answered."""
    conversation = _conversation_of(session, question_id)
    if conversation is None:
        return None
    message = add_message(
        session=session,
        conversation=conversation,
        role=MessageRole.SYSTEM,
        text=text,
        question_id=question_id,
    )
    return message, conversation


def _conversation_of(session: Session, question_id: str) -> Conversation | None:
    conversation_id = session.scalar(
        select(Question.conversation_id).where(Question.id == question_id)
    )
    if not conversation_id:
        return None
    return session.get(Conversation, conversation_id, with_for_update=True)


RATED_ROLES = (MessageRole.ASSISTANT, MessageRole.AGENT)


def rate_message(
    *,
    session: Session,
    conversation_id: str,
    message_id: str,
    rating: Rating,
    comment: str | None,
) -> Feedback:
    """The customer's rating of an assistant's or a person's message; rating again changes it."""
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise ConversationNotFound(conversation_id)
    if message.role not in RATED_ROLES:
        raise InvalidState("only the assistant's and the support team's messages can be rated")
    now = utcnow()
    feedback = session.scalar(select(Feedback).where(Feedback.message_id == message_id))
    if feedback is None:
        try:
            with session.begin_nested():  # two first ratings at once: the second updates
                feedback = Feedback(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    rating=rating,
                    comment=comment,
                    created_at=now,
                    updated_at=now,
                )
                session.add(feedback)
            _forget_if_rated_down(session, message, rating)
            return feedback
        except IntegrityError:
            feedback = session.scalars(
                select(Feedback).where(Feedback.message_id == message_id)
            ).one()
    feedback.rating, feedback.comment, feedback.updated_at = rating, comment, now
    session.flush()
    _forget_if_rated_down(session, message, rating)
    return feedback


def _forget_if_rated_down(session: Session, message: Message, rating: Rating) -> None:
    """An answer rated down is never repeated from the answer cache."""
    if rating is Rating.DOWN and message.question_id is not None:
        forget_answer(session=session, question_id=message.question_id)


def ratings_of(*, session: Session, conversation_id: str) -> dict[str, Feedback]:
    """The conversation's ratings by message id."""
    query = select(Feedback).where(Feedback.conversation_id == conversation_id)
    return {feedback.message_id: feedback for feedback in session.scalars(query)}


def delete_conversation(*, session: Session, conversation_id: str) -> None:
    """Erase the conversation: its questions, messages and itself, and with them (the database's
    cascades) its ratings, handoffs, knowledge suggestions and cached answers."""
    get_conversation(session=session, conversation_id=conversation_id)
    session.execute(delete(Question).where(Question.conversation_id == conversation_id))
    session.execute(delete(Message).where(Message.conversation_id == conversation_id))
    session.execute(delete(Conversation).where(Conversation.id == conversation_id))


def expired_conversations(*, session: Session, days: float, limit: int = 500) -> list[str]:
    """Conversations with no activity for `days` days."""
    before = utcnow() - timedelta(days=days)
    query = select(Conversation.id).where(Conversation.updated_at < before)
    return list(session.scalars(query.order_by(Conversation.updated_at).limit(limit)))
