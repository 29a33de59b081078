"""The Ollama provider against Ollama's documented HTTP API, served by httpx.MockTransport."""

import json
from collections.abc import Callable

import httpx
import pytest

from shared.core.config import PROJECT_ROOT, Settings
from shared.core.errors import (
    LLMError,
    LLMModelNotFound,
    LLMTimeout,
    LLMUnavailable,
    ModelCannotRun,
)
from shared.knowledge import KnowledgeBase
from shared.llm import Passage, StopGeneration, choose_provider, create_provider
from shared.llm.ollama import OllamaProvider
from shared.llm.probe import ProbeResult

HOST = "http://ollama.test:11434"
KNOWLEDGE = PROJECT_ROOT / "knowledge"
TAGS = {"models": [{"name": "mistral:latest", "model": "mistral:latest", "size": 4109865159}]}


def _passages() -> list[Passage]:
    hits = KnowledgeBase.load(KNOWLEDGE).search("What is your refund policy?", k=2)
    return [Passage(h.entry.id, h.entry.question, h.entry.answer) for h in hits]


def _provider(handler: Callable[[httpx.Request], httpx.Response]) -> OllamaProvider:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OllamaProvider(client=client, host=HOST, model="mistral")


def _ndjson(*chunks: dict[str, object]) -> bytes:
    return b"".join(json.dumps(chunk).encode() + b"\n" for chunk in chunks)


def _chunk(content: str, **extra: object) -> dict[str, object]:
    message = {"role": "assistant", "content": content}
    return {"model": "mistral", "message": message, "done": False, **extra}


STREAM = _ndjson(
    _chunk("Returns are "),
    _chunk("accepted within "),
    _chunk("30 days."),
    _chunk("", done=True, done_reason="stop", total_duration=912000000, eval_count=9),
)


def test_generate_streams_the_chat_and_returns_the_whole_message() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=STREAM, headers={"content-type": "application/x-ndjson"})

    tokens: list[str] = []
    generation = _provider(handler).generate(
        question="Refund?", passages=_passages(), on_token=tokens.append
    )
    assert tokens == ["Returns are ", "accepted within ", "30 days."]
    assert generation.text == "Returns are accepted within 30 days."
    assert generation.model == "mistral" and generation.tokens == 9
    assert generation.first_token_ms is not None
    body = seen["body"]
    assert seen["url"] == f"{HOST}/api/chat"
    assert isinstance(body, dict) and body["stream"] is True and body["model"] == "mistral"
    assert body["keep_alive"] == "10m"
    assert body["options"] == {"temperature": 0.2, "num_ctx": 4096, "num_predict": 256}
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "returns-and-refunds#what-is-your-refund-policy" in system["content"]
    assert user == {"role": "user", "content": "Refund?"}


def test_a_sink_can_stop_the_stream_early() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=STREAM)

    def stop_after_first(token: str) -> None:
        raise StopGeneration("enough")

    generation = _provider(handler).generate(
        question="Refund?", passages=_passages(), on_token=stop_after_first
    )
    assert generation.text == "Returns are"


def test_error_line_in_the_stream_is_an_llm_error() -> None:
    body = _ndjson({"error": "an error was encountered while running the model"})
    with pytest.raises(LLMError, match="while running the model"):
        _provider(lambda r: httpx.Response(200, content=body)).generate(
            question="Refund?", passages=_passages()
        )


def test_missing_model_is_reported_with_the_pull_command() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "model 'mistral' not found"})

    with pytest.raises(LLMModelNotFound) as caught:
        _provider(handler).generate(question="Refund?", passages=_passages())
    assert caught.value.message == "model 'mistral' not found: run `ollama pull mistral`"
    assert caught.value.status_code == 503 and not caught.value.transient


def test_connection_refused_is_a_transient_unavailability() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(LLMUnavailable) as caught:
        _provider(handler).generate(question="Refund?", passages=_passages())
    assert caught.value.transient and caught.value.code == "llm_unavailable"
    assert HOST in caught.value.message


def test_timeout_is_a_transient_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(LLMTimeout) as caught:
        _provider(handler).generate(question="Refund?", passages=_passages())
    assert caught.value.transient and caught.value.code == "llm_timeout"


def test_server_error_is_transient_and_bad_request_is_not() -> None:
    overloaded = _provider(lambda r: httpx.Response(503, json={"error": "server busy"}))
    with pytest.raises(LLMUnavailable, match="server busy"):
        overloaded.generate(question="Refund?", passages=_passages())
    rejected = _provider(lambda r: httpx.Response(400, json={"error": "invalid options"}))
    with pytest.raises(LLMError, match="invalid options") as caught:
        rejected.generate(question="Refund?", passages=_passages())
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


def _refusing_client() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    return httpx.Client(transport=httpx.MockTransport(refuse))


def test_auto_without_ollama_takes_the_embedded_model_when_its_probe_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.llm.embedded_available", lambda: True)
    monkeypatch.setattr(
        "shared.llm._probe_embedded", lambda *a, **k: ProbeResult(True, "generated 8 tokens", 0.5)
    )
    choice = choose_provider(_settings("auto"), client=_refusing_client(), pool_size=2)
    assert choice.name == "embedded" and choice.ok


def test_auto_falls_back_to_extractive_when_the_embedded_probe_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.llm.embedded_available", lambda: True)
    crashed = ProbeResult(False, "the model crashed the probe process (SIGSEGV)", 0.3)
    monkeypatch.setattr("shared.llm._probe_embedded", lambda *a, **k: crashed)
    choice = choose_provider(_settings("auto"), client=_refusing_client(), pool_size=2)
    assert choice.name == "extractive" and choice.ok
    assert "SIGSEGV" in choice.detail


def test_explicit_embedded_that_cannot_run_fails_its_questions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.llm.embedded_available", lambda: True)
    hung = ProbeResult(False, "the model did not load and answer within 60 s (hung; killed)", 60)
    monkeypatch.setattr("shared.llm._probe_embedded", lambda *a, **k: hung)
    provider = create_provider(_settings("embedded"), client=_refusing_client())
    assert provider.name == "embedded" and not provider.status().ok
    with pytest.raises(ModelCannotRun) as caught:
        provider.generate(question="Can I cancel?", passages=[])
    assert caught.value.code == "llm_unavailable" and not caught.value.transient
    assert "hung" in caught.value.message


def test_auto_without_ollama_or_llama_cpp_is_extractive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.llm.embedded_available", lambda: False)
    assert create_provider(_settings("auto"), client=_refusing_client()).name == "extractive"


def test_explicit_provider_is_used_as_configured() -> None:
    assert create_provider(_settings("ollama"), client=_refusing_client()).name == "ollama"
    assert create_provider(_settings("openai"), client=_refusing_client()).name == "openai"
