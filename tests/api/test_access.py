"""Limits and access: body size, API keys, rate limits, CORS, idempotency, back-pressure."""

import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from shared.core.config import Settings
from tests.conftest import WorkerProcess

pytestmark = pytest.mark.integration
ASK = "/api/v1/ask"


def _api(settings: Settings, **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


def test_oversized_body_is_413_and_stores_nothing(client: TestClient) -> None:
    before = client.get("/api/v1/history").json()["total"]
    response = client.post(ASK, content=b'{"question": "' + b"x" * 20_000 + b'"}',
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert client.get("/api/v1/history").json()["total"] == before


def test_chunked_oversized_body_is_413_too(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"question": "'
        for _ in range(40):
            yield b"y" * 1000
        yield b'"}'

    response = client.post(ASK, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_api_keys_guard_everything_but_health_and_the_pages(
    worker: WorkerProcess, base_settings: Settings
) -> None:
    with _api(base_settings, api_keys="alpha-key,beta-key", rate_limit_per_minute=0) as api:
        assert api.get("/api/v1/health").status_code == 200
        # The demo page, the widget script and the console's sign-in page hold no data.
        for page in ("/", "/widget.js", "/console"):
            assert api.get(page).status_code == 200, page
        assert "Operator key" in api.get("/console").text  # only the sign-in page
        demo = api.get("/", headers={"Accept": "text/html"})
        assert 'src="/widget.js"' in demo.text  # a browser gets the demo page
        assert api.get("/").json()["status"] == "running"  # an API client, what the service is
        for path in ("/api/v1/history", "/api/v1/ready", "/api/v1/knowledge", "/docs", "/x"):
            refused = api.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"] == "Bearer"
            assert refused.json()["error"]["code"] == "unauthorized"
        wrong = api.get("/api/v1/history", headers={"Authorization": "Bearer alpha-ke"})
        assert wrong.status_code == 401
        for key in ("alpha-key", "beta-key"):
            ok = api.get("/api/v1/history", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200


def test_rate_limit_answers_429_with_retry_after(
    worker: WorkerProcess, base_settings: Settings
) -> None:
    key = f"key-{uuid.uuid4().hex[:8]}"  # a fresh identity: its own counter
    with _api(base_settings, api_keys=key, rate_limit_per_minute=5) as api:
        headers = {"Authorization": f"Bearer {key}"}
        codes = [api.get("/api/v1/history", headers=headers).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        limited = api.get("/api/v1/history", headers=headers)
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["error"]["code"] == "rate_limited"


def test_cors_allows_only_configured_origins(
    worker: WorkerProcess, base_settings: Settings
) -> None:
    with _api(base_settings, cors_origins="https://shop.example", api_keys="k") as api:
        preflight = api.options(
            ASK,
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        other = api.options(
            ASK, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_same_idempotency_key_returns_the_same_question(client: TestClient) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key}
    first = client.post(ASK, json={"question": "Do you offer warranties?"}, headers=headers)
    second = client.post(ASK, json={"question": "Do you offer warranties?"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["question_id"] == second.json()["question_id"]
    conflict = client.post(ASK, json={"question": "Something else?"}, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"


def test_full_queue_is_503_with_retry_after(base_settings: Settings) -> None:
    # Nobody consumes this queue, so what is asked stays waiting.
    paused = {"celery_queue": f"full-{uuid.uuid4().hex[:6]}", "max_queue_depth": 1}
    with _api(base_settings, **paused) as api:
        first = api.post(ASK, params={"wait": 0}, json={"question": "Where is my parcel?"})
        refused = api.post(ASK, params={"wait": 0}, json={"question": "Where is my parcel now?"})
    assert first.status_code in (202, 503)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "queue_full"
    assert int(refused.headers["Retry-After"]) > 0
