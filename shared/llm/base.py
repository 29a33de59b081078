"""The one interface every model backend implements."""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.core.errors import LLMError

TokenSink = Callable[[str], None]


class StopGeneration(Exception):
    """Raised by a token sink to end a generation early; providers return what they have."""


@dataclass(frozen=True)
class Passage:
    """What a model may answer from: the selected statements of one knowledge-base entry."""

    id: str  # the entry's id, which the model cites
    title: str  # the entry's question
    text: str


@dataclass(frozen=True)
class Turn:
    """An earlier message of the conversation, as a model sees it."""

    role: str  # "customer", "assistant" or "agent"
    text: str


@dataclass(frozen=True)
class Generation:
    text: str
    model: str
    tokens: int | None = None  # completion tokens, when the backend reports them
    first_token_ms: float | None = None
    generation_ms: float | None = None


@dataclass(frozen=True)
class BackendStatus:
    ok: bool
    detail: str


class ModelBackend(Protocol):
    """What every backend can say about itself."""

    name: str
    model: str

    def status(self) -> BackendStatus:
        """Whether the backend is reachable and has its model, without generating."""
        ...


class LLMProvider(ModelBackend, Protocol):
    generative: bool  # False for providers that quote entries instead of generating text
    rewrites: bool  # whether `rewrite` can make a follow-up standalone

    def generate(
        self,
        *,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenSink | None = None,
    ) -> Generation:
        """Answer from `passages` (the conversation so far in `history`), passing text to
        `on_token` as it is generated; raise an `LLMError` on failure."""
        ...

    def rewrite(self, *, history: Sequence[Turn], message: str) -> str:
        """`message` as a question that stands on its own, given `history`."""
        ...


class StreamCollector:
    """Gathers streamed text, timing the first token; forwards each piece to the sink."""

    def __init__(self, on_token: TokenSink | None) -> None:
        self.on_token = on_token
        self.parts: list[str] = []
        self.chunks = 0
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None

    def add(self, text: str | None) -> None:
        if not text:
            return
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
        self.parts.append(text)
        self.chunks += 1
        if self.on_token is not None:
            self.on_token(text)  # may raise StopGeneration

    def result(self, *, model: str, tokens: int | None = None) -> Generation:
        return Generation(
            text="".join(self.parts).strip(),
            model=model,
            tokens=tokens if tokens is not None else self.chunks,
            first_token_ms=self.first_token_ms,
            generation_ms=(time.perf_counter() - self.started) * 1000,
        )


def parse_json(text: str) -> dict[str, Any]:
    """A backend's JSON object; anything else is the backend's error, not ours."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise LLMError(f"the model backend answered with invalid JSON: {text[:200]}") from exc
    if not isinstance(body, dict):
        raise LLMError(f"the model backend answered with unexpected JSON: {text[:200]}")
    return body
