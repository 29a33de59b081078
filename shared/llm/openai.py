"""Any OpenAI-compatible chat endpoint: vLLM, llama.cpp's server, LM Studio, Ollama's `/v1`."""

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


class OpenAIProvider:
    name = "openai"
    generative = True
    rewrites = True

    def __init__(
        self,
        *,
        client: httpx.Client,
        base_url: str,
        model: str,
        api_key: str = "",
        temperature: float = 0.2,
        max_tokens: int = 256,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.temperature = temperature
        self.max_tokens = max_tokens

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
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        collector = StreamCollector(on_token)
        model = self.model
        try:
            with self.client.stream(
                "POST", f"{self.base_url}/chat/completions", json=payload, headers=self.headers
            ) as response:
                self._raise_for_status(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        break
                    chunk = parse_json(data)
                    model = chunk.get("model") or model
                    for choice in chunk.get("choices", []):
                        collector.add((choice.get("delta") or {}).get("content"))
        except StopGeneration:
            pass
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"{self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"cannot reach {self.base_url}: {exc}") from exc
        return collector.result(model=model)

    def status(self) -> BackendStatus:
        try:
            response = self.client.get(f"{self.base_url}/models", headers=self.headers, timeout=5)
        except httpx.HTTPError as exc:
            return BackendStatus(ok=False, detail=f"cannot reach {self.base_url}: {exc}")
        if response.status_code >= 400:
            return BackendStatus(ok=False, detail=f"{self.base_url}/models: {response.status_code}")
        served = {model.get("id") for model in parse_json(response.text).get("data", [])}
        if served and self.model not in served:
            return BackendStatus(
                ok=False,
                detail=f"model '{self.model}' not served (has {', '.join(sorted(served))})",
            )
        return BackendStatus(ok=True, detail=f"{self.base_url} serves {self.model}")

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        message = response.text[:300]
        if response.status_code == 404:
            raise LLMModelNotFound(f"model '{self.model}' not found at {self.base_url}: {message}")
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise LLMUnavailable(f"{self.base_url} failed ({response.status_code}): {message}")
        raise LLMError(f"{self.base_url} rejected the request ({response.status_code}): {message}")
