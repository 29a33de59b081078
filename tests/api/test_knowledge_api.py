"""Knowledge edits reach the API and a running worker without a restart."""

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from shared.core.config import Settings
from tests.conftest import StartWorker

pytestmark = pytest.mark.integration


def test_edit_is_answered_by_a_running_worker_after_reload(
    tmp_path: Path, base_settings: Settings, start_worker: StartWorker
) -> None:
    faq = tmp_path / "faq.md"
    faq.write_text(
        "# Store\n\nQ: What are your opening hours?\nA: We are open 9 to 5 on weekdays.\n"
    )
    settings = base_settings.model_copy(
        update={
            "knowledge_path": tmp_path,
            "celery_queue": f"kb-{uuid.uuid4().hex[:6]}",
            "knowledge_check_interval": 3600,  # only the forced reload can explain a change
        }
    )
    start_worker(settings)
    with TestClient(create_app(settings)) as api:
        before = api.get("/api/v1/knowledge").json()
        assert before["entries"] == 1
        first = api.post("/api/v1/ask", json={"question": "What are your opening hours?"}).json()
        assert "9 to 5" in first["answer"]
        assert first["knowledge_version"] == before["version"]

        faq.write_text(
            "# Store\n\nQ: What are your opening hours?\nA: We are open 8 to 8, every day.\n"
        )
        reloaded = api.post("/api/v1/knowledge/reload").json()
        assert reloaded["version"] != before["version"] and reloaded["entries"] == 1

        second = api.post("/api/v1/ask", json={"question": "What are your opening hours?"}).json()
    assert "8 to 8" in second["answer"]
    assert second["knowledge_version"] == reloaded["version"]
