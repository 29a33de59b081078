"""Server-Sent Events from a conversation's event stream (the protocol: shared/core/events.py)."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from redis.exceptions import RedisError

from api.deps import Services
from shared.conversations.models import Conversation, Message
from shared.conversations.service import list_messages, message_payload
from shared.core.db import read_scope
from shared.core.errors import ConversationNotFound
from shared.core.events import EventType, conversation_stream_key, decode_event
from shared.questions.models import Question, QuestionStatus
from shared.questions.schemas import QuestionRecord
from shared.questions.service import get_question

Event = tuple[EventType, dict[str, Any]]


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


KEEP_ALIVE = ": keep-alive\n\n"


async def _tail(services: Services, conversation_id: str) -> AsyncIterator[Event | None]:
    """The stream's events from its start, then each new one; None after every quiet interval
    (time for a keep-alive, and to look at the database)."""
    key, last_id = conversation_stream_key(conversation_id), "0-0"
    block_ms = int(services.settings.sse_keepalive_seconds * 1000)
    while True:
        batch: Any
        try:
            batch = await services.redis.xread({key: last_id}, block=block_ms)
        except RedisError:
            batch = None
            await asyncio.sleep(min(services.settings.sse_keepalive_seconds, 1.0))
        if not batch:
            yield None
            continue
        for _key, entries in batch:
            for entry_id, fields in entries:
                last_id = entry_id
                yield decode_event(fields)


def _snapshot(services: Services, conversation_id: str) -> list[Message] | None:
    with read_scope(services.sessions) as session:
        try:
            return list_messages(session=session, conversation_id=conversation_id)
        except ConversationNotFound:
            return None


def _exists(services: Services, conversation_id: str) -> bool:
    with read_scope(services.sessions) as session:
        return session.get(Conversation, conversation_id) is not None


def _already_sent(
    kind: EventType, data: dict[str, Any], *, finished: set[Any], answered: set[Any]
) -> bool:
    """The text of a turn whose message is out, or a turn the snapshot showed as answered."""
    question = data.get("question_id")
    if kind in (EventType.TOKEN, EventType.RESET):
        return question in finished
    return kind is EventType.TURN and question in answered


async def conversation_events(
    services: Services, conversation_id: str, *, release: Callable[[], Awaitable[None]]
) -> AsyncIterator[str]:
    """Every message so far, the text of an answer being written, then each event as it comes.
    A message or a finished turn the snapshot already holds is not sent twice."""
    try:
        messages = await run_in_threadpool(_snapshot, services, conversation_id) or []
        seen = {m.id for m in messages}
        # Turns the snapshot shows as answered: their replayed events are history already.
        answered = {m.question_id for m in messages if m.role.value in ("assistant", "system")}
        # Turns answered while this stream is open: their `turn` completion still goes out.
        finished = set(answered)
        for message in messages:
            yield sse(EventType.MESSAGE, message_payload(message))
        async for event in _tail(services, conversation_id):
            if event is None:
                yield KEEP_ALIVE
                if not await run_in_threadpool(_exists, services, conversation_id):
                    yield sse(EventType.STATUS, {"status": "deleted"})
                    return
                continue
            kind, data = event
            if kind is EventType.MESSAGE:
                if data.get("id") in seen:
                    continue
                seen.add(data["id"])
                if data.get("role") in ("assistant", "system"):
                    finished.add(data.get("question_id"))
            if _already_sent(kind, data, finished=finished, answered=answered):
                continue
            yield sse(kind, data)
    finally:
        await release()


def _load_question(services: Services, question_id: str) -> Question:
    with read_scope(services.sessions) as session:
        return get_question(session=session, question_id=question_id)


async def question_events(
    services: Services, question: Question, *, url: str
) -> AsyncIterator[str]:
    """One question's events: `status`, `token`, `reset`, then `completed` or `failed` with the
    whole record (what happened before the client connected first)."""

    async def final() -> str:
        current = await run_in_threadpool(_load_question, services, question.id)
        record = QuestionRecord.from_question(current, url=url).model_dump(mode="json")
        return sse(current.status.value, record)

    yield sse("status", {"status": question.status.value})
    if question.status.is_terminal or question.conversation_id is None:
        if not question.status.is_terminal:
            while not (
                await run_in_threadpool(_load_question, services, question.id)
            ).status.is_terminal:
                yield KEEP_ALIVE
                await asyncio.sleep(services.settings.sse_keepalive_seconds)
        yield await final()
        return
    async for event in _tail(services, question.conversation_id):
        if event is None:
            yield KEEP_ALIVE
            # The database is the truth: a lost event stream must not leave the client waiting.
            if (await run_in_threadpool(_load_question, services, question.id)).status.is_terminal:
                yield await final()
                return
            continue
        kind, data = event
        if data.get("question_id") != question.id:
            continue
        if kind is EventType.TOKEN:
            yield sse("token", {"text": data["text"]})
        elif kind is EventType.RESET:
            yield sse("reset", {})
        elif kind is EventType.TURN:
            if QuestionStatus(data["status"]).is_terminal:
                yield await final()
                return
            yield sse("status", {"status": data["status"]})
