"""Question events over Redis pub/sub: workers publish, waiting API requests wake up."""

import json
from dataclasses import dataclass

import redis

QUESTION_EVENTS_CHANNEL = "support-assistant:question-events"


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
