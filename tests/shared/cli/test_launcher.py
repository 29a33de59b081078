"""End to end over real HTTP: `make run`'s launcher starts Redis, API, worker and Flower, and
stops every process it started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.cli.launcher import free_port
from shared.core.config import PROJECT_ROOT
from tests.support.processes import spawn

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_ready(base: str, launcher: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert launcher.poll() is None, "launcher exited early"
        try:
            if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the service never became ready")


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc")
def test_run_answers_over_http_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        API_PORT=str(api_port),
        FLOWER_PORT=str(flower_port),
        # Nothing else configured: no Ollama here, so the embedded model answers.
        OLLAMA_HOST=f"http://127.0.0.1:{free_port()}",
    )
    launcher = spawn(
        [sys.executable, "-m", "shared.cli.launcher"], env=env, cwd=PROJECT_ROOT,
        stdout=(tmp_path / "run.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        _wait_ready(base, launcher)
        started = _descendants(launcher.pid)
        assert len(started) >= 5  # redis, api, worker (+ its pool), beat, flower

        sync = httpx.post(
            f"{base}/ask", json={"question": "What is your refund policy?"}, timeout=40
        )
        assert sync.status_code == 200, sync.text
        assert sync.json()["sources"][0]["id"] == "returns-and-refunds#what-is-your-refund-policy"
        assert sync.json()["provider"] == "embedded"

        accepted = httpx.post(
            f"{base}/ask", json={"question": "How do I track my order?"},
            headers={"Prefer": "respond-async"}, timeout=10,
        )  # fmt: skip
        assert accepted.status_code == 202
        record = httpx.get(accepted.headers["Location"], params={"wait": 20}, timeout=30).json()
        assert record["status"] == "completed"

        history = httpx.get(f"{base}/history", timeout=10).json()
        assert {e["id"] for e in history["entries"]} >= {
            sync.json()["question_id"], accepted.json()["question_id"]
        }  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{flower_port}/workers", timeout=10).status_code == 200
    finally:
        launcher.send_signal(signal.SIGINT)
        code = launcher.wait(timeout=60)
    log = (tmp_path / "run.log").read_text()
    assert code == 0, log[-3000:]
    assert f"http://127.0.0.1:{api_port}/api/v1" in log
    time.sleep(0.2)
    assert [pid for pid in started if _alive(pid)] == []


def test_flower_beyond_loopback_needs_credentials() -> None:
    from shared.cli.launcher import check_flower_access
    from shared.core.config import Settings

    open_flower = Settings(_env_file=None, flower_host="0.0.0.0")  # type: ignore[call-arg]
    with pytest.raises(SystemExit, match="FLOWER_BASIC_AUTH"):
        check_flower_access(open_flower)
    check_flower_access(open_flower.model_copy(update={"flower_basic_auth": "ops:secret"}))
    check_flower_access(Settings(_env_file=None))  # type: ignore[call-arg]
