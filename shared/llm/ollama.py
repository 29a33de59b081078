"""Ollama's HTTP API (`/api/chat`, `/api/tags`), with its failures mapped to the app's errors."""

from typing import Any

import httpx

from shared.errors import LLMError, LLMModelNotFound, LLMTimeout, LLMUnavailable
from shared.knowledge import SearchHit
from shared.llm.base import BackendStatus, Generation
from shared.llm.prompt import build_messages


class OllamaProvider:
    name = "ollama"

    def __init__(
        self, *, client: httpx.Client, host: str, model: str, temperature: float = 0.2
    ) -> None:
        self.client = client
        self.host = host.rstrip("/")
        self.model = model
        self.temperature = temperature

    def generate(self, *, question: str, context: list[SearchHit]) -> Generation:
        payload = {
            "model": self.model,
            "messages": build_messages(question=question, context=context),
            "stream": False,
            "options": {"temperature": self.temperature},
        }
        body = self._request("POST", "/api/chat", json=payload)
        try:
            text = body["message"]["content"]
        except (KeyError, TypeError) as exc:
            raise LLMError(f"Ollama answered without a message: {str(body)[:200]}") from exc
        return Generation(text=text.strip(), model=body.get("model", self.model))

    def status(self) -> BackendStatus:
        try:
            self.ensure_model()
        except LLMError as exc:
            return BackendStatus(ok=False, detail=exc.message)
        return BackendStatus(ok=True, detail=f"{self.host} serves {self.model}")

    def ensure_model(self, *, timeout: float | None = None) -> None:
        """Raise unless Ollama answers and has the configured model pulled."""
        extra = {} if timeout is None else {"timeout": timeout}
        body = self._request("GET", "/api/tags", **extra)
        names = {model.get("name", "") for model in body.get("models", [])}
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            raise self._model_not_found()

    def _model_not_found(self) -> LLMModelNotFound:
        return LLMModelNotFound(f"model '{self.model}' not found: run `ollama pull {self.model}`")

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.request(method, f"{self.host}{path}", **kwargs)
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"Ollama at {self.host} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"cannot reach Ollama at {self.host}: {exc}") from exc
        if response.status_code == 404 and "not found" in response.text:
            raise self._model_not_found()
        if response.status_code >= 500:
            raise LLMUnavailable(
                f"Ollama at {self.host} failed with {response.status_code}: {_error_text(response)}"
            )
        if response.status_code >= 400:
            raise LLMError(
                f"Ollama rejected the request ({response.status_code}): {_error_text(response)}"
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise LLMError(f"Ollama answered with invalid JSON: {response.text[:200]}") from exc
        return body


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:300]
    except ValueError:
        return response.text[:300]
