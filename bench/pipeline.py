"""What our own request pipeline costs, each figure beside a floor measured in the same run.

    .venv/bin/python bench/pipeline.py [--database URL] [--quick] [--only P1,P2,...]
                                       [--embedded-rss]

Everything runs on loopback in processes this script starts and ends (bench/harness.py): its own
Redis, a fresh SQLite file (or, with --database postgresql+psycopg://postgres@127.0.0.1/postgres,
a database bench_<random> created there and dropped), the API and Celery workers started as
`make run` starts them, answering extractively (no model: only our own path is timed), with no
rate limits, no queue limit and an operator's key on every call. The floors (bench/floors.py): a
bare FastAPI app validating the same body; the same app storing one row in the run's database
and sending one Celery task before its 202 (floor (c): what any durable 202 costs on this
stack); a bare Celery worker with a no-op task on the same Redis. Load comes from
bench/loadgen.py, a process of its own, for the floor and for us alike.

  P1  sync /ask: the client's latency minus the worker's own time, vs a Celery round trip
  P2  async /ask (Prefer: respond-async) with no worker: accepted req/s, vs the bare app
  P3  drain: queued questions answered per second by 1, 2, 4 pool processes, vs no-op tasks/s
  P4  SSE: a model streaming at a fixed rate (bench/fake_model.py); the tokens/s reaching the
      client and the delay of the first, vs what the model sent
  P5  the same question twice: a cache hit against the answering path (extractive, and the
      fake model)
  RSS peak resident set of the API and of a worker pool process (and, with --embedded-rss, of a
      pool process that loaded the embedded model)

Timings are printed, never asserted; the last table is Markdown for the README.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import redis
from sqlalchemy import func, select, text

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.floors import NOOP_TASK, create_celery  # noqa: E402
from bench.harness import (  # noqa: E402
    PYTHON,
    Children,
    System,
    fresh_database,
    peak_rss_mb,
    pool_peak_rss_mb,
    start_redis,
    wait_http,
)
from bench.loadgen import tag  # noqa: E402
from shared.cli.launcher import free_port  # noqa: E402
from shared.core.config import PROJECT_ROOT, Settings  # noqa: E402
from shared.core.errors import LLMError  # noqa: E402
from shared.knowledge.loader import EntryKind, knowledge_files, load_entries  # noqa: E402
from shared.llm.embedded import default_model_path  # noqa: E402
from shared.questions.models import TERMINAL_STATUSES, Question, QuestionStatus  # noqa: E402

PHASES = ("P1", "P2", "P3", "P4", "P5")
# The answer cache off for P1 and P3: they time the answering path itself, which the few dozen
# questions of knowledge/, asked again and again, would otherwise skip.
NO_CACHE = {"ANSWER_CACHE": "false"}
MODEL_RATE = 50.0  # tokens/s the fake model streams at in P4
DRAIN_CONCURRENCY = (1, 2, 4)


@dataclass(frozen=True)
class Sizes:
    duration: float  # seconds of load counted, after a second of warm-up
    round_trips: int  # sequential no-op tasks of the Celery floor
    floor_tasks: int  # no-op tasks sent at once for the floor's tasks/s
    sync_asks: int  # P1
    drain_batch: int  # P3, per concurrency
    drain_limit: float  # P3: seconds a batch may take; the rate is then over what was done
    streams: int  # P4 answers
    cache_pairs: int  # P5


FULL = Sizes(10, 300, 2000, 200, 2000, 45, 5, 10)
QUICK = Sizes(4, 100, 500, 50, 500, 15, 2, 3)


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    floor: str = "-"
    ratio: str = "-"
    goal: str = "-"


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        against = f" against {row.floor} ({row.ratio})" if row.floor != "-" else ""
        goal = f", goal {row.goal}" if row.goal != "-" else ""
        print(f"  => {row.figure}: {row.ours}{against}{goal}")

    def ordered(self) -> list[Row]:
        """By phase (P1 … P5, then RSS), in the order measured within one."""
        return sorted(self.rows, key=lambda row: row.figure.split()[0])

    def print(self) -> None:
        header = Row("figure", "ours", "floor", "ratio", "goal")
        rows = [astuple(row) for row in [header, *self.ordered()]]
        widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
        for cells in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))

    def markdown(self) -> str:
        lines = ["| figure | ours | floor | ratio | goal |", "|---|---|---|---|---|"]
        return "\n".join(lines + [f"| {' | '.join(astuple(row))} |" for row in self.ordered()])


def times(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}x" if floor > 0 else "-"


def share(ours: float, floor: float, *, digits: int = 0) -> str:
    return f"{100 * ours / floor:.{digits}f} %" if floor > 0 else "-"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- what is asked ---------------------------------------------------------------------------
def knowledge_entries() -> list[tuple[str, str]]:
    """(question, answer) of every Q:/A: entry under knowledge/."""
    root = PROJECT_ROOT / "knowledge"
    entries = load_entries(knowledge_files(root), root=root)
    return [(e.question, e.answer) for e in entries if e.kind is EntryKind.QA]


def ask_bodies(questions: list[str]) -> list[str]:
    """/ask bodies for the load generator: each question with a different tag each time."""
    return [json.dumps({"question": f"{question} (ref {{tag}})"}) for question in questions]


# --- floors ----------------------------------------------------------------------------------
def load(
    children: Children,
    port: int,
    bodies: list[str],
    headers: list[str],
    *,
    duration: float | None = None,
    total: int | None = None,
    connections: int = 32,
) -> dict[str, Any]:
    """bench/loadgen.py against POST /api/v1/ask on `port`: for `duration` s after a second of
    warm-up, or `total` requests."""
    command = [PYTHON, str(BENCH / "loadgen.py"), f"http://127.0.0.1:{port}/api/v1/ask",
               "--connections", str(connections)]  # fmt: skip
    command += [arg for body in bodies for arg in ("--body", body)]
    command += [arg for header in headers for arg in ("--header", header)]
    command += ["--total", str(total)] if total else ["--warmup", "1", "--duration", str(duration)]
    process = children.start("loadgen", command, dict(os.environ), stdout=subprocess.PIPE)
    try:
        output, _ = process.communicate(timeout=(duration or 0) + 180)
    finally:
        children.stop("loadgen")
    if process.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{output.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def accepted(counts: dict[str, int]) -> int:
    return sum(count for status, count in counts.items() if status.startswith("2"))


def floor_http(
    children: Children,
    bodies: list[str],
    headers: list[str],
    sizes: Sizes,
    *,
    factory: str = "bench.floors:create_app",
    label: str = "floor (a) bare FastAPI",
    env: dict[str, str] | None = None,
) -> tuple[float, float | None]:
    """Floor (a): req/s of a bare FastAPI app under the same load; its peak RSS. With
    `factory=bench.floors:create_durable_app`, floor (c): the same app storing and queueing."""
    port = free_port()
    process = children.start(
        "floor-api",
        [PYTHON, "-m", "uvicorn", "--factory", factory,
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        {**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        wait_http(port, "/openapi.json", process=process)
        result = load(children, port, bodies, headers, duration=sizes.duration)
        rss = peak_rss_mb(process.pid)
    finally:
        children.stop("floor-api")
    print(
        f"  {label}: {result['accepted_per_second']:.0f} req/s, "
        f"latency p50 {result['latency_p50_ms']:.1f} ms p99 {result['latency_p99_ms']:.1f} ms, "
        f"statuses {result['in_window']}, errors {result['errors']}"
    )
    return result["accepted_per_second"], rss


def floor_durable(
    children: Children,
    bodies: list[str],
    headers: list[str],
    sizes: Sizes,
    database_url: str,
    redis_url: str,
) -> float:
    """Floor (c): req/s of the bare app that stores one row in the run's database and sends one
    task to its Redis (another database number), the least a durable `202` costs here."""
    broker = redis_url.rpartition("/")[0] + "/2"
    env = {"FLOOR_DATABASE_URL": database_url, "FLOOR_REDIS_URL": broker}
    rps, _ = floor_http(
        children, bodies, headers, sizes,
        factory="bench.floors:create_durable_app",
        label="floor (c) bare FastAPI, one row stored and one task queued",
        env=env,
    )  # fmt: skip
    redis.Redis.from_url(broker).flushdb()
    return rps


@dataclass(frozen=True)
class CeleryFloor:
    round_trips: list[float]  # seconds, send + wait for the result
    tasks_per_second: float
    pool_rss: float | None


def floor_celery(children: Children, redis_url: str, sizes: Sizes) -> CeleryFloor:
    """Floor (b): a bare Celery worker (concurrency 1, prefork) with a no-op task on our Redis
    (another database number), results through Redis."""
    url = redis_url.rpartition("/")[0] + "/1"
    node = "floor@localhost"
    process = children.start(
        "floor-worker",
        [PYTHON, "-m", "celery", "-A", "bench.floors:celery_app", "worker",
         "--loglevel", "WARNING", "--concurrency", "1", "--pool", "prefork", "--hostname", node],
        {**os.environ, "FLOOR_REDIS_URL": url},
    )  # fmt: skip
    app = create_celery(url)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[node], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the floor worker did not start: {children.log('floor-worker')}"
                )
        for _ in range(10):  # warm-up
            app.send_task(NOOP_TASK).get(timeout=10)
        round_trips = []
        for _ in range(sizes.round_trips):
            started = time.perf_counter()
            app.send_task(NOOP_TASK).get(timeout=10)
            round_trips.append(time.perf_counter() - started)
        started = time.perf_counter()
        results = [app.send_task(NOOP_TASK) for _ in range(sizes.floor_tasks)]
        for result in results:
            result.get(timeout=120)
        rate = sizes.floor_tasks / (time.perf_counter() - started)
        pool_rss = pool_peak_rss_mb(process.pid)
    finally:
        app.close()
        children.stop("floor-worker")
    print(
        f"  floor (b) bare Celery: round trip p50 {ms(percentile(round_trips, 0.5))} "
        f"p95 {ms(percentile(round_trips, 0.95))}; {rate:.0f} tasks/s "
        f"({sizes.floor_tasks} sent at once)"
    )
    return CeleryFloor(round_trips, rate, pool_rss)


# --- the service -----------------------------------------------------------------------------
def count_questions(system: System, *, since: datetime | None = None) -> Counter[str]:
    """Stored questions by status (created at or after `since`)."""
    query = select(Question.status, func.count()).group_by(Question.status)
    if since is not None:
        query = query.where(Question.created_at >= since)
    with system.reader.connect() as connection:
        return Counter({status.value: n for status, n in connection.execute(query).all()})


def p2_enqueue(
    system: System,
    table: Table,
    floor: float,
    durable: float,
    bodies: list[str],
    headers: list[str],
    sizes: Sizes,
) -> None:
    """Async enqueue with no worker: accepted req/s, then every 202 must be a stored question."""
    before = sum(count_questions(system).values())
    result = load(
        system.children, system.settings.api_port, bodies, headers, duration=sizes.duration
    )
    stored = sum(count_questions(system).values()) - before
    queued = system.purge_queue()
    ours = result["accepted_per_second"]
    print(
        f"  P2 latency p50 {result['latency_p50_ms']:.1f} ms p99 {result['latency_p99_ms']:.1f} ms"
        f", statuses {result['in_window']}, errors {result['errors']}\n"
        f"  P2 durability: {accepted(result['total'])} answered 2xx, {stored} questions stored, "
        f"{queued} tasks queued"
    )
    table.add(
        Row("P2 async enqueue, req/s", f"{ours:.0f}", f"{floor:.0f}", share(ours, floor), "≥ 50 %")
    )
    table.add(
        Row(
            "P2 against floor (c): store one row and queue",
            f"{ours:.0f}",
            f"{durable:.0f}",
            share(ours, durable),
        )
    )


def question_times(system: System, ids: list[str]) -> dict[str, tuple[float, float, float]]:
    """When each answered question was stored, claimed and answered (epoch s). `created_at` is
    set by the API just before it stores the question, `started_at` when a worker claims it
    (`claim_question`), `completed_at` when the worker stores the answer (`complete_question`,
    just before that commit): completed - started is the worker's own time (`processing_time`
    in the API's answer is the same span, in whole milliseconds)."""
    query = select(Question.id, Question.created_at, Question.started_at, Question.completed_at)
    query = query.where(Question.id.in_(ids), Question.status == QuestionStatus.COMPLETED)
    with system.reader.connect() as connection:
        rows = connection.execute(query).all()
    return {
        qid: (created.timestamp(), started.timestamp(), completed.timestamp())
        for qid, created, started, completed in rows
        if started and completed
    }


def p1_sync(
    system: System, table: Table, floor: CeleryFloor, questions: list[str], sizes: Sizes
) -> None:
    """Sequential sync /ask: the client's latency minus the worker's own time, vs a Celery
    round trip. What remains — HTTP, storing and queuing the question, the broker, the pool's
    dispatch, the claim, the answer's commit, waking the waiting request, reading the answer
    back — is the pipeline's overhead."""
    client = system.client()
    for i in range(5):  # warm-up: first queries, first connections
        client.call("POST", "/api/v1/ask", {"question": f"{questions[i]} (warm {tag(i)})"})
    asked: dict[str, tuple[float, float]] = {}  # sent, answer read (epoch s)
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    for i in range(sizes.sync_asks):
        question = f"{questions[i % len(questions)]} (ref {tag(i)})"
        sent = time.time()
        status, body, _ = client.call("POST", "/api/v1/ask", {"question": question})
        received = time.time()
        statuses[status] += 1
        if status == 200:
            asked[body["question_id"]] = (sent, received)
            kinds[f"{body['provider']}/{body['action']}/{body['origin']}"] += 1
    client.close()
    stored = question_times(system, list(asked))
    parts: dict[str, list[float]] = {
        name: [] for name in ("latency", "own", "overhead", "in", "queued", "out")
    }
    for qid, (created, started, completed) in stored.items():
        sent, received = asked[qid]
        parts["latency"].append(received - sent)
        parts["own"].append(completed - started)
        parts["overhead"].append(received - sent - (completed - started))
        parts["in"].append(created - sent)
        parts["queued"].append(started - created)
        parts["out"].append(received - completed)
    p50 = {name: ms(statistics.median(values)) for name, values in parts.items()}
    print(
        f"  P1 {len(stored)} answers {dict(kinds)}, statuses {dict(statuses)}\n"
        f"  P1 p50: latency {p50['latency']} = worker's own time {p50['own']} + overhead "
        f"{p50['overhead']}, of which client → stored {p50['in']}, stored → claimed by a "
        f"worker {p50['queued']}, answer stored → client {p50['out']}"
    )
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        ours, base = percentile(parts["overhead"], q), percentile(floor.round_trips, q)
        table.add(
            Row(f"P1 sync /ask overhead {label}", ms(ours), ms(base), times(ours, base), "≤ 2x")
        )


def p5_cache(
    system: System, table: Table, questions: list[str], path: str, goal: str = "-"
) -> None:
    """Each question twice, sync: answered along `path`, then (if there is a cache) a hit. Only
    questions nothing like any asked before: the cache also matches questions worded alike."""
    client = system.client()
    pairs: list[tuple[float, float]] = []  # a miss, then a hit
    seen: Counter[str] = Counter()
    for i, question in enumerate(questions):
        body = {"question": f"{question} (case {tag(i)})"}
        _, answer, first = client.call("POST", "/api/v1/ask", body)
        _, again, second = client.call("POST", "/api/v1/ask", body)
        seen[f"{answer.get('provider')}/{answer.get('origin')} -> {again.get('provider')}"] += 1
        if answer.get("provider") != "cache" and again.get("provider") == "cache":
            pairs.append((first, second))
    client.close()
    print(f"  P5 providers (first -> second): {dict(seen)}")
    figure = f"P5 cache hit vs {path}, p50"
    if not pairs:
        table.add(Row(figure, "no cache"))
        return
    miss, hit = (statistics.median(seconds) for seconds in zip(*pairs, strict=True))
    table.add(Row(figure, ms(hit), ms(miss), share(hit, miss, digits=1), goal))


def p3_drain(
    system: System,
    table: Table,
    floor: CeleryFloor,
    bodies: list[str],
    headers: list[str],
    sizes: Sizes,
    rss: dict[str, float],
) -> None:
    """For 1, 2, 4 pool processes: queue a batch with no worker, then start one and let it
    answer the batch, or as much of it as the time limit allows."""
    for concurrency in DRAIN_CONCURRENCY:
        since = datetime.now(UTC)
        result = load(
            system.children,
            system.settings.api_port,
            bodies,
            headers,
            total=sizes.drain_batch,
            connections=8,
        )
        batch = accepted(result["total"])
        worker = system.start_worker(concurrency, **NO_CACHE)
        deadline = time.monotonic() + sizes.drain_limit
        first_seen = last_seen = 0.0  # on the bench's clock: the first answer seen, the last
        seen = answered = 0
        while time.monotonic() < deadline:
            finished = count_questions(system, since=since)
            answered = sum(finished[s.value] for s in TERMINAL_STATUSES)
            if answered > seen:
                now = time.monotonic()
                first_seen = first_seen or now
                last_seen, seen = now, answered
            if answered >= batch:
                break
            time.sleep(0.1)
        left = system.purge_queue()
        note_pool_rss(rss, worker.pid)
        system.stop_worker(worker)
        done, own = completion_span(system, since)
        # The clock starts at the first answer seen: pool processes begin as soon as each is
        # ready. Polled every 0.1 s, so the span is known to ±0.1 s (of tens of seconds).
        rate = (seen - 1) / (last_seen - first_seen) if last_seen > first_seen else 0.0
        print(
            f"  P3 {concurrency} pool process(es): {done}/{batch} answered"
            f"{f' ({left} left when the limit ran out)' if left else ''}; "
            f"the worker's own time p50 {ms(statistics.median(own)) if own else '-'}"
        )
        one = concurrency == 1  # the floor is one no-op pool process
        table.add(
            Row(
                f"P3 drain, {concurrency} pool process(es), q/s",
                f"{rate:.0f}",
                f"{floor.tasks_per_second:.0f}" if one else "-",
                share(rate, floor.tasks_per_second) if one else "-",
                "≥ 50 %" if one else "-",
            )
        )


def completion_span(system: System, since: datetime) -> tuple[int, list[float]]:
    """How many questions of the batch were answered, and the worker's own time for each (see
    `question_times`)."""
    query = select(Question.started_at, Question.completed_at).where(
        Question.created_at >= since, Question.status == QuestionStatus.COMPLETED
    )
    with system.reader.connect() as connection:
        spans = [(start, end) for start, end in connection.execute(query) if start and end]
    return len(spans), [(end - start).total_seconds() for start, end in spans]


@dataclass
class Streamed:
    """One answer streamed to a client over SSE, with what the model sent."""

    question: str
    received: list[tuple[float, str]]  # (epoch s, text) of each `token` event
    sent: list[float]  # epoch s at which the model wrote each token
    finished: float  # epoch s at which the model wrote its `done` line
    resets: int
    record: dict[str, Any]


def stream_one(system: System, fake_port: int, question: str) -> Streamed:
    """Open a conversation's event stream, then post the question and read its answer."""
    client = system.client()
    _, created, _ = client.call("POST", "/api/v1/conversations")
    conversation, token = created["conversation_id"], created["token"]
    events: list[tuple[float, str, dict[str, Any]]] = []
    connected, done = threading.Event(), threading.Event()

    def read() -> None:
        url = f"http://127.0.0.1:{system.settings.api_port}/api/v1/conversations/{conversation}/events"
        headers = {"Authorization": f"Bearer {system.key}", "X-Conversation-Token": token}
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            connected.set()
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    events.append((time.time(), kind, data))
                    if kind == "turn" and data.get("status") in ("completed", "failed"):
                        done.set()
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not connected.wait(10):
        raise TimeoutError("the event stream did not open within 10 s")
    time.sleep(0.1)  # the stream is reading Redis before the question exists
    _, posted, _ = client.call(
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        {"text": question, "context_method": "all"},
        {"X-Conversation-Token": token, "Prefer": "respond-async"},
    )
    if not done.wait(60):
        raise TimeoutError(f"no completed turn on the event stream within 60 s: {question!r}")
    _, record, _ = client.call("GET", f"/api/v1/questions/{posted['question_id']}")
    client.close()
    last = httpx.get(f"http://127.0.0.1:{fake_port}/bench/last", timeout=5).json()
    return Streamed(
        question=question,
        received=[(at, data["text"]) for at, kind, data in events if kind == "token"],
        sent=last["sent"],
        finished=last["finished"],
        resets=sum(kind == "reset" for _, kind, _ in events),
        record=record,
    )


def words(text: str) -> int:
    return len(text.split())


def p4_stream(system: System, table: Table, fake_port: int, entries: list[tuple[str, str]]) -> None:
    """Answers streamed by a model at MODEL_RATE tokens/s: how fast and how soon they reach the
    client. Both rates count from the model's first token: (tokens - 1) / (time of the last
    token, as sent or as received - time the model sent the first)."""
    samples = [stream_one(system, fake_port, question) for question, _ in entries]
    model_rates, client_rates, first_delays = [], [], []
    after_word, after_release = [], []
    for sample in samples:
        record = sample.record
        print(
            f"  P4 {sample.question!r}: {len(sample.sent)} tokens sent, "
            f"{len(sample.received)} token events, "
            f"{sample.resets} resets: {record['provider']}/{record['origin']}"
            f"{', ' + record['fallback_reason'] if record['fallback_reason'] else ''}"
        )
        sent = sample.sent
        if not sample.received or len(sent) < 2 or sample.resets:
            continue
        model_rates.append((len(sent) - 1) / (sent[-1] - sent[0]))
        client_rates.append((len(sent) - 1) / (sample.received[-1][0] - sent[0]))
        first_delays.append(sample.received[0][0] - sent[0])
        count = 0
        for at, chunk in sample.received:
            count = min(count + words(chunk), len(sent))
            # A sentence goes out once the model's next chunk shows where it ends.
            released = sent[count] if count < len(sent) else sample.finished
            after_word.append(at - sent[count - 1])
            after_release.append(at - released)
    if not client_rates:
        table.add(Row("P4 SSE tokens/s at the client", "not streamed (see above)"))
        return
    client_rate, model_rate = statistics.median(client_rates), statistics.median(model_rates)
    print(
        "  P4 text goes out a checked sentence at a time, once the model's next chunk shows the "
        "sentence ended: the first event waits for the first sentence. Each event after the "
        f"model's last word in it: p50 {ms(statistics.median(after_word))}; after the chunk "
        f"that released it: p50 {ms(statistics.median(after_release))}, "
        f"max {ms(max(after_release))}"
    )
    table.add(
        Row(
            "P4 SSE tokens/s at the client",
            f"{client_rate:.1f}",
            f"{model_rate:.1f}",
            share(client_rate, model_rate),
            "≥ 95 %",
        )
    )
    first = statistics.median(first_delays)
    table.add(Row("P4 first token, model → client", ms(first), "-", "-", "≤ 50 ms"))
    table.add(
        Row("P4 sentence released → client p50", ms(statistics.median(after_release)), goal="-")
    )


def note_pool_rss(rss: dict[str, float], worker_pid: int) -> None:
    """Keep the largest peak RSS of the worker's pool processes."""
    rss["pool"] = max(rss.get("pool", 0.0), pool_peak_rss_mb(worker_pid) or 0.0)


def embedded_missing(settings: Settings) -> str | None:
    """Why the embedded model cannot be measured here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    try:
        path = settings.embedded_model_path or default_model_path()
    except LLMError as exc:
        return exc.message
    return None if path.exists() else f"no model file at {path}"


def embedded_rss(system: System, table: Table, questions: list[str]) -> None:
    """One worker with the embedded model answers three questions; its pool process's peak."""
    if (reason := embedded_missing(system.settings)) is not None:
        print(f"  embedded model: skipped ({reason})")
        table.add(Row("RSS pool process, embedded model", f"skipped: {reason}"))
        return
    worker = system.start_worker(1, LLM_PROVIDER="embedded")
    try:
        client = system.client()
        for i, question in enumerate(questions[:3]):
            status, body, seconds = client.call(
                "POST",
                "/api/v1/ask",
                {"question": f"{question} (rss {tag(i)})"},
                {"Prefer": "wait=120"},
            )
            print(
                f"  embedded: {status} {body.get('provider')}/{body.get('origin')} in {ms(seconds)}"
            )
        client.close()
        peak = pool_peak_rss_mb(worker.pid) or 0.0
    finally:
        system.stop_worker(worker)
    table.add(Row("RSS pool process, embedded model", f"{peak:.0f} MB", goal="≤ 700 MB"))


# --- the run ---------------------------------------------------------------------------------
def print_header(system: System) -> None:
    cpu = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    git = ["git", "-C", str(PROJECT_ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    url = system.reader.url
    if url.get_backend_name() == "sqlite":
        database = f"SQLite {sqlite3.sqlite_version}, a new file"
    else:
        with system.reader.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        database = f"PostgreSQL {version}, database {url.database} created for this run"
    print(f"machine   {cpu}, {os.cpu_count()} cores")
    print(f"date      {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"database  {database}")
    print(f"commit    {commit.stdout.strip()}{' + uncommitted changes' if dirty else ''}\n")


def interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", help="a PostgreSQL URL to create a database through")
    parser.add_argument("--quick", action="store_true", help="smaller batches, shorter loads")
    parser.add_argument("--only", default=",".join(PHASES), help="e.g. P1,P3")
    parser.add_argument(
        "--embedded-rss",
        action="store_true",
        help="also the peak RSS of a pool process with the embedded model",
    )
    args = parser.parse_args()
    args.only = {phase.strip().upper() for phase in args.only.split(",") if phase.strip()}
    if unknown := args.only - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    sizes, phases, table = QUICK if args.quick else FULL, args.only, Table()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        directory = Path(tmp)
        database_url = stack.enter_context(fresh_database(args.database, directory))
        children = Children(directory)
        stack.callback(children.stop_all)
        try:
            run(args, sizes, phases, table, children, database_url, stack)
        except Exception:
            show_logs(children)
            raise
    print(f"\n{len(table.rows)} figures in {time.monotonic() - started:.0f} s\n")
    table.print()
    print(f"\n{table.markdown()}")
    return 0


def run(
    args: argparse.Namespace,
    sizes: Sizes,
    phases: set[str],
    table: Table,
    children: Children,
    database_url: str,
    stack: contextlib.ExitStack,
) -> None:
    redis_url = start_redis(children, children.logs)
    metrics = children.logs / "metrics"  # each pool process's Prometheus files, as `make run`
    metrics.mkdir()
    fake_port = free_port()
    system = System.configure(
        children,
        database_url=database_url,
        redis_url=redis_url,
        celery_queue=f"bench-{secrets.token_hex(4)}",
        api_port=free_port(),
        api_keys=f"bench-{secrets.token_urlsafe(16)}",
        llm_provider="extractive",
        ollama_host=f"http://127.0.0.1:{fake_port}",
        ollama_model="mistral",
        rate_limit_per_minute=0,
        message_rate_limit_per_minute=0,
        max_queue_depth=0,  # 0: no limit
        handoff_webhook_url="",  # nothing leaves loopback, whatever .env says
        log_level="WARNING",
        worker_metrics_port=free_port(),
    )
    system.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    stack.callback(system.close)
    system.migrate()
    print_header(system)
    entries = knowledge_entries()
    questions = [question for question, _ in entries]
    bodies = ask_bodies(questions)
    headers = [f"Authorization: Bearer {system.key}", "Prefer: respond-async"]
    rss: dict[str, float] = {}

    floor_rps, floor_api_rss = (
        floor_http(children, bodies, headers, sizes) if "P2" in phases else (0.0, None)
    )
    durable_rps = (
        floor_durable(children, bodies, headers, sizes, database_url, redis_url)
        if "P2" in phases
        else 0.0
    )
    celery = floor_celery(children, redis_url, sizes) if phases & {"P1", "P3"} else None
    if phases & {"P4", "P5"}:
        start_fake_model(children, fake_port)
    system.start_api()
    if "P2" in phases:
        p2_enqueue(system, table, floor_rps, durable_rps, bodies, headers, sizes)
    # P4 streams the longest answers; P5 asks other questions, each unlike any asked before.
    longest = sorted(entries, key=lambda entry: -words(entry[1]))[: sizes.streams]
    unstreamed = [question for question, answer in entries if (question, answer) not in longest]
    n = sizes.cache_pairs
    if "P5" in phases:  # the run's first answers: nothing is in the cache yet
        worker = system.start_worker(1)
        p5_cache(system, table, unstreamed[:n], "extractive answer")
        note_pool_rss(rss, worker.pid)
        system.stop_worker(worker)
    if "P1" in phases and celery is not None:
        worker = system.start_worker(2, **NO_CACHE)
        p1_sync(system, table, celery, questions, sizes)
        note_pool_rss(rss, worker.pid)
        system.stop_worker(worker)
    if "P3" in phases and celery is not None:
        p3_drain(system, table, celery, bodies, headers, sizes, rss)
    if phases & {"P4", "P5"}:  # a model streaming at MODEL_RATE tokens/s, the cache on
        worker = system.start_worker(1, LLM_PROVIDER="ollama")
        if "P5" in phases:
            path = f"model answer ({MODEL_RATE:.0f} tokens/s)"
            p5_cache(system, table, unstreamed[n : 2 * n], path, goal="≤ 1 %")
        if "P4" in phases:
            p4_stream(system, table, fake_port, longest)
        note_pool_rss(rss, worker.pid)
        system.stop_worker(worker)
    add_rss_rows(table, system, rss, floor_api_rss, celery)
    if args.embedded_rss:
        embedded_rss(system, table, questions)


def start_fake_model(children: Children, port: int) -> None:
    fake = children.start(
        "fake-model",
        [PYTHON, str(BENCH / "fake_model.py"), "--port", str(port), "--rate", str(MODEL_RATE)],
        dict(os.environ),
    )
    wait_http(port, "/api/tags", process=fake)


def add_rss_rows(
    table: Table,
    system: System,
    rss: dict[str, float],
    floor_api: float | None,
    celery: CeleryFloor | None,
) -> None:
    """Peak RSS of the API and of the largest pool process, beside the floors' own."""
    api = peak_rss_mb(system.api_pid) or 0.0
    floor_text = f"{floor_api:.0f} MB" if floor_api else "-"
    table.add(
        Row(
            "RSS API process (peak)",
            f"{api:.0f} MB",
            floor_text,
            times(api, floor_api or 0),
            "≤ 150 MB",
        )
    )
    if "pool" in rss:
        floor_pool = celery.pool_rss if celery is not None and celery.pool_rss else 0.0
        table.add(
            Row(
                "RSS worker pool process (peak)",
                f"{rss['pool']:.0f} MB",
                f"{floor_pool:.0f} MB" if floor_pool else "-",
                times(rss["pool"], floor_pool),
            )
        )


def show_logs(children: Children, lines: int = 15) -> None:
    """The end of every process's log, before the run's directory goes away."""
    for log in sorted(children.logs.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            print(f"--- {log.name}", *tail, sep="\n", file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: every process was stopped on the way
        print(f"interrupted ({stop or 'SIGINT'}); everything this run started is stopped")
        sys.exit(130)
