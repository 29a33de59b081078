"""What an answer depends on, so that an equivalent later question can reuse it (the answer
cache, `shared.answer_cache`): the standalone question, the entry it was answered from and the
statements selected from it, and the content of every entry it cites."""

import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from shared.knowledge import Entry

CACHE_PROVIDER = "cache"  # the `provider` of an answer given again from the cache
_NON_WORD = re.compile(r"[^\w]+")
# The code and data that turn a question into an answer: retrieval, selection, checks, prompts,
# the settings' defaults.
_ANSWERING_CODE = ("answering", "knowledge", "llm")
_ANSWERING_FILES = ("core/config.py",)
_SOURCES = (".py", ".jsonl", ".json")


def _engine_revision() -> str:
    """A digest of what answers (`_ANSWERING_CODE` with their data, `_ANSWERING_FILES`): an answer
    cached by another revision is never given again (a release that fixes an answer must not
    keep giving the old one). Line endings aside, so that a checkout on Windows agrees."""
    shared = Path(__file__).resolve().parents[1]
    files = sorted(
        [
            *(f for folder in _ANSWERING_CODE for f in (shared / folder).rglob("*") if f.is_file()),
            *(shared / name for name in _ANSWERING_FILES),
        ]
    )
    files = [f for f in files if f.suffix in _SOURCES and "__pycache__" not in f.parts]
    if not files:  # installed without its sources: the release's version has to do
        try:
            return f"v{metadata.version('support-assistant')}"[:16]
        except metadata.PackageNotFoundError:
            return "unknown"
    code = hashlib.sha256()
    for file in files:
        content = file.read_bytes().replace(b"\r\n", b"\n")
        code.update(f"{file.relative_to(shared)}\0{len(content)}\0".encode())
        code.update(content)
    return code.hexdigest()[:16]


ENGINE_REVISION = _engine_revision()


def normalise(question: str) -> str:
    """The question as the cache compares it exactly: lower case, words only."""
    return " ".join(_NON_WORD.sub(" ", question.lower()).split())


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_digest(entry: Entry) -> str:
    """Changes whenever the entry's question or answer does."""
    return digest(f"{entry.question}\n{entry.answer}")


@dataclass(frozen=True)
class CacheKey:
    question: str  # the standalone question, normalised
    vector: bytes | None  # its vector (float32, unit length); None for keyword retrieval
    vector_model: str | None
    entry_id: str  # the entry answered from
    statements: str  # digest of the statements selected from it
    # The question's terms that the statements contain, sorted: a model's wording may answer
    # exactly these ("next-day" of "express and next-day"), so it is reused only when they match.
    anchors: str
    entries: dict[str, str]  # every cited entry's id -> its digest now
    context_method: str  # how it was retrieved (hybrid, keyword, all)


@dataclass(frozen=True)
class CachedAnswer:
    """An earlier answer that a new question may receive as it is."""

    id: int
    text: str
    origin: str
    model: str
    sources: list[dict[str, Any]]
    knowledge_version: str
    confidence: float


class AnswerLookup(Protocol):
    """Where the engine finds earlier answers (`shared.answer_cache` over one knowledge base)."""

    def repeated(self, question: str, context_method: str) -> CachedAnswer | None:
        """An answer to the same words (normalised), retrieved the same way from this very
        knowledge base: the engine would retrieve and select exactly as it did then, so nothing
        is computed."""

    def equivalent(self, key: CacheKey) -> CachedAnswer | None:
        """An answer to a question as close as `key`'s, from the same entry's same statements."""
