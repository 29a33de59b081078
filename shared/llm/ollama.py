"""Ollama's native HTTP API (`/api/chat` streaming NDJSON, `/api/tags`), errors mapped to ours."""

from collections.abc import Sequence

import httpx

from shared.core.errors import LLMError, LLMModelNotFound, LLMTimeout, LLMUnavailable
from shared.llm.base import (
    BackendStatus,
    Generation,
    Passage,
    StopGeneration,
    StreamCollector,
    TokenSink,
    Turn,
    parse_json,
)
from shared.llm.prompt import build_messages, build_rewrite_messages


class OllamaProvider:
    name = "ollama"
    generative = True
    rewrites = True

    def __init__(
        self,
        *,
        client: httpx.Client,
        host: str,
        model: str,
        temperature: float = 0.2,
        num_ctx: int = 4096,
        max_tokens: int = 256,
        keep_alive: str = "10m",
    ) -> None:
        self.client = client
        self.host = host.rstrip("/")
        self.model = model
        self.options = {"temperature": temperature, "num_ctx": num_ctx, "num_predict": max_tokens}
        self.keep_alive = keep_alive

    def generate(
        self,
        *,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenSink | None = None,
    ) -> Generation:
        messages = build_messages(question=question, passages=passages, history=history)
        return self._chat(messages, on_token=on_token)

    def rewrite(self, *, history: Sequence[Turn], message: str) -> str:
        return self._chat(build_rewrite_messages(history=history, message=message)).text

    def _chat(
        self, messages: list[dict[str, str]], *, on_token: TokenSink | None = None
    ) -> Generation:
        payload = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "keep_alive": self.keep_alive,
            "options": self.options,
        }
        collector = StreamCollector(on_token)
        eval_count: int | None = None
        try:
            with self.client.stream("POST", f"{self.host}/api/chat", json=payload) as response:
                self._raise_for_status(response)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    chunk = parse_json(line)
                    if "error" in chunk:
                        raise LLMError(f"Ollama failed while generating: {chunk['error']}")
                    collector.add(chunk.get("message", {}).get("content"))
                    if chunk.get("done"):
                        eval_count = chunk.get("eval_count")
                        break
        except StopGeneration:
            pass
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"Ollama at {self.host} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"cannot reach Ollama at {self.host}: {exc}") from exc
        return collector.result(model=self.model, tokens=eval_count)

    def status(self) -> BackendStatus:
        try:
            self.ensure_model()
        except LLMError as exc:
            return BackendStatus(ok=False, detail=exc.message)
        return BackendStatus(ok=True, detail=f"{self.host} serves {self.model}")

    def ensure_model(self, *, timeout: float | None = None) -> None:
        """Raise unless Ollama answers and has the configured model pulled."""
        try:
            response = self.client.get(
                f"{self.host}/api/tags",
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"Ollama at {self.host} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"cannot reach Ollama at {self.host}: {exc}") from exc
        self._raise_for_status(response)
        names = {model.get("name", "") for model in parse_json(response.text).get("models", [])}
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            raise self._model_not_found()

    def _model_not_found(self) -> LLMModelNotFound:
        return LLMModelNotFound(f"model '{self.model}' not found: run `ollama pull {self.model}`")

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        message = _error_text(response)
        if response.status_code == 404 and "not found" in message:
            raise self._model_not_found()
        if response.status_code >= 500:
            raise LLMUnavailable(
                f"Ollama at {self.host} failed ({response.status_code}): {message}"
            )
        raise LLMError(f"Ollama rejected the request ({response.status_code}): {message}")


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:300]
    except ValueError:
        return response.text[:300]
