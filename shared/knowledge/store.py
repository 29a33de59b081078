"""The knowledge base a process answers from, reloaded when its files change or when another
process forces a reload (a counter in Redis)."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from shared.core.config import EmbeddingProviderName, Settings
from shared.knowledge.calibration import Calibration, calibration_path, load_calibration
from shared.knowledge.embeddings import (
    Embedder,
    EmbeddingCache,
    OllamaEmbedder,
    Progress,
    Vector,
    minilm_embedder,
    mpnet_embedder,
)
from shared.knowledge.loader import (
    Entry,
    content_version,
    knowledge_files,
    load_entries,
    phrasing_rows,
)
from shared.knowledge.search import (
    DenseVectors,
    HybridIndex,
    RetrievalMethod,
    SearchHit,
    plain_words,
)

logger = logging.getLogger(__name__)


def create_embedder(
    settings: Settings, *, client: httpx.Client | None = None, threads: int | None = None
) -> Embedder | None:
    """The configured embedding model, or None for keyword-only retrieval."""
    if settings.embedding_provider is EmbeddingProviderName.NONE:
        return None
    if settings.embedding_provider is EmbeddingProviderName.OLLAMA:
        return OllamaEmbedder(
            client=client or httpx.Client(timeout=settings.ollama_timeout),
            host=settings.ollama_host,
            model=settings.ollama_embed_model,
        )
    if settings.embedding_provider is EmbeddingProviderName.MINILM:
        return minilm_embedder(threads=threads)
    return mpnet_embedder(cache_dir=settings.embedding_cache_dir, threads=threads)


def log_progress(label: str, *, every: float = 2.0) -> Progress:
    """A progress callback that logs at most every `every` seconds, and at the end."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= every:
            last = now
            logger.info("%s: %d/%d (%d%%)", label, done, total, 100 * done // max(total, 1))

    return report


# Up to this many missing answer vectors are embedded before a base is served; more are
# embedded in the background while the base already answers with its question vectors.
SYNC_ANSWER_VECTORS = 1000


@dataclass(frozen=True)
class KnowledgeBase:
    """One loaded, indexed version of the knowledge base."""

    entries: list[Entry]
    version: str
    index: HybridIndex = field(repr=False)
    calibration: Calibration | None = None  # the confidence curve fitted for this base

    @classmethod
    def load(cls, path: Path, **options: Any) -> "KnowledgeBase":
        files = knowledge_files(path)
        entries = load_entries(files, root=path if path.is_dir() else path.parent)
        base = cls.from_entries(entries, **options)
        return replace(base, calibration=load_calibration(calibration_path(path)))

    @classmethod
    def from_entries(
        cls,
        entries: list[Entry],
        *,
        embedder: Embedder | None = None,
        cache: EmbeddingCache | None = None,
        dense_weight: float = 0.9,
        unit_weight: float = 0.0,
        progress: Progress | None = None,
        with_answers: bool = True,
    ) -> "KnowledgeBase":
        """Index `entries`; without `with_answers` only the (fast) question vectors are made, the
        answer and unit vectors follow (`with_answer_vectors`)."""
        vectors = None
        if embedder is not None and entries:
            cache = cache or EmbeddingCache(None)
            questions = [entry.dense_texts[0] for entry in entries]
            phrasings = phrasing_rows(entries)
            embedded = cache.embed(
                embedder, questions + [text for _, text in phrasings], progress=progress
            )
            vectors = DenseVectors(
                questions=embedded[: len(entries)],
                phrasings=embedded[len(entries) :] if phrasings else None,
                phrasing_entries=np.array([i for i, _ in phrasings], dtype=np.int64),
            )
        index = HybridIndex(
            entries, vectors=vectors, embedder=embedder, dense_weight=dense_weight,
            unit_weight=unit_weight,
        )  # fmt: skip
        base = cls(entries=entries, version=content_version(entries), index=index)
        if with_answers and vectors is not None:
            base = base.with_answer_vectors(cache or EmbeddingCache(None), progress=progress)
        return base

    @cached_property
    def units(self) -> list[tuple[int, str]]:
        """Every answer unit of the base as (entry index, text), in entry order."""
        return [(i, unit) for i, entry in enumerate(self.entries) for unit in entry.units]

    @cached_property
    def _by_id(self) -> dict[str, Entry]:
        return {entry.id: entry for entry in self.entries}

    def entry(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    @cached_property
    def _unit_rows(self) -> dict[int, list[int]]:
        rows: dict[int, list[int]] = {}
        for row, (entry, _) in enumerate(self.units):
            rows.setdefault(entry, []).append(row)
        return rows

    def unit_rows(self, entry_index: int) -> list[int]:
        """The rows of `units` (and of the unit vectors) that belong to one entry."""
        return self._unit_rows.get(entry_index, [])

    @cached_property
    def _plain_text(self) -> str:
        return f" {plain_words(' '.join(entry.text for entry in self.entries))} "

    def names_place(self, place: str) -> bool:
        """Whether any entry names `place`, as whole words, accents aside ("Oman" is not named
        by "woman", "Montréal" is by "Montreal")."""
        return f" {plain_words(place)} " in self._plain_text

    def answer_texts(self) -> list[str]:
        return [entry.dense_texts[1] for entry in self.entries]

    def vector_texts(self) -> list[str]:
        """What `with_answer_vectors` embeds: questions with answers, and the answer units."""
        return self.answer_texts() + [text for _, text in self.units]

    def with_answer_vectors(
        self, cache: EmbeddingCache, *, progress: Progress | None = None
    ) -> "KnowledgeBase":
        """This base with its question-plus-answer and answer-unit vectors too."""
        index = self.index
        if index.embedder is None or index.vectors is None:
            return self
        embedded = cache.embed(index.embedder, self.vector_texts(), progress=progress)
        answers, units = embedded[: len(self.entries)], embedded[len(self.entries) :]
        vectors = replace(
            index.vectors,
            answers=answers,
            units=units if len(units) else None,
            unit_entries=np.array([i for i, _ in self.units], dtype=np.int64),
        )
        return replace(self, index=index.with_vectors(vectors))

    def embed_query(self, query: str) -> Vector | None:
        return self.index.embed_query(query)

    def search(
        self,
        query: str,
        *,
        k: int,
        method: RetrievalMethod = RetrievalMethod.HYBRID,
        query_vector: Vector | None = None,
    ) -> list[SearchHit]:
        return self.index.search(query, k=k, method=method, query_vector=query_vector)


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        files = [*knowledge_files(path), calibration_path(path)]
    except FileNotFoundError:
        return ()
    stats = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:  # removed between listing and stat
            continue
        stats.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(stats)


KNOWLEDGE_GENERATION_KEY = "support-assistant:knowledge:generation"


def knowledge_generation(client: redis.Redis) -> int:
    """The counter every process compares to see whether a reload was forced elsewhere."""
    value = client.get(KNOWLEDGE_GENERATION_KEY)
    return int(value) if value is not None else 0


def force_knowledge_reload(client: redis.Redis) -> int:
    """Ask every process to re-read the knowledge base at its next check."""
    return int(client.incr(KNOWLEDGE_GENERATION_KEY))


class KnowledgeStore:
    """Hands out the current knowledge base; re-reads the files when they change on disk, or
    when `generation()` (a counter shared by every process) moves on after a forced reload."""

    def __init__(
        self,
        path: Path,
        *,
        embedder: Embedder | None = None,
        cache_dir: Path | None = None,
        dense_weight: float = 0.9,
        unit_weight: float = 0.0,
        check_interval: float = 2.0,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.path = path
        self.embedder = embedder
        self.cache = EmbeddingCache(cache_dir)
        self.dense_weight = dense_weight
        self.unit_weight = unit_weight
        self.check_interval = check_interval
        self.generation = generation
        self._lock = threading.Lock()
        self._fingerprint = _fingerprint(path)
        self._generation = 0
        self._generation = self._read_generation()
        self._current = self._load()
        self._checked_at = time.monotonic()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        generation: Callable[[], int] | None = None,
        threads: int | None = None,
    ) -> "KnowledgeStore":
        return cls(
            settings.knowledge_path,
            embedder=create_embedder(settings, threads=threads),
            cache_dir=settings.embedding_cache_dir,
            dense_weight=settings.retrieval_dense_weight,
            unit_weight=settings.retrieval_unit_weight,
            check_interval=settings.knowledge_check_interval,
            generation=generation,
        )

    def current(self) -> KnowledgeBase:
        """The knowledge base as the files are now: a forced reload elsewhere is seen at once,
        file changes within `check_interval` seconds."""
        files_due = time.monotonic() - self._checked_at >= self.check_interval
        if files_due or self._read_generation() != self._generation:
            self.reload(force=False)
        return self._current

    def reload(self, *, force: bool = True) -> KnowledgeBase:
        """Re-read the files if they changed, if another process forced a reload, or if forced."""
        with self._lock:
            self._checked_at = time.monotonic()
            fingerprint, generation = _fingerprint(self.path), self._read_generation()
            if force or fingerprint != self._fingerprint or generation != self._generation:
                try:
                    base = self._load()
                except (OSError, UnicodeDecodeError):
                    logger.exception(
                        "knowledge reload failed; keeping version %s", self._current.version
                    )
                    return self._current
                self._fingerprint, self._generation, self._current = fingerprint, generation, base
            return self._current

    def _load(self) -> KnowledgeBase:
        started = time.perf_counter()
        base = KnowledgeBase.load(
            self.path,
            embedder=self.embedder,
            cache=self.cache,
            dense_weight=self.dense_weight,
            unit_weight=self.unit_weight,
            progress=log_progress("embedding questions"),
            with_answers=False,
        )
        if self.embedder is not None and base.entries:
            missing = self.cache.missing(self.embedder, base.vector_texts())
            if missing <= SYNC_ANSWER_VECTORS:
                base = base.with_answer_vectors(
                    self.cache, progress=log_progress("embedding answers")
                )
            else:
                threading.Thread(
                    target=self._add_answer_vectors, args=(base,), daemon=True,
                    name="knowledge-answer-vectors",
                ).start()  # fmt: skip
        logger.info(
            "knowledge base %s: %d entries from %s in %.1f s (%s retrieval)",
            base.version, len(base.entries), self.path, time.perf_counter() - started,
            "hybrid" if base.index.has_dense else "keyword",
        )  # fmt: skip
        return base

    def _add_answer_vectors(self, base: KnowledgeBase) -> None:
        try:
            upgraded = base.with_answer_vectors(
                self.cache, progress=log_progress("embedding answers (in the background)")
            )
        except Exception:
            logger.exception("embedding answers failed; answering with question vectors only")
            return
        with self._lock:
            if self._current is base:
                self._current = upgraded
                logger.info("knowledge base %s: answer vectors ready", base.version)

    def _read_generation(self) -> int:
        if self.generation is None:
            return 0
        try:
            return self.generation()
        except Exception:  # a missing Redis must not stop answering from the files
            logger.warning("cannot read the knowledge reload counter", exc_info=True)
            return self._generation
