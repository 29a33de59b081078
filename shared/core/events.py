"""Question events over Redis.

Two paths: a pub/sub channel on which workers announce status changes (waiting API requests wake
up), and a short-lived Redis stream per question holding its events in order — status changes,
the answer's text as it is generated, the end — so a client that connects late to the SSE endpoint
first receives everything so far.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger(__name__)

QUESTION_EVENTS_CHANNEL = "support-assistant:question-events"
EVENT_LOG_TTL_SECONDS = 3600
EVENT_LOG_MAX_LENGTH = 5000


@dataclass(frozen=True)
class QuestionEvent:
    question_id: str
    status: str

    def encode(self) -> str:
        return json.dumps({"question_id": self.question_id, "status": self.status})

    @classmethod
    def decode(cls, raw: str | bytes) -> "QuestionEvent":
        data = json.loads(raw)
        return cls(question_id=str(data["question_id"]), status=str(data["status"]))


def publish_question_event(client: redis.Redis, event: QuestionEvent) -> None:
    """Tell every listening API process that a question changed status."""
    client.publish(QUESTION_EVENTS_CHANNEL, event.encode())


def event_log_key(question_id: str) -> str:
    return f"support-assistant:question:{question_id}:events"


class QuestionEventLog:
    """Appends a question's events to its stream; a Redis hiccup never fails the answer."""

    def __init__(self, client: redis.Redis, question_id: str) -> None:
        self.client = client
        self.key = event_log_key(question_id)
        self._broken = False

    def append(self, kind: str, data: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(
                self.key,
                {"type": kind, "data": json.dumps(data)},
                maxlen=EVENT_LOG_MAX_LENGTH,
                approximate=True,
            )
            pipe.expire(self.key, EVENT_LOG_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:
            self._broken = True  # the database record stays the truth; SSE falls back to it
            logger.warning("cannot write events of %s; streaming stops", self.key, exc_info=True)

    def token(self, text: str) -> None:
        self.append("token", {"text": text})

    def reset(self) -> None:
        self.append("reset", {})

    def status(self, status: str) -> None:
        self.append("status", {"status": status})
