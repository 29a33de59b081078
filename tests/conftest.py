"""Real-service fixtures: a Redis server, migrated databases, Celery worker processes, the API.

Under `CI=true` a test that would skip for a missing part (PostgreSQL, llama.cpp, docker-compose,
hadolint, the evaluation data) fails instead: CI proves every part, not the ones that happen to
be installed."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from alembic import command
from alembic.config import Config
from celery import Celery
from fastapi.testclient import TestClient

from api.main import create_app
from shared.cli.launcher import free_port, redis_server_binary, wait_for_redis
from shared.core.config import PROJECT_ROOT, ProviderName, Settings
from shared.core.db import create_db_engine, create_session_factory
from shared.core.queue import create_producer
from tests.support.databases import throwaway_database
from tests.support.processes import kill_all, spawn, stop

EVAL_DIR = Path(os.environ.get("SUPPORT_EVAL_DIR") or PROJECT_ROOT.parent / "shared" / "eval")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _fail_skips_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every part must be present: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skips_in_ci(outcome.get_result())


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _fail_skips_in_ci(report)


def pytest_sessionfinish() -> None:
    kill_all()


def migrate(database_url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def _reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when TEST_REDIS_URL/REDIS_URL reaches one, else a server we start."""
    for name in ("TEST_REDIS_URL", "REDIS_URL"):
        url = os.environ.get(name)
        if url and _reachable(url):
            yield url
            return
    port = free_port()
    server = spawn(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for_redis(url, timeout=10)
        yield url
    finally:
        stop(server, grace=10)


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set (no PostgreSQL to test with)"
        ),
    ),
]


@contextmanager
def empty_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, empty database on `backend`, dropped afterwards."""
    assert backend == "sqlite" or POSTGRES_URL is not None
    admin_url = None if backend == "sqlite" else POSTGRES_URL
    with throwaway_database(admin_url, directory, prefix="sa_test") as url:
        yield url


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A new database on `backend`, migrated to the latest revision."""
    with empty_database(backend, directory) as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database shared by the integration tests of this session: SQLite, and
    PostgreSQL too when TEST_POSTGRES_URL is set."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def sessions(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A session factory over a freshly migrated database of its own."""
    with fresh_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        yield create_session_factory(engine)
        engine.dispose()


@pytest.fixture(scope="session")
def base_settings(redis_url: str, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        celery_queue=f"test-{uuid.uuid4().hex[:8]}",
        llm_provider=ProviderName.EXTRACTIVE,
        knowledge_path=PROJECT_ROOT / "knowledge",
        ask_wait_seconds=15,
        worker_metrics_port=0,
        # Tests share this database and ask the same questions: each must reach its provider.
        # The answer cache's own tests switch it on.
        answer_cache=False,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to read `settings` back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "LLM_"))}
    # Only what was set: a child reads the rest as a deployment would (the knowledge base's own
    # confidence curve among them, which explicit CONFIDENCE_* variables would override).
    for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            env[name.upper()] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """A real `celery worker` process, started and waited for until it answers pings."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        *,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = spawn(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", self.name,
             "--queues", settings.celery_queue, "--without-gossip", "--without-mingle"],
            env={**settings_env(settings), **(extra_env or {})}, cwd=PROJECT_ROOT,
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.producer = create_producer(settings)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log_path.read_text()[-3000:]}")
            if self.producer.control.ping(destination=[self.name], timeout=0.5):
                return
        raise TimeoutError(f"worker not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop(self.process)
        self.producer.close()
        self._log.close()


StartWorker = Callable[..., WorkerProcess]


class Started:
    """Worker and API processes started for one test (or one module); all stopped at its end, so
    the processes of earlier tests never compete for the machine's cores with later ones."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._processes: list[WorkerProcess | ApiProcess] = []

    def worker(
        self, settings: Settings, *, concurrency: int = 2, extra_env: dict[str, str] | None = None
    ) -> WorkerProcess:
        log = self._tmp.mktemp("worker") / "worker.log"
        worker = WorkerProcess(settings, log, concurrency=concurrency, extra_env=extra_env)
        self._processes.append(worker)
        worker.wait_ready()
        return worker

    def api(self, settings: Settings) -> "ApiProcess":
        api = ApiProcess(settings, self._tmp.mktemp("api") / "api.log")
        self._processes.append(api)
        api.wait_ready()
        return api

    def stop_all(self) -> None:
        while self._processes:
            self._processes.pop().stop()


@pytest.fixture
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    processes = Started(tmp_path_factory)
    yield processes
    processes.stop_all()


@pytest.fixture(scope="module")
def module_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """Processes shared by the tests of one module."""
    processes = Started(tmp_path_factory)
    yield processes
    processes.stop_all()


@pytest.fixture
def start_worker(started: Started) -> StartWorker:
    """Start a worker process for this test."""
    return started.worker


@pytest.fixture(scope="session")
def worker(
    tmp_path_factory: pytest.TempPathFactory, base_settings: Settings
) -> Iterator[WorkerProcess]:
    """One real worker answering the default test queue with the extractive provider."""
    processes = Started(tmp_path_factory)
    yield processes.worker(base_settings)
    processes.stop_all()


@pytest.fixture
def client(worker: WorkerProcess, base_settings: Settings) -> Iterator[TestClient]:
    """The API (with its lifespan) in this process, talking to the real Redis and worker."""
    with TestClient(create_app(base_settings)) as test_client:
        yield test_client


@pytest.fixture
def producer(base_settings: Settings) -> Iterator[Celery]:
    app = create_producer(base_settings)
    yield app
    app.close()


class ApiProcess:
    """The API served by uvicorn in its own process, for tests over real HTTP."""

    def __init__(self, settings: Settings, log_path: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self.log_path = log_path
        self.process = spawn(
            [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env=settings_env(settings), cwd=PROJECT_ROOT, stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("API not ready")

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


@pytest.fixture
def start_api(started: Started) -> Callable[[Settings], ApiProcess]:
    """Start an API process for this test."""
    return started.api
