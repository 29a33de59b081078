"""The answer cache through the API with a real worker: a repeated question is answered from
the cache (a first message by the API as it arrives, without a worker), an edit of the entry
removes its cached answers at once, a rating down removes the answer it rated, operators list and
purge, analytics and Prometheus count the hits."""

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from shared.answering.reuse import normalise
from shared.core.config import ProviderName, Settings
from shared.core.events import QUESTION_EVENTS_CHANNEL, QuestionEvent
from tests.conftest import PROJECT_ROOT, StartWorker, WorkerProcess

pytestmark = pytest.mark.integration
OPERATOR, PUBLIC = "operator-key", "widget-key"
QUESTION = "How long does shipping take?"


@pytest.fixture
def settings(tmp_path: Path, base_settings: Settings) -> Settings:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", knowledge)
    return base_settings.model_copy(
        update={
            "knowledge_path": knowledge,
            "celery_queue": f"cache-{uuid.uuid4().hex[:6]}",
            "llm_provider": ProviderName.EXTRACTIVE,
            "api_keys": OPERATOR,
            "public_keys": PUBLIC,
            "rate_limit_per_minute": 0,
            "message_rate_limit_per_minute": 0,
            "knowledge_check_interval": 0.5,
            "answer_cache": True,
        }
    )


@pytest.fixture
def worker(settings: Settings, start_worker: StartWorker) -> WorkerProcess:
    return start_worker(settings)


@pytest.fixture
def api(settings: Settings, worker: WorkerProcess) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver/api/v1") as client:
        client.headers["Authorization"] = f"Bearer {OPERATOR}"
        client.delete("/answer-cache")  # the shared database may hold other tests' answers
        yield client


def _ask(api: TestClient, question: str = QUESTION) -> dict[str, object]:
    response = api.post("/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def test_repeated_question_is_answered_from_the_cache_until_its_entry_changes(
    api: TestClient,
) -> None:
    first = _ask(api)
    assert first["provider"] == "extractive" and first["action"] == "answer"
    again = _ask(api, QUESTION.upper())
    assert again["provider"] == "cache"
    assert again["answer"] == first["answer"] and again["sources"] == first["sources"]
    assert again["knowledge_version"] == first["knowledge_version"]

    listed = api.get("/answer-cache").json()
    assert listed["total"] == 1
    cached = listed["answers"][0]
    assert cached["hits"] == 1 and cached["entry_id"] == first["sources"][0]["id"]

    analytics = api.get("/analytics").json()
    assert analytics["counts"]["cached_answers"] >= 1

    # Editing the entry removes its cached answers in the same transaction.
    entry_url = f"/knowledge/entries/{quote(cached['entry_id'], safe='')}"
    entry = api.get(entry_url).json()
    edited = api.put(
        entry_url,
        json={"question": entry["question"], "answer": "Every order arrives within 3 days."},
    )
    assert edited.status_code == 200, edited.text
    assert api.get("/answer-cache").json()["total"] == 0
    fresh = _ask(api)
    assert fresh["provider"] == "extractive" and "3 days" in fresh["answer"]
    assert fresh["knowledge_version"] == edited.json()["version"]


def test_a_rating_down_removes_the_answer_and_operators_purge(api: TestClient) -> None:
    _ask(api)
    public = {"Authorization": f"Bearer {PUBLIC}"}
    created = api.post("/conversations", headers=public).json()
    customer = {**public, "X-Conversation-Token": created["token"]}
    url = f"/conversations/{created['conversation_id']}/messages"
    reply = api.post(url, json={"text": QUESTION}, headers=customer).json()
    assert reply["provider"] == "cache", reply
    rated = api.post(
        f"{url}/{reply['reply_id']}/feedback", json={"rating": "down"}, headers=customer
    )
    assert rated.status_code in (200, 201), rated.text
    assert api.get("/answer-cache").json()["total"] == 0
    assert _ask(api)["provider"] == "extractive"

    assert api.get("/answer-cache", headers=public).status_code == 403
    assert api.delete("/answer-cache", headers=public).status_code == 403
    assert api.delete("/answer-cache").json() == {"removed": 1}
    assert api.delete("/answer-cache/123456").status_code == 404


def test_erasing_a_conversation_erases_its_cached_answers(api: TestClient) -> None:
    public = {"Authorization": f"Bearer {PUBLIC}"}
    created = api.post("/conversations", headers=public).json()
    customer = {**public, "X-Conversation-Token": created["token"]}
    url = f"/conversations/{created['conversation_id']}"
    reply = api.post(f"{url}/messages", json={"text": QUESTION}, headers=customer).json()
    assert reply["provider"] == "extractive", reply
    listed = api.get("/answer-cache").json()
    assert (
        listed["total"] == 1 and listed["answers"][0]["question"] == "how long does shipping take"
    )
    assert api.delete(url, headers=customer).status_code == 204
    assert api.get("/answer-cache").json()["total"] == 0


def test_a_first_message_in_the_same_words_is_answered_on_arrival_without_a_worker(
    api: TestClient, worker: WorkerProcess
) -> None:
    first = _ask(api)
    assert first["provider"] == "extractive"
    worker.stop()  # from here on, nothing would answer a queued question

    again = _ask(api, f"  {QUESTION.lower()}!  ")  # the same words
    assert again["provider"] == "cache" and again["status"] == "completed"
    assert again["answer"] == first["answer"] and again["sources"] == first["sources"]
    metrics = api.get("/metrics").text
    assert "support_answered_on_arrival_total 1.0" in metrics

    # A widget's first message in a conversation it opened: the reply, stored and listed.
    public = {"Authorization": f"Bearer {PUBLIC}"}
    created = api.post("/conversations", headers=public).json()
    customer = {**public, "X-Conversation-Token": created["token"]}
    url = f"/conversations/{created['conversation_id']}"
    reply = api.post(f"{url}/messages", json={"text": QUESTION}, headers=customer)
    assert reply.status_code == 200 and reply.json()["provider"] == "cache", reply.text
    messages = api.get(url, headers=customer).json()["messages"]
    assert [m["role"] for m in messages] == ["customer", "assistant"]
    assert messages[1]["text"] == first["answer"] and messages[1]["sources"] == first["sources"]

    # A later turn depends on the ones before it: it waits for a worker, whatever its words.
    later = api.post(
        f"{url}/messages",
        json={"text": QUESTION},
        headers={**customer, "Prefer": "respond-async"},
    )
    assert later.status_code == 202 and later.json()["status"] == "queued", later.text
    # An asynchronous ask is still accepted with 202, already answered.
    accepted = api.post("/ask", json={"question": QUESTION}, headers={"Prefer": "respond-async"})
    assert accepted.status_code == 202 and accepted.json()["status"] == "completed"


def test_a_completed_answer_announces_the_words_it_was_cached_under(
    api: TestClient, settings: Settings
) -> None:
    listener = redis.Redis.from_url(settings.redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(QUESTION_EVENTS_CHANNEL)
    try:
        first = _ask(api, "Do you deliver to PO boxes?")
        later = api.post(
            f"/conversations/{first['conversation_id']}/messages",
            json={"text": "And with express shipping?"},
        )
        assert later.status_code == 200, later.text
        completed: list[QuestionEvent] = []
        deadline = time.monotonic() + 10
        while len(completed) < 2 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                event = QuestionEvent.decode(message["data"])
                completed += [event] if event.status == "completed" else []
    finally:
        pubsub.close()
        listener.close()
    # Each API process learns the first answer's words from this event (CachedQuestions.learn).
    assert [event.cached for event in completed] == [
        normalise("Do you deliver to PO boxes?"),
        None,  # a follow-up's answer leaned on the turn before it: never cached
    ]
