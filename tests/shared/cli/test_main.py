"""The `support-assistant` console script against a live API and worker."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shared.core.config import Settings
from tests.conftest import Started

pytestmark = pytest.mark.integration
SCRIPT = Path(sys.executable).parent / "support-assistant"


@pytest.fixture(scope="module")
def api_url(base_settings: Settings, module_started: Started) -> str:
    settings = base_settings.model_copy(update={"celery_queue": f"cli-{uuid.uuid4().hex[:6]}"})
    module_started.worker(settings)
    return f"{module_started.api(settings).base}/api/v1"


def _cli(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--url", api_url, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
def test_ask_prints_a_sourced_answer(api_url: str) -> None:
    result = _cli(api_url, "ask", "How long does shipping take?")
    assert result.returncode == 0, result.stderr
    assert "business day" in result.stdout
    assert "Sources:" in result.stdout
    assert "orders-and-shipping#how-long-does-shipping-take" in result.stdout
    assert "processing" in result.stdout and "total" in result.stdout


def test_async_ask_then_status_history_and_knowledge(api_url: str) -> None:
    run = [sys.executable, "-m", "shared.cli", "--url", api_url]
    asked = subprocess.run([*run, "ask", "--async", "Can I cancel my order?"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    question_id = asked.stdout.strip()
    uuid.UUID(question_id)
    status = subprocess.run([*run, "status", question_id, "--wait", "20"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "completed" in status.stdout and "Can I cancel my order?" in status.stdout
    history = subprocess.run([*run, "history", "--search", "cancel my order"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert question_id[:8] in history.stdout
    reload = subprocess.run([*run, "knowledge", "reload"], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert "entries from" in reload.stdout


def test_unreachable_api_is_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--url", "http://127.0.0.1:9/api/v1", "history"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "cannot reach the API" in result.stderr
