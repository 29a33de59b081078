"""Fault injection against real processes on loopback (`make test-faults`).

Each test prints what it injects and ends with one line:
`fault=<name> accepted=N completed=N failed=N duplicates=N lost=N [...]`. `duplicates` counts
the answers the workers stored beyond the first, from the structured `question_id` of their JSON
log lines; every fault also asserts that it hit work in flight.
"""

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import QUESTIONS, Cluster, letters, say

pytestmark = pytest.mark.faults


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[type[Cluster]]:
    made: list[Cluster] = []

    class Tracked(Cluster):
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(self)
            super().__init__(tmp_path, *args, **kwargs)  # type: ignore[arg-type]

    yield Tracked
    for cluster in made:
        cluster.close()


def _check(figures: dict[str, int], *, failed: int = 0) -> None:
    assert figures["accepted"] == figures["completed"] + figures["failed"]
    assert figures["failed"] == failed
    assert figures["duplicates"] == 0
    assert figures["lost"] == 0


def test_workers_killed_at_random_moments(cluster_factory: type[Cluster]) -> None:
    cluster = cluster_factory(model_delay=0.25)
    rng = random.Random(2026)
    cluster.start_worker()
    cluster.start_worker()
    ids = cluster.ask(200)
    say("200 questions accepted; killing workers with SIGKILL at random moments")
    in_flight: list[str] = []
    for round_ in range(4):
        time.sleep(rng.uniform(1.0, 3.0))
        alive = [w for w in cluster.workers if w.process.poll() is None]
        victim = rng.choice(alive)
        held = cluster.running_on(victim)
        cluster.kill_worker(victim)
        in_flight += held
        say(f"round {round_ + 1}: SIGKILL {victim.name} and its pool, answering {len(held)}")
        cluster.start_worker()
        say("started a new worker")
    counts = cluster.wait_terminal(ids, timeout=150)
    assert in_flight, "no kill hit a question in flight"
    attempts = cluster.attempts(in_flight)
    assert all(tries > 1 and queued > 1 for tries, queued in attempts.values())
    _check(cluster.summary("worker_kill", ids, counts, in_flight=len(in_flight)))


def test_a_killed_workers_question_is_answered_by_another_within_30_s(
    cluster_factory: type[Cluster],
) -> None:
    answer_time = 3.0
    cluster = cluster_factory(model_delay=answer_time)
    doomed = cluster.start_worker(concurrency=1)
    ids = cluster.ask(1)
    deadline = time.monotonic() + 20
    while not cluster.running_on(doomed) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.running_on(doomed) == ids, "the question never started"
    cluster.start_worker(concurrency=1)
    killed_at = time.time()
    cluster.kill_worker(doomed)
    say(f"SIGKILL {doomed.name} while it answered; a second worker is idle")
    counts = cluster.wait_terminal(ids, timeout=60)
    recovery = cluster.completed_at(ids)[ids[0]] - killed_at
    say(
        f"answered again {recovery:.1f} s after the kill (lease {cluster.settings.lease_seconds} "
        f"s, reconciler every {cluster.settings.reconcile_interval} s, answer {answer_time} s)"
    )
    assert recovery <= 30 + answer_time
    assert cluster.attempts(ids)[ids[0]][0] == 2
    _check(cluster.summary("worker_kill_recovery", ids, counts, recovery_s=f"{recovery:.1f}"))


def test_redis_restarted_empty_mid_batch(cluster_factory: type[Cluster]) -> None:
    cluster = cluster_factory(model_delay=0.2)
    cluster.start_worker()
    ids = cluster.ask(100)
    time.sleep(2)
    before = cluster.statuses(ids)
    assert before["completed"] < len(ids), "the batch was over before Redis was killed"
    cluster.kill_redis()
    say(f"SIGKILL Redis mid-batch (done so far: {before['completed']}); starting it empty")
    time.sleep(1)
    cluster.start_redis()
    counts = cluster.wait_terminal(ids, timeout=150)
    _check(cluster.summary("redis_restart", ids, counts))


def test_model_backend_down_then_back(cluster_factory: type[Cluster]) -> None:
    cluster = cluster_factory(model_delay=0.0)
    cluster.start_worker()
    cluster.stop_model()
    say("model backend stopped")
    down_ids = cluster.ask(5)
    counts = cluster.wait_terminal(down_ids, timeout=60)
    assert counts["failed"] == 5
    record = cluster.http.get(f"/api/v1/questions/{down_ids[0]}").json()
    assert record["error"]["code"] == "llm_unavailable" and record["attempts"] == 3
    say(f"5 questions failed after {record['attempts']} attempts: {record['error']['message']}")
    ready = cluster.http.get("/api/v1/ready")
    assert ready.status_code == 503 and not ready.json()["checks"]["model"]["ok"]
    say(f"/ready meanwhile: 503, model: {ready.json()['checks']['model']['detail']}")
    cluster.start_model()
    say("model backend started again")
    up_ids = cluster.ask(5, offset=5)
    up = cluster.wait_terminal(up_ids, timeout=60)
    assert up["completed"] == 5
    # Readiness follows the pool processes' reports: a process that started while the backend was
    # down re-checks it after each answer and on each heartbeat, so /ready turns within a beat.
    deadline = time.monotonic() + cluster.settings.heartbeat_interval * 2 + 2
    while (ready := cluster.http.get("/api/v1/ready")).status_code != 200:
        assert time.monotonic() < deadline, ready.json()["checks"]
        time.sleep(0.2)
    ids = down_ids + up_ids
    _check(cluster.summary("model_down", ids, cluster.statuses(ids)), failed=5)


def test_api_restarted_while_clients_wait(cluster_factory: type[Cluster]) -> None:
    cluster = cluster_factory(model_delay=1.5)
    cluster.start_worker()
    results: dict[int, str] = {}

    def client(i: int) -> None:
        """Asks and waits; on a broken connection it asks again with the same key, then polls."""
        body = {"question": f"{QUESTIONS[i % len(QUESTIONS)]} (client {letters(i)})"}
        headers = {"Idempotency-Key": f"client-{i}", "Prefer": "wait=20"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with httpx.Client(base_url=cluster.api.base, timeout=30) as http:
                    response = http.post("/api/v1/ask", json=body, headers=headers)
                    question_id = response.json()["question_id"]
                    while response.json().get("status") not in ("completed", "failed"):
                        response = http.get(f"/api/v1/questions/{question_id}", params={"wait": 10})
                    results[i] = question_id
                    return
            except (httpx.TransportError, ValueError, KeyError):
                time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    waiting = 20 - len(results)
    assert waiting > 0, "every client had its answer before the API was killed"
    cluster.restart_api()
    say("SIGKILL the API while 20 clients wait, then started it again on the same port")
    for thread in threads:
        thread.join(timeout=120)
    ids = list(results.values())
    assert len(ids) == 20, f"only {len(ids)} clients got their answer"
    assert len(set(ids)) == 20  # a retried ask never made a second question
    _check(cluster.summary("api_restart", ids, cluster.statuses(ids)))


def test_sqlite_with_four_workers_at_full_speed(cluster_factory: type[Cluster]) -> None:
    cluster = cluster_factory(model_delay=0.0)
    for _ in range(4):
        cluster.start_worker(concurrency=2)
    say("4 worker processes (8 pool processes) and the API writing to one SQLite file")
    ids = cluster.ask(300)
    counts = cluster.wait_terminal(ids, timeout=120)
    locked = cluster.logs_contain("database is locked")
    say(f"logs mentioning 'database is locked': {locked or 'none'}")
    assert locked == []
    _check(cluster.summary("sqlite_contention", ids, counts))
