"""Metrics, request ids and logs, over real processes."""

import json
import time
import uuid

import httpx
import pytest

from shared.cli.launcher import free_port
from shared.core.config import Settings
from tests.api.test_events import StartApi
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration


def test_metrics_and_a_request_id_followed_from_api_to_worker(
    base_settings: Settings, start_worker: StartWorker, start_api: StartApi, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    metrics_port = free_port()
    settings = base_settings.model_copy(
        update={"celery_queue": f"obs-{uuid.uuid4().hex[:6]}", "log_format": "json",
                "worker_metrics_port": metrics_port}
    )  # fmt: skip
    worker = start_worker(settings, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    api = start_api(settings)
    request_id = f"trace-{uuid.uuid4().hex[:10]}"
    response = httpx.post(
        f"{api.base}/api/v1/ask", json={"question": "How long does shipping take?"},
        headers={"X-Request-ID": request_id}, timeout=30,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    question_id = response.json()["question_id"]
    for q in ("Can I cancel my order?", "What's the capital of France?"):
        httpx.post(f"{api.base}/api/v1/ask", json={"question": q}, timeout=30)

    # One request id, followed from the API's log line to the worker's.
    time.sleep(0.5)
    api_lines = [json.loads(line) for line in api.log_path.read_text().splitlines()
                 if line.startswith("{")]  # fmt: skip
    worker_lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()
                    if line.startswith("{")]  # fmt: skip
    assert any(line.get("request_id") == request_id and "POST /api/v1/ask" in line["message"]
               for line in api_lines)  # fmt: skip
    traced = [line for line in worker_lines if line.get("request_id") == request_id]
    assert traced and all(line["question_id"] == question_id for line in traced)
    assert not any("How long does shipping take" in line["message"] for line in worker_lines)

    api_metrics = httpx.get(f"{api.base}/metrics", timeout=10).text
    for family in ("support_http_requests_total", "support_http_request_duration_seconds",
                   "support_questions", "support_queue_depth"):  # fmt: skip
        assert f"# TYPE {family}" in api_metrics, family
    assert 'route="/api/v1/ask"' in api_metrics and 'status="completed"' in api_metrics

    worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    for family in ("support_time_queued_seconds", "support_retrieval_seconds",
                   "support_answers_total"):  # fmt: skip
        assert family in worker_metrics, family
    assert 'action="handoff"' in worker_metrics
