"""The event protocol between the workers, the API and the customer's browser, over Redis.

Two paths:

- a pub/sub channel on which status changes of questions are announced, so that API requests
  waiting for an answer wake up and each API process learns the words of an answer just cached
  (`QuestionEvent`);
- one Redis stream per conversation holding its events in order, so that a client that connects
  late first receives what it missed. Every event has a `type` and a JSON `data`:

  | type      | data                                   | written by                          |
  |-----------|----------------------------------------|-------------------------------------|
  | `message` | a stored message (id, role, text, …)   | API (customer, agent), worker       |
  | `turn`    | {question_id, status}                  | worker (running, completed, failed) |
  | `token`   | {question_id, text}                    | worker, while the answer is written |
  | `reset`   | {question_id}                          | worker: discard that turn's text    |
  | `status`  | {status, reason?}                      | API, worker: the conversation's     |

The stream expires `EVENT_LOG_TTL_SECONDS` after its last event; the database stays the truth.
"""

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

logger = logging.getLogger(__name__)

QUESTION_EVENTS_CHANNEL = "support-assistant:question-events"
EVENT_LOG_TTL_SECONDS = 24 * 3600
EVENT_LOG_MAX_LENGTH = 5000


class EventType(StrEnum):
    MESSAGE = "message"
    TURN = "turn"
    TOKEN = "token"
    RESET = "reset"
    STATUS = "status"


@dataclass(frozen=True)
class QuestionEvent:
    question_id: str
    status: str
    # The normalised words its answer was just cached under: every API process knows at once
    # that a first message in these words is answered on arrival (`CachedQuestions.learn`).
    cached: str | None = None

    def encode(self) -> str:
        data = {"question_id": self.question_id, "status": self.status}
        if self.cached is not None:
            data["cached"] = self.cached
        return json.dumps(data)

    @classmethod
    def decode(cls, raw: str | bytes) -> "QuestionEvent":
        """Raises ValueError or KeyError for anything but an event."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"not an event: {raw!r}")
        cached = data.get("cached")
        return cls(
            question_id=str(data["question_id"]),
            status=str(data["status"]),
            cached=cached if isinstance(cached, str) else None,
        )


def publish_question_event(client: redis.Redis, event: QuestionEvent) -> None:
    """Tell every listening API process that a question changed status."""
    client.publish(QUESTION_EVENTS_CHANNEL, event.encode())


def conversation_stream_key(conversation_id: str) -> str:
    return f"support-assistant:conversation:{conversation_id}:events"


def decode_event(fields: dict[bytes, bytes]) -> tuple[EventType, dict[str, Any]]:
    """One stream entry as (type, data)."""
    return EventType(fields[b"type"].decode()), json.loads(fields[b"data"])


class ConversationEvents:
    """Appends a conversation's events to its stream; a Redis hiccup never fails the caller (the
    database record stays the truth, and the stream falls back to it)."""

    def __init__(self, client: redis.Redis, conversation_id: str) -> None:
        self.client = client
        self.key = conversation_stream_key(conversation_id)
        self._broken = False

    def append(self, kind: EventType, data: dict[str, Any]) -> None:
        self.append_all([(kind, data)])

    def append_all(self, events: list[tuple[EventType, dict[str, Any]]]) -> None:
        """Append `events` in order, in one round trip."""
        if self._broken:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for kind, data in events:
                pipe.xadd(
                    self.key,
                    {"type": kind.value, "data": json.dumps(data)},
                    maxlen=EVENT_LOG_MAX_LENGTH,
                    approximate=True,
                )
            pipe.expire(self.key, EVENT_LOG_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:
            self._broken = True
            logger.warning("cannot write events of %s; streaming stops", self.key, exc_info=True)

    def message(self, message: dict[str, Any]) -> None:
        self.append(EventType.MESSAGE, message)

    def turn(self, question_id: str, status: str) -> None:
        self.append(*_turn(question_id, status))

    def received(
        self, message: dict[str, Any], *, reply: dict[str, Any] | None, question_id: str | None
    ) -> None:
        """A customer's message and, when it was answered as it arrived (from the answer cache),
        the reply and the completed turn: in this order, in one round trip."""
        events = [(EventType.MESSAGE, message)]
        if reply is not None and question_id is not None:
            events += [(EventType.MESSAGE, reply), _turn(question_id, "completed")]
        self.append_all(events)

    def token(self, question_id: str, text: str) -> None:
        self.append(EventType.TOKEN, {"question_id": question_id, "text": text})

    def reset(self, question_id: str) -> None:
        self.append(EventType.RESET, {"question_id": question_id})

    def status(self, status: str, *, reason: str | None = None) -> None:
        self.append(EventType.STATUS, {"status": status, **({"reason": reason} if reason else {})})


def _turn(question_id: str, status: str) -> tuple[EventType, dict[str, Any]]:
    """A question of the conversation changed status (`completed`: its reply is in the stream)."""
    return EventType.TURN, {"question_id": question_id, "status": status}


def forget_conversation(client: redis.Redis, conversation_id: str) -> None:
    """Delete everything Redis keeps of a conversation."""
    client.delete(conversation_stream_key(conversation_id))
