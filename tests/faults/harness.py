"""A whole service on loopback for fault injection: its own Redis, a SQLite database, a fake
model backend, the API, workers and beat — each a real process the tests can kill and restart."""

import collections
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
from sqlalchemy import func, select

from shared.cli.launcher import free_port, redis_server_binary, wait_for_redis
from shared.core.config import PROJECT_ROOT, ProviderName, Settings
from shared.core.db import create_db_engine, create_session_factory, session_scope
from shared.questions.models import TERMINAL_STATUSES, Question, QuestionStatus
from tests.conftest import ApiProcess, WorkerProcess, migrate, settings_env
from tests.support.processes import kill_group, spawn
from worker.tasks import STORED_MESSAGE

QUESTIONS = [
    "How long does shipping take?", "What is your refund policy?", "Can I cancel my order?",
    "How do I track my order?", "Do you ship internationally?", "Which cards do you accept?",
    "How do I reset my password?", "Do you offer warranties?", "Is return postage free?",
    "How do I contact support?",
]  # fmt: skip


def letters(number: int) -> str:
    """`number` spelled in letters: each question's text differs without naming a figure, which
    the answer verifier would rightly refuse to let the model's wording speak to."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word = "abcdefghijklmnopqrstuvwxyz"[digit] + word
        if number == 0:
            return word


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
            # Every question must reach the model, so that kills hit answers in flight: a
            # paraphrase answered from the cache never would.
            answer_cache=False,
            rate_limit_per_minute=0,
            message_rate_limit_per_minute=0,
            ask_wait_seconds=0,
            knowledge_check_interval=3600,
            worker_metrics_port=0,
            **overrides,
        )
        self.workers: list[WorkerProcess] = []
        self.api = ApiProcess(self.settings, directory / "api.log")
        self.api.wait_ready()
        self.beat = spawn(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "beat",
             "--schedule", str(directory / "beat-schedule"), "--loglevel", "INFO"],
            env=settings_env(self.settings), cwd=PROJECT_ROOT,
            stdout=(directory / "beat.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.sessions = create_session_factory(create_db_engine(database_url))
        self.http = httpx.Client(base_url=self.api.base, timeout=30)

    # --- processes -------------------------------------------------------------------------
    def start_redis(self) -> None:
        self.redis = spawn(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.redis_port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_redis(f"redis://127.0.0.1:{self.redis_port}/0", timeout=10)

    def kill_redis(self) -> None:
        assert self.redis is not None
        kill_group(self.redis)

    def start_model(self) -> None:
        self.model = spawn(
            [sys.executable, "-m", "tests.faults.fake_ollama", "--port", str(self.model_port),
             "--delay", str(self.model_delay)],
            cwd=PROJECT_ROOT,
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
        kill_group(self.model)

    def start_worker(self, *, concurrency: int = 2) -> WorkerProcess:
        log = self.directory / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(self.settings, log, concurrency=concurrency)
        worker.wait_ready(timeout=60)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL the worker and its pool, as a crashed machine would lose them."""
        kill_group(worker.process)

    def restart_api(self) -> None:
        kill_group(self.api.process)
        port = self.api.port
        self.api = ApiProcess(self.settings, self.directory / "api-2.log", port=port)
        self.api.wait_ready()

    def close(self) -> None:
        self.http.close()
        for process in [self.api.process, self.beat, *(w.process for w in self.workers),
                        self.model, self.redis]:  # fmt: skip
            if process is not None:
                kill_group(process)

    # --- traffic and accounting ------------------------------------------------------------
    def ask(self, n: int, *, offset: int = 0) -> list[str]:
        ids = []
        for i in range(offset, offset + n):
            response = self.http.post(
                "/api/v1/ask",
                json={"question": f"{QUESTIONS[i % len(QUESTIONS)]} (ref {letters(i)})"},
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

    def running_on(self, worker: WorkerProcess) -> list[str]:
        """The questions whose lease `worker`'s pool processes hold right now."""
        with session_scope(self.sessions) as session:
            return list(session.scalars(
                select(Question.id).where(
                    Question.status == QuestionStatus.RUNNING,
                    Question.lease_owner.startswith(f"{worker.name}:"),
                )
            ))  # fmt: skip

    def completed_at(self, ids: list[str]) -> dict[str, float]:
        """When each completed question was stored (epoch seconds)."""
        with session_scope(self.sessions) as session:
            rows = session.execute(
                select(Question.id, Question.completed_at).where(
                    Question.id.in_(ids), Question.status == QuestionStatus.COMPLETED
                )
            ).all()  # fmt: skip
        return {question_id: at.timestamp() for question_id, at in rows if at is not None}

    def attempts(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        """(attempts, times queued) of each question."""
        with session_scope(self.sessions) as session:
            rows = session.execute(
                select(Question.id, Question.attempts, Question.enqueue_count)
                .where(Question.id.in_(ids))
            ).all()  # fmt: skip
        return {question_id: (attempts, queued) for question_id, attempts, queued in rows}

    def stored_answers(self) -> collections.Counter[str]:
        return count_stored_answers(self.directory.glob("worker-*.log"))

    def summary(
        self, name: str, ids: list[str], counts: collections.Counter[str], **extra: object
    ) -> dict[str, int]:
        figures = {
            "accepted": len(ids),
            "completed": counts[QuestionStatus.COMPLETED.value],
            "failed": counts[QuestionStatus.FAILED.value],
            "duplicates": duplicates(self.stored_answers(), ids),
            "lost": len(ids) - sum(counts[s.value] for s in TERMINAL_STATUSES),
        }
        line = " ".join(f"{k}={v}" for k, v in {**figures, **extra}.items())
        print(f"fault={name} {line}", flush=True)
        return figures

    def logs_contain(self, text: str) -> list[str]:
        return [
            p.name for p in self.directory.glob("*.log") if text in p.read_text(errors="replace")
        ]


def count_stored_answers(logs: Iterable[Path]) -> collections.Counter[str]:
    """How often a worker stored the answer of each question: the workers' JSON log lines whose
    message is STORED_MESSAGE, by their structured `question_id` field."""
    stored: collections.Counter[str] = collections.Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue  # Celery's banner and other plain text
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == STORED_MESSAGE and record.get("question_id"):
                stored[record["question_id"]] += 1
    return stored


def duplicates(stored: collections.Counter[str], ids: list[str]) -> int:
    """Answers stored beyond the first, over `ids`."""
    return sum(stored[i] - 1 for i in ids if stored[i] > 1)
