"""The service under test on loopback for bench/pipeline.py: its own Redis, a fresh database, the
API and workers started as `make run` starts them, each a process this run starts and ends."""

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis
from sqlalchemy import Engine, create_engine

from shared.cli.launcher import free_port, redis_server_binary, wait_for_redis
from shared.core.config import PROJECT_ROOT, Settings
from shared.core.processes import die_with_parent
from shared.core.queue import create_producer
from shared.system.workers import PoolState, read_pool_reports
from tests.support.databases import throwaway_database

PYTHON = sys.executable


class Children:
    """Processes this run started: each in a session of its own (Ctrl-C reaches only this
    script, which then stops them), SIGKILLed by the kernel should this script die."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, command: list[str], env: dict[str, str], *, stdout: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `command`; its output goes to `stdout` (say PIPE) or to the run's log `name`."""
        log: IO[bytes] | int = stdout if stdout is not None else self.log(name).open("ab")
        try:
            process = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        finally:
            if not isinstance(log, int):
                log.close()
        self.running[name] = process
        return process

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def stop(self, name: str, *, grace: float = 10.0) -> None:
        """SIGTERM its process group, then SIGKILL whatever is left after `grace` seconds."""
        process = self.running.pop(name)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # also a pool process left behind
        process.wait()

    def stop_all(self) -> None:
        """Services first, Redis last (workers ack their tasks on the way out)."""
        for name in sorted(self.running, key=lambda name: name == "redis"):
            self.stop(name, grace=5.0)


def start_redis(children: Children, directory: Path) -> str:
    port = free_port()
    children.start(
        "redis",
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        dict(os.environ),
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url, timeout=10)
    return url


@contextlib.contextmanager
def fresh_database(admin_url: str | None, directory: Path) -> Iterator[str]:
    """A new SQLite file in `directory`, or a PostgreSQL database `bench_<random>` created
    through `admin_url` and dropped afterwards; not yet migrated."""
    with throwaway_database(admin_url, directory, prefix="bench") as url:
        yield url


@dataclass(frozen=True)
class Worker:
    node: str
    pid: int  # the main process; its children are the pool


@dataclass
class System:
    """The service's settings as its processes read them from their environment."""

    children: Children
    settings: Settings
    env: dict[str, str]
    reader: Engine = field(init=False)
    broker: redis.Redis = field(init=False)
    workers: int = 0

    def __post_init__(self) -> None:
        # A plain engine: the service's own SQLite engine begins every transaction IMMEDIATE,
        # which would take the write lock from the workers each time the bench looks.
        self.reader = create_engine(self.settings.database_url)
        self.broker = redis.Redis.from_url(self.settings.redis_url)

    @classmethod
    def configure(cls, children: Children, **values: Any) -> "System":
        """Settings from `values` (all else default), and the environment that says the same."""
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "LLM_"))}
        for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
            env[name.upper()] = str(value)
        env["PYTHONUNBUFFERED"] = "1"
        return cls(children, settings, env)

    @property
    def api_pid(self) -> int:
        return self.children.running["api"].pid

    def migrate(self) -> None:
        """`alembic upgrade head`, as `make run` does before serving."""
        subprocess.run(
            [PYTHON, "-m", "alembic", "upgrade", "head"], env=self.env, cwd=PROJECT_ROOT,
            check=True, capture_output=True,
        )  # fmt: skip

    def start_api(self) -> None:
        """One uvicorn process with the launcher's options; returns once /health answers."""
        self.children.start(
            "api",
            [PYTHON, "-m", "uvicorn", "--factory", "api.main:create_app",
             "--host", "127.0.0.1", "--port", str(self.settings.api_port), "--no-access-log"],
            self.env,
        )  # fmt: skip
        wait_http(self.settings.api_port, "/api/v1/health", process=self.children.running["api"])

    def start_worker(self, concurrency: int, **overrides: str) -> Worker:
        """A Celery worker as the launcher starts it, once every pool process reports ready
        (and /ready agrees)."""
        self.workers += 1
        node = f"bench-{self.workers}@localhost"
        self.children.start(
            node,
            [PYTHON, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--loglevel", self.settings.log_level, "--concurrency", str(concurrency),
             "--pool", "prefork", "--queues", self.settings.celery_queue, "--hostname", node],
            {**self.env, **overrides},
        )  # fmt: skip
        self.wait_pool(node, concurrency, timeout=240)
        wait_http(self.settings.api_port, "/api/v1/ready", key=self.key, timeout=30)
        return Worker(node, self.children.running[node].pid)

    def wait_pool(self, node: str, count: int, *, timeout: float) -> None:
        """Wait until `count` pool processes of `node` report ready."""
        deadline = time.monotonic() + timeout
        process = self.children.running[node]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{node} exited; see {self.children.log(node)}")
            reports = read_pool_reports(self.broker, queue=self.settings.celery_queue)
            if sum(r.worker == node and r.state is PoolState.READY for r in reports) >= count:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{node}: {count} pool process(es) not ready in {timeout:.0f} s")

    def stop_worker(self, worker: Worker) -> None:
        self.children.stop(worker.node, grace=15.0)

    def purge_queue(self) -> int:
        """Drop every task waiting in the service's queue; how many there were."""
        producer = create_producer(self.settings)
        try:
            with producer.connection_for_write() as connection:
                return int(connection.default_channel.queue_purge(self.settings.celery_queue))
        finally:
            producer.close()

    @property
    def key(self) -> str:
        return self.settings.api_key_list[0]

    def client(self) -> "Client":
        return Client(self.settings.api_port, self.key)

    def close(self) -> None:
        self.reader.dispose()
        self.broker.close()


def wait_http(
    port: int,
    path: str,
    *,
    key: str | None = None,
    timeout: float = 60,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until GET `path` answers 200."""
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {path} answered")
        client = Client(port, key)
        with contextlib.suppress(OSError, http.client.HTTPException):
            status = client.call("GET", path)[0]
        client.close()
        if status == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(f"GET {path} on port {port}: {status} after {timeout:.0f} s")


class Client:
    """One keep-alive HTTP/1.1 connection (the standard library's: little client-side cost)."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=150)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, float]:
        """Status, decoded JSON body and seconds from sending to the whole response read."""
        data = json.dumps(body).encode() if body is not None else None
        sent = {**self.headers, **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        try:
            return self._send(method, path, data, sent)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # uvicorn closed the idle keep-alive connection (after 5 s) before the request
            # reached it: send it once more on a new one.
            self.connection.close()
            return self._send(method, path, data, sent)

    def _send(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Any, float]:
        started = time.perf_counter()
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        seconds = time.perf_counter() - started
        if response.will_close:
            self.connection.close()
        return response.status, json.loads(raw) if raw else None, seconds

    def close(self) -> None:
        self.connection.close()


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a Celery worker's pool)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The fields after the command name, which is in parentheses: state, ppid, …
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def pool_peak_rss_mb(pid: int) -> float | None:
    """The largest peak resident set among a Celery worker's pool processes, in MB."""
    return max((peak for child in child_pids(pid) if (peak := peak_rss_mb(child))), default=None)
