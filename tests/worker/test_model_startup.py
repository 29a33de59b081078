"""What a worker does with a model on this CPU, in real worker processes (prefork pool): the
embedded model answers when it can run; when it cannot, nothing hangs and /ready says why."""

import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from shared.cli.launcher import free_port
from shared.core.config import ProviderName, Settings
from shared.llm.embedded import embedded_available
from tests.conftest import StartWorker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not embedded_available(), reason="llama-cpp-python is not installed"),
]


def _settings(base: Settings, **update: object) -> Settings:
    return base.model_copy(
        update={
            "celery_queue": f"model-{uuid.uuid4().hex[:6]}",
            "ollama_host": f"http://127.0.0.1:{free_port()}",  # no Ollama: auto decides locally
            "heartbeat_interval": 0.5,
            **update,
        }
    )


def _ready(api: TestClient, *, until: int, pools: str = "", timeout: float = 60) -> httpx.Response:
    """/ready once it answers `until` (with `pools`, e.g. "2/2", pool processes ready)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get("/api/v1/ready")
        workers = response.json()["checks"]["workers"]["detail"]
        if response.status_code == until and workers.startswith(pools):
            return response
        if time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _corrupt_model(directory: Path) -> Path:
    path = directory / "corrupt.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


@pytest.mark.slow
def test_default_worker_answers_with_the_embedded_model(
    base_settings: Settings, start_worker: StartWorker
) -> None:
    settings = _settings(base_settings, llm_provider=ProviderName.AUTO)
    worker = start_worker(settings, concurrency=2)  # prefork, two pool processes
    with TestClient(create_app(settings)) as api:
        ready = _ready(api, until=200, pools="2/2")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["provider"] == "embedded" and body["model"] == "gemma-3-270m-q4_k_m"
        assert body["checks"]["workers"]["detail"].startswith("2/2 pool process(es) ready")
        answer = api.post("/api/v1/ask", json={"question": "What is your refund policy?"}).json()
    assert answer["status"] == "completed", answer
    assert answer["provider"] == "embedded" and answer["model"] == "gemma-3-270m-q4_k_m"
    assert answer["sources"][0]["id"] == "returns-and-refunds#what-is-your-refund-policy"
    log = worker.log_path.read_text()
    assert re.search(r"gemma-3-270m-q4_k_m generated \d+ tokens", log)  # the probe, in a child
    assert log.count("embedded model gemma-3-270m-q4_k_m.gguf loaded") == 2  # once per process


@pytest.mark.slow
def test_a_model_that_cannot_run_makes_auto_fall_back_to_extractive(
    base_settings: Settings, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = _settings(
        base_settings, llm_provider=ProviderName.AUTO, embedded_model_path=_corrupt_model(tmp_path)
    )
    worker = start_worker(settings, concurrency=1)
    with TestClient(create_app(settings)) as api:
        ready = _ready(api, until=200)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["provider"] == "extractive"
        assert (
            "embedded model unusable (the model failed to load"
            in (body["checks"]["model"]["detail"])
        )
        answer = api.post("/api/v1/ask", json={"question": "What is your refund policy?"}).json()
    assert answer["status"] == "completed" and answer["provider"] == "extractive"
    assert "the embedded model cannot run here" in worker.log_path.read_text()


@pytest.mark.slow
def test_an_explicit_embedded_model_that_cannot_run_fails_questions_and_ready(
    base_settings: Settings, start_worker: StartWorker, tmp_path: Path
) -> None:
    settings = _settings(
        base_settings,
        llm_provider=ProviderName.EMBEDDED,
        embedded_model_path=_corrupt_model(tmp_path),
    )
    start_worker(settings, concurrency=1)
    with TestClient(create_app(settings)) as api:
        ready = _ready(api, until=503, pools="1/1")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["workers"]["ok"] and not checks["model"]["ok"]
        assert "failed to load" in checks["model"]["detail"]
        response = api.post("/api/v1/ask", json={"question": "What is your refund policy?"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "llm_unavailable"
        record = api.get(f"/api/v1/questions/{response.json()['question_id']}").json()
    assert record["status"] == "failed" and record["attempts"] == 1  # not retried in vain


def test_a_pool_process_stuck_while_starting_shows_in_ready(
    base_settings: Settings, start_worker: StartWorker, tmp_path: Path
) -> None:
    # A fault injected from outside the product: the pool processes' model load never returns.
    (tmp_path / "sitecustomize.py").write_text(
        "import time\nimport shared.llm\n"
        "shared.llm.create_provider = lambda *args, **kwargs: time.sleep(3600)\n"
    )
    settings = _settings(
        base_settings, llm_provider=ProviderName.EXTRACTIVE, pool_start_timeout=2.0
    )
    start_worker(settings, concurrency=1, extra_env={"PYTHONPATH": str(tmp_path)})
    with TestClient(create_app(settings)) as api:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = api.get("/api/v1/ready")
            workers = response.json()["checks"]["workers"]
            if "still starting after" in workers["detail"]:
                break
            time.sleep(0.2)
    assert response.status_code == 503
    assert workers["ok"] is False
    assert workers["detail"].startswith("0/1 pool process(es) ready")
    assert "stuck loading the model?" in workers["detail"]
