"""The container files: hadolint, `docker-compose config`, and every compose service's command
started here as a process (loopback, the compose environment mapped to local addresses, Ollama
replaced by the embedded model) answering a question — proving commands, env names and ports."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from shared.cli.launcher import free_port, redis_server_binary, wait_for_redis
from shared.core.config import PROJECT_ROOT
from shared.llm.embedded import embedded_available
from tests.support.processes import spawn, stop

DOCKERFILES = ["Dockerfile.api", "Dockerfile.worker"]
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
COMPOSE = shutil.which("docker-compose")


@pytest.mark.skipif(not Path(HADOLINT).exists(), reason="hadolint is not installed")
@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    result = subprocess.run([HADOLINT, str(PROJECT_ROOT / dockerfile)], capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_multi_stage_non_root_locked_and_checked(dockerfile: str) -> None:
    text = (PROJECT_ROOT / dockerfile).read_text()
    assert len(re.findall(r"^FROM python:3\.11-slim", text, re.MULTILINE)) == 2
    assert "COPY --from=build" in text and "--require-hashes" in text
    assert "requirements/build.lock" in text and "--no-build-isolation" in text
    assert re.search(r"^USER \d+", text, re.MULTILINE) and "HEALTHCHECK" in text


SECRETS = {"REDIS_PASSWORD": "redis-secret", "FLOWER_BASIC_AUTH": "ops:flower-secret"}


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [COMPOSE, "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, env={**clean, **env}, cwd="/",
    )  # fmt: skip


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (apt: docker-compose)")
def test_compose_file_validates_offline_and_publishes_on_loopback() -> None:
    result = _compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    for name in ("api", "flower"):
        (port,) = config["services"][name]["ports"]
        # docker-compose 1.x prints "127.0.0.1:8000:8000/tcp", 2.x a mapping
        host_ip = port.split(":")[0] if isinstance(port, str) else port.get("host_ip")
        assert host_ip == "127.0.0.1", port
    # The password reaches Redis and its clients through their environment only.
    assert "redis-secret" not in " ".join(config["services"]["redis"]["command"])
    assert "redis-secret" in config["services"]["worker"]["environment"]["REDIS_URL"]


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (apt: docker-compose)")
def test_compose_refuses_to_start_redis_without_a_password() -> None:
    result = _compose_config({})
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_shapes_a_scalable_service() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendfsync" in redis_command and "noeviction" in redis_command
    assert "requirepass" in redis_command
    assert services["postgres"]["profiles"] == ["postgres"]
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    # Flower goes through our command, which refuses the example password; none on its argv.
    assert services["flower"]["command"] == ["support-assistant", "flower"]


def _dockerfile_cmd_and_env(dockerfile: str) -> tuple[list[str], dict[str, str]]:
    text = (PROJECT_ROOT / dockerfile).read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]  # the runtime stage
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final, re.MULTILINE).group(1))  # type: ignore[union-attr]
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", final, re.MULTILINE):
        env.update(dict(pair.split("=", 1) for pair in shlex.split(line)))
    return cmd, env


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not embedded_available(), reason="llama-cpp-python is not installed")
def test_compose_commands_answer_a_question(tmp_path: Path) -> None:
    services = _compose()["services"]
    redis_port, api_port, flower_port = free_port(), free_port(), free_port()
    (tmp_path / "data").mkdir()
    (tmp_path / "metrics").mkdir()
    # Container paths and addresses, mapped to this machine.
    replacements = {
        "redis-server /tmp/redis.conf": f"{redis_server_binary()} {tmp_path}/redis.conf "
        f"--port {redis_port} --bind 127.0.0.1 --dir {tmp_path}",
        "/tmp/redis.conf": f"{tmp_path}/redis.conf",
        "@redis:6379": f"@127.0.0.1:{redis_port}",
        "/data": str(tmp_path / "data"),
        "/app/knowledge": str(PROJECT_ROOT / "knowledge"),
        "/tmp/metrics": str(tmp_path / "metrics"),
        "/flower/": f"{tmp_path}/",
        "0.0.0.0": "127.0.0.1",
        "--port=5555": f"--port={flower_port}",
    }

    def local(value: str) -> str:
        for container, here in replacements.items():
            value = value.replace(container, here)
        return value

    def environment(name: str) -> dict[str, str]:
        image_env = {}
        if name != "redis":
            _, image_env = _dockerfile_cmd_and_env(
                "Dockerfile.api" if name == "api" else "Dockerfile.worker"
            )
        compose_env = {
            key: _interpolate(str(value))
            for key, value in services[name].get("environment", {}).items()
        }
        # The images put their virtual environment first on PATH; here it is this one.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        env = {**os.environ, **image_env, **compose_env, "PATH": path}
        env = {key: local(value) for key, value in env.items()}
        # Ollama is replaced by the embedded model; ports by free ones on loopback.
        env.update(
            LLM_PROVIDER="embedded", API_PORT=str(api_port), WORKER_METRICS_PORT="0",
            CELERY_QUEUE="compose-test",
        )  # fmt: skip
        if name == "flower":
            env["FLOWER_PORT"] = str(flower_port)
        return env

    def command(name: str) -> list[str]:
        cmd = services[name].get("command")
        if cmd is None:  # the image's own CMD
            cmd, _ = _dockerfile_cmd_and_env(
                "Dockerfile.api" if name == "api" else "Dockerfile.worker"
            )
        return [local(part.replace("$$", "$")) for part in cmd]

    processes: list[subprocess.Popen[bytes]] = []
    redis = spawn(command("redis"), env=environment("redis"), stdout=subprocess.DEVNULL)
    try:
        wait_for_redis(f"redis://:{SECRETS['REDIS_PASSWORD']}@127.0.0.1:{redis_port}/0", timeout=10)
        migrate = subprocess.run(
            command("migrate"), env=environment("migrate"), cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr
        for name in ("api", "worker", "beat", "flower"):
            processes.append(
                spawn(
                    command(name),
                    env=environment(name),
                    cwd=PROJECT_ROOT,
                    stdout=(tmp_path / f"{name}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        base = f"http://127.0.0.1:{api_port}/api/v1"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            logs = [(tmp_path / f"{n}.log").read_text()[-1500:] for n in ("api", "worker")]
            pytest.fail("the compose services never became ready:\n" + "\n".join(logs))
        answer = httpx.post(f"{base}/ask", json={"question": "Can I cancel my order?"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["provider"] == "embedded"
        top = answer.json()["sources"][0]["id"]
        assert top == "orders-and-shipping#can-i-change-or-cancel-my-order"
        flower = f"http://127.0.0.1:{flower_port}/workers"
        assert httpx.get(flower, timeout=10).status_code == 401
        assert httpx.get(flower, auth=("ops", "flower-secret"), timeout=10).status_code == 200
    finally:
        for process in [*processes, redis]:
            stop(process)


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` and `${VAR:?error}` with the test's secrets set."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: SECRETS[m.group(1)], value)
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: SECRETS.get(m.group(1), m.group(2)), value)
