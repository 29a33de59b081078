"""The OpenAI-compatible provider: a real llama-cpp-python server on loopback (`python -m
shared.llm.llama_server`, as a deployment without Ollama would run one), and the error paths
through httpx.MockTransport."""

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from shared.cli.launcher import free_port
from shared.core.config import PROJECT_ROOT
from shared.core.errors import LLMError, LLMModelNotFound, LLMUnavailable
from shared.knowledge import KnowledgeBase
from shared.llm.base import Passage
from shared.llm.embedded import default_model_path, embedded_available
from shared.llm.openai import OpenAIProvider
from tests.support.processes import spawn, stop

KNOWLEDGE = PROJECT_ROOT / "knowledge"


def _passages() -> list[Passage]:
    hits = KnowledgeBase.load(KNOWLEDGE).search("How do I track my order?", k=2)
    return [Passage(h.entry.id, h.entry.question, h.entry.answer) for h in hits]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not embedded_available():
        pytest.skip("llama-cpp-python is not installed")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    server = spawn(
        [sys.executable, "-m", "shared.llm.llama_server", "--model", str(default_model_path()),
         "--model_alias", "gemma-3-270m", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "2", "--chat_format", "gemma"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, "llama_cpp.server exited"
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield base
    finally:
        stop(server)
        server.wait(timeout=20)
        log.close()


@pytest.mark.slow
def test_generates_through_a_real_llama_cpp_server(llama_server: str) -> None:
    with httpx.Client(timeout=60) as client:
        provider = OpenAIProvider(
            client=client, base_url=llama_server, model="gemma-3-270m", max_tokens=48
        )
        assert provider.status().ok
        tokens: list[str] = []
        generation = provider.generate(
            question="How do I track my order?", passages=_passages(), on_token=tokens.append
        )
    assert generation.text and len(tokens) > 1  # streamed in pieces
    assert generation.text == "".join(tokens).strip()
    assert generation.first_token_ms is not None


@pytest.mark.slow
def test_status_reports_a_model_the_server_does_not_serve(llama_server: str) -> None:
    with httpx.Client(timeout=10) as client:
        status = OpenAIProvider(client=client, base_url=llama_server, model="gpt-9").status()
    assert not status.ok and "gpt-9" in status.detail


def _provider(handler) -> OpenAIProvider:  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIProvider(client=client, base_url="http://vllm.test/v1", model="m", api_key="k")


def test_sends_the_api_key_and_parses_server_sent_events() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = (
            'data: {"model": "m", "choices": [{"delta": {"role": "assistant"}}]}\n\n'
            'data: {"model": "m", "choices": [{"delta": {"content": "Track it "}}]}\n\n'
            'data: {"model": "m", "choices": [{"delta": {"content": "online."}}]}\n\n'
            "data: [DONE]\n\n"
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    generation = _provider(handler).generate(question="Track?", passages=_passages())
    assert generation.text == "Track it online."
    assert seen[0].headers["authorization"] == "Bearer k"
    assert str(seen[0].url) == "http://vllm.test/v1/chat/completions"


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, LLMModelNotFound), (429, LLMUnavailable), (503, LLMUnavailable), (401, LLMError)],
)
def test_http_errors_map_to_app_errors(status: int, error: type[LLMError]) -> None:
    provider = _provider(lambda request: httpx.Response(status, text="nope"))
    with pytest.raises(error):
        provider.generate(question="Track?", passages=_passages())


def test_connection_refused_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LLMUnavailable):
        _provider(refuse).generate(question="Track?", passages=_passages())
