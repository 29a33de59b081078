"""A whole service on loopback for fault injection: its own Redis, a SQLite database, a fake
model backend, the API, workers and beat — each a real process the tests can kill and restart."""

import collections
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from shared.cli.launcher import free_port, redis_server_binary, wait_for_redis
from shared.core.config import PROJECT_ROOT, ProviderName, Settings
from shared.core.db import create_db_engine, create_session_factory, session_scope
from shared.questions.models import TERMINAL_STATUSES, Question, QuestionStatus
from tests.conftest import ApiProcess, WorkerProcess, migrate, settings_env

QUESTIONS = [
    "How long does shipping take?", "What is your refund policy?", "Can I cancel my order?",
    "How do I track my order?", "Do you ship internationally?", "Which cards do you accept?",
    "How do I reset my password?", "Do you offer warranties?", "Is return postage free?",
    "How do I contact support?",
]  # fmt: skip


def say(message: str) -> None:
    print(f"  [fault] {message}", flush=True)


class Cluster:
    def __init__(self, directory: Path, *, model_delay: float = 0.2, **overrides: object) -> None:
        self.directory = directory
        self.redis_port = free_port()
        self.model_port = free_port()
        self.model_delay = model_delay
        self.redis: subprocess.Popen[bytes] | None = None
        self.model: subprocess.Popen[bytes] | None = None
        self.start_redis()
        self.start_model()
        database_url = f"sqlite:///{directory / 'faults.db'}"
        migrate(database_url)
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            redis_url=f"redis://127.0.0.1:{self.redis_port}/0",
            celery_queue=f"faults-{uuid.uuid4().hex[:6]}",
            llm_provider=ProviderName.OLLAMA,
            ollama_host=f"http://127.0.0.1:{self.model_port}",
            ollama_timeout=10,
            task_soft_time_limit=8,
            task_time_limit=10,
            task_max_retries=2,
            task_retry_backoff=0.5,
            task_retry_backoff_max=2,
            reconcile_interval=2,
            reconcile_queued_after=5,
            max_queue_depth=0,
            rate_limit_per_minute=0,
            ask_wait_seconds=0,
            embedding_cache_dir=directory / "embeddings",
            knowledge_check_interval=3600,
            worker_metrics_port=0,
            **overrides,
        )
        self.workers: list[WorkerProcess] = []
        self.api = ApiProcess(self.settings, directory / "api.log")
        self.api.wait_ready()
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "beat",
             "--schedule", str(directory / "beat-schedule"), "--loglevel", "INFO"],
            env=settings_env(self.settings), cwd=PROJECT_ROOT, start_new_session=True,
            stdout=(directory / "beat.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.sessions = create_session_factory(create_db_engine(database_url))
        self.http = httpx.Client(base_url=self.api.base, timeout=30)

    # --- processes -------------------------------------------------------------------------
    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.redis_port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_redis(f"redis://127.0.0.1:{self.redis_port}/0", timeout=10)

    def kill_redis(self) -> None:
        assert self.redis is not None
        os.killpg(self.redis.pid, signal.SIGKILL)
        self.redis.wait()

    def start_model(self) -> None:
        self.model = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.fake_ollama", "--port", str(self.model_port),
             "--delay", str(self.model_delay)],
            cwd=PROJECT_ROOT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.model_port}/api/tags", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("fake model backend did not start")

    def stop_model(self) -> None:
        assert self.model is not None
        os.killpg(self.model.pid, signal.SIGKILL)
        self.model.wait()

    def start_worker(self, *, concurrency: int = 2) -> WorkerProcess:
        log = self.directory / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(self.settings, log, concurrency=concurrency)
        worker.wait_ready(timeout=60)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL the worker and its pool, as a crashed machine would lose them."""
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()

    def restart_api(self) -> None:
        os.killpg(self.api.process.pid, signal.SIGKILL)
        self.api.process.wait()
        port = self.api.port
        self.api = ApiProcess(self.settings, self.directory / "api-2.log", port=port)
        self.api.wait_ready()

    def close(self) -> None:
        self.http.close()
        for process in [self.api.process, self.beat, *(w.process for w in self.workers),
                        self.model, self.redis]:  # fmt: skip
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # --- traffic and accounting ------------------------------------------------------------
    def ask(self, n: int, *, offset: int = 0) -> list[str]:
        ids = []
        for i in range(offset, offset + n):
            response = self.http.post(
                "/api/v1/ask",
                json={"question": f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"},
                headers={"Prefer": "respond-async", "Idempotency-Key": f"fault-{i}"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["question_id"])
        return ids

    def statuses(self, ids: list[str]) -> collections.Counter[str]:
        with session_scope(self.sessions) as session:
            rows = session.execute(
                select(Question.status, func.count()).where(Question.id.in_(ids))
                .group_by(Question.status)
            ).all()  # fmt: skip
        return collections.Counter({status.value: count for status, count in rows})

    def wait_terminal(self, ids: list[str], *, timeout: float) -> collections.Counter[str]:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.statuses(ids)
            done = sum(counts[s.value] for s in TERMINAL_STATUSES)
            if done == len(ids) or time.monotonic() > deadline:
                return counts
            time.sleep(0.5)

    def stored_answers(self) -> collections.Counter[str]:
        """How often a worker stored the answer of each question (by the workers' own logs)."""
        stored: collections.Counter[str] = collections.Counter()
        pattern = re.compile(r"stored the answer of question (\S+)")
        for log in self.directory.glob("worker-*.log"):
            stored.update(pattern.findall(log.read_text(errors="replace")))
        return stored

    def summary(
        self, name: str, ids: list[str], counts: collections.Counter[str]
    ) -> dict[str, int]:
        stored = self.stored_answers()
        figures = {
            "accepted": len(ids),
            "completed": counts[QuestionStatus.COMPLETED.value],
            "failed": counts[QuestionStatus.FAILED.value],
            "duplicates": sum(stored[i] - 1 for i in ids if stored[i] > 1),
            "lost": len(ids) - sum(counts[s.value] for s in TERMINAL_STATUSES),
        }
        print(f"fault={name} " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
        return figures

    def logs_contain(self, text: str) -> list[str]:
        return [
            p.name for p in self.directory.glob("*.log") if text in p.read_text(errors="replace")
        ]
