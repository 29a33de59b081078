"""Knowledge edits reach the API and a running worker without a restart."""

import uuid
from pathlib import Path
from urllib.parse import quote

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


def test_phrasings_are_written_kept_and_replaced_through_the_api(
    tmp_path: Path, base_settings: Settings
) -> None:
    (tmp_path / "faq.md").write_text("# Store\n\nQ: Do you sell gift cards?\nA: Yes.\n")
    settings = base_settings.model_copy(update={"knowledge_path": tmp_path})
    hours = "What are your opening hours?"
    asked = ["When are you open?", "Open on Sunday?"]
    with TestClient(create_app(settings), base_url="http://testserver/api/v1") as api:
        created = api.post(
            "/knowledge/entries",
            json={
                "question": hours,
                "phrasings": ["When are you open?", " When are  you open? ", "Open on Sunday?"],
                "answer": "We are open 9 to 5 on weekdays.",
                "file": "faq.md",
            },
        )
        assert created.status_code == 201, created.text
        url = f"/knowledge/entries/{quote(created.json()['change']['entry_id'], safe='')}"
        assert api.get(url).json()["phrasings"] == asked
        written = (tmp_path / "faq.md").read_text()
        assert f"Q: {hours}\nQ: When are you open?\nQ: Open on Sunday?\nA: We are" in written

        kept = api.put(url, json={"question": hours, "answer": "9 to 6."})
        assert kept.status_code == 200, kept.text
        assert kept.json()["change"]["after"]["phrasings"] == asked
        assert api.get(url).json()["phrasings"] == asked

        cleared = api.put(url, json={"question": hours, "answer": "9 to 6.", "phrasings": []})
        assert cleared.status_code == 200 and api.get(url).json()["phrasings"] == []

        for bad in (["Q: Do you sell cars?"], ["x" * 301], ["Fine?"] * 21):
            refused = api.put(url, json={"question": hours, "answer": "9.", "phrasings": bad})
            assert refused.status_code == 422, bad
        assert api.get(url).json()["answer"] == "9 to 6."  # nothing written by a refused edit
