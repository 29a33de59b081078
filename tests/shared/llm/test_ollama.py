"""The Ollama provider against Ollama's documented HTTP API, served by httpx.MockTransport."""

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.errors import LLMError, LLMModelNotFound, LLMTimeout, LLMUnavailable
from shared.knowledge import KnowledgeBase, SearchHit
from shared.llm import create_provider
from shared.llm.ollama import OllamaProvider

HOST = "http://ollama.test:11434"
KNOWLEDGE = Path(__file__).parents[3] / "knowledge"
TAGS = {"models": [{"name": "mistral:latest", "model": "mistral:latest", "size": 4109865159}]}


def _context() -> list[SearchHit]:
    return KnowledgeBase.load(KNOWLEDGE).search("What is your refund policy?", k=2)


def _provider(handler: Callable[[httpx.Request], httpx.Response]) -> OllamaProvider:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OllamaProvider(client=client, host=HOST, model="mistral")


def test_generate_sends_grounded_chat_and_returns_the_message() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={
            "model": "mistral", "created_at": "2026-11-25T10:00:00Z",
            "message": {"role": "assistant", "content": " Returns are accepted within 30 days. "},
            "done": True, "done_reason": "stop", "eval_count": 12,
        })  # fmt: skip

    generation = _provider(handler).generate(question="Refund?", context=_context())
    assert generation.text == "Returns are accepted within 30 days."
    assert generation.model == "mistral"
    body = seen["body"]
    assert seen["url"] == f"{HOST}/api/chat"
    assert isinstance(body, dict) and body["stream"] is False and body["model"] == "mistral"
    system, user = body["messages"]
    assert (
        system["role"] == "system"
        and "returns-and-refunds#what-is-your-refund-policy" in system["content"]
    )
    assert user == {"role": "user", "content": "Refund?"}


def test_missing_model_is_reported_with_the_pull_command() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "model 'mistral' not found"})

    with pytest.raises(LLMModelNotFound) as caught:
        _provider(handler).generate(question="Refund?", context=_context())
    assert caught.value.message == "model 'mistral' not found: run `ollama pull mistral`"
    assert caught.value.status_code == 503 and not caught.value.transient


def test_connection_refused_is_a_transient_unavailability() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(LLMUnavailable) as caught:
        _provider(handler).generate(question="Refund?", context=_context())
    assert caught.value.transient and caught.value.code == "llm_unavailable"
    assert HOST in caught.value.message


def test_timeout_is_a_transient_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(LLMTimeout) as caught:
        _provider(handler).generate(question="Refund?", context=_context())
    assert caught.value.transient and caught.value.code == "llm_timeout"


def test_server_error_is_transient_and_bad_request_is_not() -> None:
    overloaded = _provider(lambda r: httpx.Response(503, json={"error": "server busy"}))
    with pytest.raises(LLMUnavailable, match="server busy"):
        overloaded.generate(question="Refund?", context=_context())
    rejected = _provider(lambda r: httpx.Response(400, json={"error": "invalid options"}))
    with pytest.raises(LLMError, match="invalid options") as caught:
        rejected.generate(question="Refund?", context=_context())
    assert not caught.value.transient


def test_status_checks_the_model_is_pulled() -> None:
    assert _provider(lambda r: httpx.Response(200, json=TAGS)).status().ok
    status = _provider(lambda r: httpx.Response(200, json={"models": []})).status()
    assert not status.ok and "ollama pull mistral" in status.detail


def _settings(provider: str) -> Settings:
    return Settings(_env_file=None, llm_provider=provider, ollama_host=HOST)  # type: ignore[call-arg]


def test_auto_uses_ollama_when_it_serves_the_model() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=TAGS)))
    assert create_provider(_settings("auto"), client=client).name == "ollama"


def test_auto_falls_back_to_extractive_when_ollama_is_down() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    assert create_provider(_settings("auto"), client=client).name == "extractive"
    assert create_provider(_settings("ollama"), client=client).name == "ollama"
