"""The one interface every model backend implements."""

from dataclasses import dataclass
from typing import Protocol

from shared.knowledge import SearchHit


@dataclass(frozen=True)
class Generation:
    text: str
    model: str


@dataclass(frozen=True)
class BackendStatus:
    ok: bool
    detail: str


class LLMProvider(Protocol):
    name: str
    model: str

    def generate(self, *, question: str, context: list[SearchHit]) -> Generation:
        """Answer `question` from the retrieved `context`; raise an `LLMError` on failure."""
        ...

    def status(self) -> BackendStatus:
        """Whether the backend is reachable and has its model, without generating."""
        ...
