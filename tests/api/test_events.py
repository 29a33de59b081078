"""Server-Sent Events over real HTTP: a uvicorn API process and real worker processes."""

import json
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from shared.core.config import ProviderName, Settings
from shared.core.events import ConversationEvents
from shared.llm.embedded import embedded_available
from tests.conftest import ApiProcess, StartWorker

pytestmark = pytest.mark.integration
StartApi = Callable[[Settings], ApiProcess]


def read_events(
    response: httpx.Response, *, until: set[str], timeout: float = 60
) -> Iterator[tuple[str, object]]:
    """(event, data) pairs, and ("comment", text) for keep-alives, until an event in `until`."""
    event, data = None, []
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {until} event within {timeout} s")
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and event is not None:
            yield event, json.loads("\n".join(data))
            if event in until:
                return
            event, data = None, []


@pytest.fixture(scope="module")
def embedded_settings(base_settings: Settings) -> Settings:
    if not embedded_available():
        pytest.skip("llama-cpp-python is not installed")
    return base_settings.model_copy(
        update={
            "celery_queue": f"sse-{uuid.uuid4().hex[:6]}",
            "llm_provider": ProviderName.EMBEDDED,
            "sse_keepalive_seconds": 0.5,
        }
    )


@pytest.mark.slow
def test_events_stream_status_tokens_and_the_final_record(
    embedded_settings: Settings, start_worker: StartWorker, start_api: StartApi
) -> None:
    start_worker(embedded_settings, concurrency=1)
    api = start_api(embedded_settings)
    accepted = httpx.post(
        f"{api.base}/api/v1/ask", json={"question": "Can I cancel my order?"},
        headers={"Prefer": "respond-async"}, timeout=10,
    )  # fmt: skip
    assert accepted.status_code == 202
    events_url = accepted.json()["links"]["events"]
    with httpx.stream("GET", events_url, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(read_events(response, until={"completed", "failed"}))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "completed"
    assert "token" in kinds
    record = events[-1][1]
    assert isinstance(record, dict) and record["status"] == "completed"
    assert record["provider"] == "embedded"
    last_reset = max((i for i, k in enumerate(kinds) if k == "reset"), default=-1)
    streamed = "".join(
        data["text"]
        for kind, data in events[last_reset + 1 :]
        if kind == "token"  # type: ignore[index]
    )
    assert streamed.strip() == record["answer"].strip()

    # A client that connects after the end gets the whole record at once.
    with httpx.stream("GET", events_url, timeout=10) as late:
        again = list(read_events(late, until={"completed", "failed"}))
    assert [k for k, _ in again] == ["status", "completed"]
    assert again[-1][1]["answer"] == record["answer"]  # type: ignore[index]


def test_queued_question_gets_keep_alives_then_replays_what_came_before(
    base_settings: Settings, start_worker: StartWorker, start_api: StartApi
) -> None:
    paused = base_settings.model_copy(
        update={"celery_queue": f"later-{uuid.uuid4().hex[:6]}", "sse_keepalive_seconds": 0.3}
    )
    api = start_api(paused)
    accepted = httpx.post(
        f"{api.base}/api/v1/ask", params={"wait": 0}, json={"question": "How do I track my order?"},
        timeout=10,
    )  # fmt: skip
    question_id = accepted.json()["question_id"]
    # Events written before the client connects are replayed to it first.
    client = redis.Redis.from_url(paused.redis_url)
    ConversationEvents(client, accepted.json()["conversation_id"]).token(
        question_id, "earlier text "
    )
    client.close()
    with httpx.stream("GET", accepted.json()["links"]["events"], timeout=30) as response:
        seen: list[tuple[str, object]] = []
        for kind, data in read_events(response, until={"completed", "failed"}):
            seen.append((kind, data))
            if kind == "comment" and not any(k == "status" and d == {"status": "running"}
                                             for k, d in seen):  # fmt: skip
                start_worker(paused)  # now let a worker answer it
                time.sleep(0)
    kinds = [kind for kind, _ in seen]
    assert seen[0] == ("status", {"status": "queued"})
    assert seen[1] == ("token", {"text": "earlier text "})
    assert "comment" in kinds  # keep-alive while queued
    assert kinds[-1] == "completed"


def test_events_of_an_unknown_question_are_a_404(
    start_api: StartApi, base_settings: Settings
) -> None:
    api = start_api(base_settings)
    response = httpx.get(f"{api.base}/api/v1/questions/nope/events", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "question_not_found"
