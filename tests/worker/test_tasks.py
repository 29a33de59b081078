"""The answering task in a real worker process: retries, stored failures, duplicate deliveries."""

import time
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from shared.cli.launcher import free_port
from shared.core.config import ProviderName, Settings
from shared.core.errors import LLMUnavailable
from shared.core.queue import ANSWER_QUESTION_TASK
from tests.conftest import StartWorker, WorkerProcess

pytestmark = pytest.mark.integration


def _drained(worker: WorkerProcess, settings: Settings, timeout: float = 20) -> None:
    """Wait until the queue is empty and the worker holds no task."""
    client = redis.Redis.from_url(settings.redis_url)
    inspect = worker.producer.control.inspect(destination=[worker.name], timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            busy = [*(inspect.active() or {}).values(), *(inspect.reserved() or {}).values()]
            if client.llen(settings.celery_queue) == 0 and not any(busy):
                return
            time.sleep(0.2)
        raise TimeoutError("queue not drained")
    finally:
        client.close()


def test_unreachable_model_retries_then_stores_the_failure(
    base_settings: Settings, start_worker: StartWorker
) -> None:
    down = base_settings.model_copy(
        update={
            "celery_queue": f"down-{uuid.uuid4().hex[:6]}",
            "llm_provider": ProviderName.OLLAMA,
            "ollama_host": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "task_max_retries": 2,
            "task_retry_backoff": 0.1,
        }
    )
    worker = start_worker(down)
    with TestClient(create_app(down)) as api:
        response = api.post("/api/v1/ask", json={"question": "What is your refund policy?"})
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"]["code"] == "llm_unavailable"
        # The customer learns what happened, not where the backend runs; the log says where.
        assert body["error"]["message"] == LLMUnavailable.public_message
        assert "127.0.0.1" not in response.text and "Errno" not in response.text
        record = api.get(f"/api/v1/questions/{body['question_id']}").json()
    assert record["status"] == "failed"
    assert record["attempts"] == 3  # the first try and two retries
    assert record["error"]["code"] == "llm_unavailable"
    assert record["answer"] is None
    assert "cannot reach Ollama at http://127.0.0.1" in worker.log_path.read_text()


def test_duplicate_delivery_stores_one_answer(
    client: TestClient, worker: WorkerProcess, base_settings: Settings
) -> None:
    response = client.post("/api/v1/ask", json={"question": "Do you offer warranties?"})
    assert response.status_code == 200
    first = response.json()
    for _ in range(3):
        worker.producer.send_task(
            ANSWER_QUESTION_TASK, kwargs={"question_id": first["question_id"]}
        )
    _drained(worker, base_settings)
    record = client.get(f"/api/v1/questions/{first['question_id']}").json()
    assert record["attempts"] == 1
    assert record["completed_at"] == first["timestamp"]
    assert record["answer"] == first["answer"]


def test_task_for_an_unknown_question_does_nothing(
    client: TestClient, worker: WorkerProcess, base_settings: Settings
) -> None:
    worker.producer.send_task(ANSWER_QUESTION_TASK, kwargs={"question_id": "no-such-question"})
    _drained(worker, base_settings)
    assert worker.process.poll() is None
    assert "nothing to do" in worker.log_path.read_text()
