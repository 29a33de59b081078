"""The API against a real Redis and a real Celery worker process (extractive provider)."""

import time
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from shared.core.config import Settings
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration
ASK = "/api/v1/ask"


def test_sync_ask_returns_the_answer_with_its_source(client: TestClient) -> None:
    response = client.post(ASK, json={"question": "  What is your refund policy?  "})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert "30 days" in body["answer"]
    assert body["sources"][0]["id"] == "returns-and-refunds#what-is-your-refund-policy"
    assert body["provider"] == "extractive" and body["model"] == "best-entry"
    assert body["timestamp"].endswith("Z") or body["timestamp"].endswith("+00:00")
    assert isinstance(body["processing_time"], int)


def test_async_ask_answers_202_and_location_turns_completed(client: TestClient) -> None:
    response = client.post(
        ASK, json={"question": "How long does shipping take?"}, headers={"Prefer": "respond-async"}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("queued", "running", "completed")
    location = response.headers["Location"]
    assert location.endswith(f"/api/v1/questions/{body['question_id']}")
    assert body["links"]["self"] == location
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Preference-Applied"] == "respond-async"

    record = client.get(location, params={"wait": 10}).json()
    assert record["status"] == "completed"
    assert "business days" in record["answer"]
    assert record["attempts"] == 1
    assert record["sources"][0]["id"] == "orders-and-shipping#how-long-does-shipping-take"


def test_wait_zero_query_parameter_answers_202(client: TestClient) -> None:
    response = client.post(ASK, params={"wait": 0}, json={"question": "Do you ship abroad?"})
    assert response.status_code == 202


def test_wait_that_runs_out_answers_202_and_the_answer_arrives_later(
    base_settings: Settings, start_worker: StartWorker
) -> None:
    # A queue no worker listens to yet: the wait must run out, not hang or time out the gateway.
    paused = base_settings.model_copy(update={"celery_queue": f"paused-{uuid.uuid4().hex[:6]}"})
    with TestClient(create_app(paused)) as api:
        response = api.post(ASK, params={"wait": 1}, json={"question": "Can I cancel my order?"})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        location = response.headers["Location"]
        start_worker(paused)
        record = api.get(location, params={"wait": 20}).json()
    assert record["status"] == "completed"
    assert "2 hours" in record["answer"]


def test_history_lists_answers_newest_first_and_searches(client: TestClient) -> None:
    marker = uuid.uuid4().hex[:8]
    first = client.post(ASK, json={"question": f"Refund for order {marker}?"}).json()
    second = client.post(ASK, json={"question": f"Warranty for order {marker}?"}).json()
    body = client.get("/api/v1/history", params={"search": marker.upper(), "n": 10}).json()
    assert [e["id"] for e in body["entries"]] == [second["question_id"], first["question_id"]]
    assert body["count"] == body["total"] == 2
    entry = body["entries"][0]
    assert set(entry) == {
        "id", "question", "answer", "action", "confidence", "sources", "timestamp",
        "processing_time",
    }  # fmt: skip
    limited = client.get("/api/v1/history", params={"search": marker, "n": 1}).json()
    assert (limited["count"], limited["total"]) == (1, 2)
    # The timestamp is when each was asked, so the newest-first order reads in order.
    asked = [datetime.fromisoformat(e["timestamp"]) for e in body["entries"]]
    assert asked == sorted(asked, reverse=True)
    record = client.get(f"/api/v1/questions/{second['question_id']}").json()
    assert body["entries"][0]["timestamp"] == record["created_at"]


@pytest.mark.parametrize("params", [{"n": 0}, {"n": 101}, {"n": "x"}, {"search": "a"}])
def test_history_rejects_bad_parameters(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/api/v1/history", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "payload", [{"question": "hi"}, {"question": "!!!"}, {"question": "x" * 2001}, {}, {"q": 1}]
)
def test_ask_rejects_bad_questions_and_stores_nothing(
    client: TestClient, payload: dict[str, object]
) -> None:
    before = client.get("/api/v1/history").json()["total"]
    response = client.post(ASK, json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert client.get("/api/v1/history").json()["total"] == before


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "-inf", "soon"])
def test_ask_rejects_a_wait_that_is_not_a_finite_duration(client: TestClient, wait: str) -> None:
    response = client.post(ASK, params={"wait": wait}, json={"question": "Refund please?"})
    assert response.status_code == 422


def test_a_long_wait_is_shortened_to_the_maximum(base_settings: Settings) -> None:
    # No worker serves this queue: the question stays queued, so only the clamp ends the wait.
    unserved = base_settings.model_copy(
        update={"celery_queue": f"unserved-{uuid.uuid4().hex[:6]}", "max_wait_seconds": 1.0}
    )
    with TestClient(create_app(unserved)) as api:
        accepted = api.post(ASK, params={"wait": 0}, json={"question": "Refund please?"})
        started = time.monotonic()
        record = api.get(accepted.headers["Location"], params={"wait": 500})
        waited = time.monotonic() - started
        asked = api.post(ASK, params={"wait": 500}, json={"question": "Warranty please?"})
    assert record.status_code == 200 and record.json()["status"] == "queued"
    assert 0.9 <= waited < 5
    assert asked.status_code == 202


def test_unknown_question_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/questions/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "question_not_found"


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_root_health_and_ready(client: TestClient) -> None:
    assert client.get("/").json() == {
        "name": "AI Customer Support Assistant", "version": client.app.version, "status": "running"
    }  # fmt: skip
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["provider"] == "extractive"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database", "broker", "workers", "model", "knowledge"
    }  # fmt: skip


def test_ready_is_503_without_workers(base_settings: Settings) -> None:
    lonely = base_settings.model_copy(
        update={"redis_url": base_settings.redis_url.rsplit("/", 1)[0] + "/9"}
    )
    with TestClient(create_app(lonely)) as api:
        response = api.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["ok"] is False


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/ask", "/api/v1/questions/{question_id}", "/api/v1/history"} <= set(paths)
    assert client.get("/docs").status_code == 200
