"""The answer cache: a question whose standalone form matches an earlier first-turn answer's (the
same words, or a vector within the calibrated similarity), answered from the same entry with the
same statements, receives that answer without the model.

Rows are written by the worker in the transaction that stores the answer (`store`) and removed
when an entry they cite is edited (`forget_entries`), when a customer rates the answer down
(`forget_answer`), by an operator (`purge`), or when they fall out of the size bound. Each worker
process keeps the rows' vectors in memory (`AnswerCache`) and reads only new rows per lookup; a
candidate is read back from the database before it is used, so a removed row is never served.
The same words are looked up in the database itself (`find_repeated`): by the API when a first
message arrives (`SameWords`, answered at once, no task queued; each API process knows which
words the cache holds, `CachedQuestions`, and looks up only those) and by the engine in a worker.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from shared.answer_cache.models import CachedAnswerEntry, CachedAnswerRow
from shared.answering.engine import Answer, AnswerOrigin
from shared.answering.reuse import (
    ENGINE_REVISION,
    CachedAnswer,
    CacheKey,
    entry_digest,
    normalise,
)
from shared.core.db import read_scope
from shared.knowledge import KnowledgeBase
from shared.questions.models import Question

# Rows committed out of id order (PostgreSQL sequences) are still seen: each refresh re-reads the
# last few ids, and the whole table is re-read now and then (which also drops removed rows).
REREAD_IDS = 64
FULL_RELOAD_SECONDS = 60.0


@dataclass(frozen=True)
class _Indexed:
    question: str
    vector_model: str | None
    entry_id: str
    statements: str
    anchors: str | None  # only for a model's wording, which must answer the same terms


class AnswerCache:
    """One process's view of the cache. Thread-safe; the lookup opens its own session."""

    def __init__(self, sessions: sessionmaker[Session], *, similarity: float) -> None:
        self.sessions = sessions
        self.similarity = similarity
        self._rows: dict[int, _Indexed] = {}
        self._vectors: dict[int, npt.NDArray[np.float32]] = {}
        self._by_question: dict[str, set[int]] = {}
        self._matrix: npt.NDArray[np.float32] | None = None
        self._matrix_ids: list[int] = []
        self._seen = 0
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def over(self, knowledge: KnowledgeBase) -> "CacheLookup":
        """Lookups against one loaded knowledge base, as the engine makes them."""
        return CacheLookup(self, knowledge)

    def repeated(
        self, question: str, context_method: str, knowledge: KnowledgeBase
    ) -> CachedAnswer | None:
        """A cached answer to the same normalised words, retrieved the same way from this
        knowledge version."""
        with read_scope(self.sessions) as session:
            return find_repeated(
                session=session,
                question=question,
                context_method=context_method,
                knowledge=knowledge,
            )

    def equivalent(self, key: CacheKey, knowledge: KnowledgeBase) -> CachedAnswer | None:
        """The cached answer for `key`, if one is equivalent and every entry it cites is
        unchanged in `knowledge` (rows citing a changed entry are skipped; an edit through the
        API removes them)."""
        with self._lock, read_scope(self.sessions) as session:
            self._refresh(session)
            for cache_id in self._candidates(key):
                row = session.get(CachedAnswerRow, cache_id)
                if row is None or not self._same(cache_id, row):  # removed since it was read
                    self._forget(cache_id)
                elif _current(row, knowledge):
                    return _cached(row)
                # else an entry it cites changed on disk (edits through the API remove the row),
                # or this process has not loaded the change yet: never served, not removed.
        return None

    def _same(self, cache_id: int, row: CachedAnswerRow) -> bool:
        """Whether the row read back is the one indexed (ids are never reused, but be sure)."""
        indexed = self._rows.get(cache_id)
        return (
            indexed is not None
            and indexed.question == row.question
            and indexed.entry_id == row.entry_id
            and indexed.statements == row.statements
            and row.engine_revision == ENGINE_REVISION
        )

    def _candidates(self, key: CacheKey) -> list[int]:
        """Ids of rows answered from the same entry with the same statements whose question is
        the same or close enough, the closest first."""
        scored: dict[int, float] = dict.fromkeys(self._by_question.get(key.question, ()), 2.0)
        if key.vector is not None and self._rows:
            matrix = self._vector_matrix()
            if matrix is not None:
                query = np.frombuffer(key.vector, dtype=np.float32)
                if query.shape[0] == matrix.shape[1]:
                    similarities = matrix @ query
                    for row in np.flatnonzero(similarities >= self.similarity):
                        cache_id = self._matrix_ids[row]
                        scored.setdefault(cache_id, float(similarities[row]))
        matching = [
            cache_id
            for cache_id in scored
            if (indexed := self._rows.get(cache_id)) is not None
            and indexed.entry_id == key.entry_id
            and indexed.statements == key.statements
            and indexed.anchors in (None, key.anchors)
            and (scored[cache_id] > 1.5 or indexed.vector_model == key.vector_model)
        ]
        return sorted(matching, key=lambda cache_id: -scored[cache_id])

    def _refresh(self, session: Session) -> None:
        if time.monotonic() - self._loaded_at > FULL_RELOAD_SECONDS:
            self._rows.clear()
            self._vectors.clear()
            self._by_question.clear()
            self._matrix = None
            self._seen = 0
            self._loaded_at = time.monotonic()
        query = select(
            CachedAnswerRow.id,
            CachedAnswerRow.question,
            CachedAnswerRow.vector,
            CachedAnswerRow.vector_model,
            CachedAnswerRow.entry_id,
            CachedAnswerRow.statements,
            CachedAnswerRow.anchors,
            CachedAnswerRow.origin,
        ).where(
            CachedAnswerRow.id > self._seen - REREAD_IDS,
            CachedAnswerRow.engine_revision == ENGINE_REVISION,  # another release's: never given
        )
        for row in session.execute(query):
            self._seen = max(self._seen, row.id)
            if row.id in self._rows:
                continue
            generated = row.origin == AnswerOrigin.GENERATED.value
            self._rows[row.id] = _Indexed(
                question=row.question,
                vector_model=row.vector_model,
                entry_id=row.entry_id,
                statements=row.statements,
                anchors=row.anchors if generated else None,
            )
            self._by_question.setdefault(row.question, set()).add(row.id)
            if row.vector is not None:
                self._vectors[row.id] = np.frombuffer(row.vector, dtype=np.float32)
                self._matrix = None

    def _vector_matrix(self) -> npt.NDArray[np.float32] | None:
        if self._matrix is None:
            sizes = {vector.shape[0] for vector in self._vectors.values()}
            if len(sizes) != 1:  # none, or vectors of two embedding models: keep the newest
                newest = max(self._vectors, default=None)
                if newest is None:
                    return None
                size = self._vectors[newest].shape[0]
                ids = [i for i, vector in self._vectors.items() if vector.shape[0] == size]
            else:
                ids = list(self._vectors)
            self._matrix_ids = ids
            self._matrix = np.stack([self._vectors[i] for i in ids])
        return self._matrix

    def _forget(self, cache_id: int) -> None:
        indexed = self._rows.pop(cache_id, None)
        if indexed is not None:
            self._by_question.get(indexed.question, set()).discard(cache_id)
        if self._vectors.pop(cache_id, None) is not None:
            self._matrix = None


@dataclass(frozen=True)
class CacheLookup:
    """The cache over one knowledge base: what the engine calls (`AnswerLookup`)."""

    cache: AnswerCache
    knowledge: KnowledgeBase

    def repeated(self, question: str, context_method: str) -> CachedAnswer | None:
        return self.cache.repeated(question, context_method, self.knowledge)

    def equivalent(self, key: CacheKey) -> CachedAnswer | None:
        return self.cache.equivalent(key, self.knowledge)


def find_repeated(
    *,
    session: Session,
    question: str,
    context_method: str,
    knowledge: KnowledgeBase,
    for_share: bool = False,
) -> CachedAnswer | None:
    """The newest cached answer to `question` (normalised) retrieved with `context_method` from
    this knowledge version by this revision of the code: retrieval and selection would give
    exactly what they gave then, so nothing needs computing. The version is a hash of every
    entry's content, so the entries the answer cites are unchanged too (no digest to compare).
    `for_share`: the row cannot be removed before the session's transaction ends (PostgreSQL;
    SQLite's writer holds its lock)."""
    query = (
        select(CachedAnswerRow)
        .options(lazyload(CachedAnswerRow.entries))  # not needed: no second query
        .where(
            CachedAnswerRow.question == question,
            CachedAnswerRow.knowledge_version == knowledge.version,
            CachedAnswerRow.engine_revision == ENGINE_REVISION,
            CachedAnswerRow.context_method == context_method,
        )
        .order_by(CachedAnswerRow.id.desc())
        .limit(1)
    )
    if for_share:
        query = query.with_for_update(read=True)
    row = session.scalars(query).first()
    return _cached(row) if row is not None else None


class CachedQuestions:
    """The normalised questions the cache holds, as one API process knows them, so that a message
    in other words costs no lookup of its own: only the newest rows are read, at most once per
    `refresh_seconds` (rows added since are known that much later, unless the worker that stored
    them announced their words: `learn`). Removed rows linger until the next full reload (a
    lookup then finds nothing)."""

    def __init__(self, sessions: sessionmaker[Session], *, refresh_seconds: float = 0.02) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self._questions: set[str] = set()
        self._seen = 0
        self._refreshed_at = self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def __contains__(self, question: str) -> bool:
        if question in self._questions:
            return True
        if time.monotonic() - self._refreshed_at < self.refresh_seconds:
            return False
        self._refresh()
        return question in self._questions

    def learn(self, question: str) -> None:
        """A row was just stored under these normalised words (a worker's event says so): known
        now, without a read (a full reload under way may drop them; its next read finds them).
        Only a hint, as the whole set is: a lookup confirms it."""
        self._questions.add(question)

    def _refresh(self) -> None:
        if not self._lock.acquire(blocking=False):  # another thread is at it: use what is known
            return
        try:
            now = time.monotonic()
            full = now - self._loaded_at >= FULL_RELOAD_SECONDS  # also forgets removed rows
            seen = 0 if full else self._seen
            query = select(CachedAnswerRow.id, CachedAnswerRow.question).where(
                CachedAnswerRow.id > seen - REREAD_IDS,
                CachedAnswerRow.engine_revision == ENGINE_REVISION,
            )
            with read_scope(self.sessions) as session:
                rows = session.execute(query).all()
            questions = {row.question for row in rows}
            if full:  # swapped in whole: other threads never see a half-read set
                self._questions, self._loaded_at = questions, now
            else:
                self._questions |= questions
            self._seen = max([seen, *(row.id for row in rows)])
            self._refreshed_at = now
        finally:
            self._lock.release()


@dataclass(frozen=True)
class SameWords:
    """The lookup a customer's first message gets as it arrives, before any task is queued: an
    answer to the same words is given at once (`shared.conversations.service.submit_message`)."""

    questions: CachedQuestions
    knowledge: Callable[[], KnowledgeBase]  # the base as it is now (`KnowledgeStore.current`)
    # The handoff threshold: an answer that would be handed off now is not given again.
    min_confidence: float

    def may_hold(self, text: str) -> bool:
        """Whether the cache may hold these words (the process's set; a read of new rows at most
        every `refresh_seconds`, no Redis)."""
        return normalise(text) in self.questions

    def base(self, text: str) -> KnowledgeBase | None:
        """The knowledge base to look these words up in, when the cache may hold them; read
        before the unit of work (it may ask Redis for the knowledge version)."""
        return self.knowledge() if self.may_hold(text) else None

    def find(
        self, session: Session, text: str, context_method: str, *, base: KnowledgeBase
    ) -> CachedAnswer | None:
        """The answer to the same words from `base`, if one that would not be handed off now;
        its row is locked against removal until the caller's unit of work ends."""
        cached = find_repeated(
            session=session,
            question=normalise(text),
            context_method=context_method,
            knowledge=base,
            for_share=True,
        )
        return cached if cached is not None and cached.confidence >= self.min_confidence else None


def _cached(row: CachedAnswerRow) -> CachedAnswer:
    return CachedAnswer(
        id=row.id,
        text=row.text,
        origin=row.origin,
        model=row.model,
        sources=row.sources,
        knowledge_version=row.knowledge_version,
        confidence=row.confidence,
    )


def _current(row: CachedAnswerRow, knowledge: KnowledgeBase) -> bool:
    """Whether every entry the row cites is in `knowledge` with the same content."""
    for cited in row.entries:
        entry = knowledge.entry(cited.entry_id)
        if entry is None or entry_digest(entry) != cited.digest:
            return False
    return bool(row.entries)


def store(*, session: Session, question_id: str, answer: Answer, max_entries: int) -> str | None:
    """Keep `answer` for equivalent questions, in the caller's transaction; the oldest rows go
    beyond `max_entries`. Only a reusable answer (a first turn's, not a handoff, not itself
    from the cache) is kept. Returns the normalised words it is kept under (None: not kept)."""
    key = answer.cache_key
    if key is None or answer.cached_from is not None:
        return None
    row = CachedAnswerRow(
        question_id=question_id,
        question=key.question,
        vector=key.vector,
        vector_model=key.vector_model,
        entry_id=key.entry_id,
        statements=key.statements,
        anchors=key.anchors,
        context_method=key.context_method,
        text=answer.text,
        origin=answer.origin.value,
        model=answer.model,
        sources=answer.sources,
        knowledge_version=answer.knowledge_version,
        engine_revision=ENGINE_REVISION,
        confidence=answer.confidence,
        entries=[
            CachedAnswerEntry(entry_id=entry_id, digest=entry_hash)
            for entry_id, entry_hash in key.entries.items()
        ],
    )
    session.add(row)
    session.flush()
    if row.id > max_entries:
        _delete(session, CachedAnswerRow.id <= row.id - max_entries)
    return row.question


def forget_entries(*, session: Session, entry_ids: list[str]) -> int:
    """Remove every cached answer citing one of `entry_ids` (they were edited or removed)."""
    cited = select(CachedAnswerEntry.cache_id).where(CachedAnswerEntry.entry_id.in_(entry_ids))
    return _delete(session, CachedAnswerRow.id.in_(cited))


def forget_answer(*, session: Session, question_id: str) -> int:
    """Remove the cached answer that the question's answer was or repeated (it was rated down)."""
    cached_from = session.scalar(select(Question.cached_from).where(Question.id == question_id))
    condition = CachedAnswerRow.question_id == question_id
    if cached_from is not None:
        condition = condition | (CachedAnswerRow.id == cached_from)
    return _delete(session, condition)


def purge(*, session: Session, entry_id: str | None = None, cache_id: int | None = None) -> int:
    """Remove every cached answer, those citing `entry_id`, or the one `cache_id`."""
    if cache_id is not None:
        return _delete(session, CachedAnswerRow.id == cache_id)
    if entry_id is not None:
        return forget_entries(session=session, entry_ids=[entry_id])
    return _delete(session, CachedAnswerRow.id.is_not(None))


def _delete(session: Session, condition: Any) -> int:
    ids = list(session.scalars(select(CachedAnswerRow.id).where(condition)))
    if not ids:
        return 0
    session.execute(delete(CachedAnswerEntry).where(CachedAnswerEntry.cache_id.in_(ids)))
    session.execute(delete(CachedAnswerRow).where(CachedAnswerRow.id.in_(ids)))
    return len(ids)


@dataclass(frozen=True)
class CacheListing:
    rows: list[tuple[CachedAnswerRow, int, Any]]  # row, hits, last hit
    total: int


def list_cached(*, session: Session, limit: int, offset: int) -> CacheListing:
    """Cached answers, newest first, with how often each was served and when last."""
    hits = (
        select(
            Question.cached_from,
            func.count().label("hits"),
            func.max(Question.completed_at).label("last_hit_at"),
        )
        .where(Question.cached_from.is_not(None))
        .group_by(Question.cached_from)
        .subquery()
    )
    query = (
        select(CachedAnswerRow, func.coalesce(hits.c.hits, 0), hits.c.last_hit_at)
        .outerjoin(hits, hits.c.cached_from == CachedAnswerRow.id)
        .order_by(CachedAnswerRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [(row, int(count), last) for row, count, last in session.execute(query)]
    total = session.scalar(select(func.count()).select_from(CachedAnswerRow)) or 0
    return CacheListing(rows=rows, total=total)
