"""Ollama's /api/chat, scripted: its documented streaming NDJSON over httpx.MockTransport."""

import json
from collections.abc import Callable

import httpx

from shared.llm.ollama import OllamaProvider


class ScriptedOllama:
    """Answers /api/chat with a fixed reply, streamed word by word, and records the requests."""

    def __init__(self, reply: str | Callable[[dict[str, object]], str]) -> None:
        self.reply = reply
        self.requests: list[dict[str, object]] = []

    def provider(self) -> OllamaProvider:
        client = httpx.Client(transport=httpx.MockTransport(self._handle))
        return OllamaProvider(client=client, host="http://ollama.test", model="mistral")

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        reply = self.reply(body) if callable(self.reply) else self.reply
        words = reply.split(" ")
        lines = [
            {
                "model": "mistral",
                "message": {"role": "assistant", "content": w + " "},
                "done": False,
            }
            for w in words
        ] + [
            {"model": "mistral", "message": {"content": ""}, "done": True, "eval_count": len(words)}
        ]
        return httpx.Response(200, content="\n".join(json.dumps(line) for line in lines))
