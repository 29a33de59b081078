"""Answer one question: retrieve, decide between answering and a handoff, generate, check."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.answering.grounding import GatedStream, Grounding, strip_citations
from shared.core.config import Settings
from shared.knowledge import KnowledgeBase, RetrievalMethod, SearchHit
from shared.llm import LLMProvider, TokenSink
from shared.llm.extractive import quote_entry


class AnswerAction(StrEnum):
    ANSWER = "answer"
    HANDOFF = "handoff"


class ContextMethod(StrEnum):
    HYBRID = "hybrid"
    KEYWORD = "keyword"  # BM25 only
    ALL = "all"  # the whole knowledge base, when it fits


@dataclass(frozen=True)
class Answer:
    text: str
    action: AnswerAction
    confidence: float
    sources: list[dict[str, Any]]
    provider: str
    model: str
    knowledge_version: str
    fallback_reason: str | None = None  # why a model's draft was replaced by the entry's text
    rejected_draft: str | None = None
    timings: dict[str, float | None] = field(default_factory=dict)
    tokens: int | None = None


def confidence_of(hits: list[SearchHit], settings: Settings) -> float:
    """Calibrated probability that the base answers the question, from the best cosine."""
    if not hits:
        return 0.0
    top = hits[0].dense
    if top is None:  # keyword-only retrieval: a shared term is all we know
        return 1.0 if hits[0].keyword > 0 else 0.0
    return 1 / (1 + math.exp(-(settings.confidence_slope * top + settings.confidence_intercept)))


def source_list(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {"id": hit.entry.id, "question": hit.entry.question, "score": round(hit.score, 4)}
        for hit in hits
    ]


def select_context(
    *, knowledge: KnowledgeBase, question: str, method: ContextMethod, k: int, max_chars: int
) -> list[SearchHit]:
    """The ranked entries the answer may use."""
    if method is ContextMethod.KEYWORD:
        return knowledge.search(question, k=k, method=RetrievalMethod.KEYWORD)
    if method is ContextMethod.ALL:
        everything = knowledge.search(question, k=len(knowledge.entries))
        if sum(len(hit.entry.text) for hit in everything) <= max_chars:
            return everything
    return knowledge.search(question, k=k)


def answer_question(
    *,
    question: str,
    context_method: str,
    knowledge: KnowledgeBase,
    provider: LLMProvider,
    settings: Settings,
    on_token: TokenSink | None = None,
    on_reset: Callable[[], None] | None = None,
) -> Answer:
    """Answer from the knowledge base, hand off when it does not know, never send unchecked text."""
    started = time.perf_counter()
    hits = select_context(
        knowledge=knowledge,
        question=question,
        method=ContextMethod(context_method),
        k=settings.retrieval_top_k,
        max_chars=settings.context_max_chars,
    )
    retrieval_ms = (time.perf_counter() - started) * 1000
    confidence = confidence_of(hits, settings)

    def make(text: str, action: AnswerAction, model: str, **extra: Any) -> Answer:
        return Answer(
            text=text,
            action=action,
            model=model,
            confidence=round(confidence, 4),
            sources=source_list(hits[: settings.retrieval_top_k]),
            provider=provider.name,
            knowledge_version=knowledge.version,
            **extra,
        )

    if not hits or confidence < settings.handoff_threshold:
        if on_token is not None:
            on_token(settings.handoff_message)
        return make(
            settings.handoff_message,
            AnswerAction.HANDOFF,
            provider.model,
            timings={"retrieval_ms": retrieval_ms},
        )

    if not provider.generative:
        generation = provider.generate(question=question, context=hits, on_token=on_token)
        return make(
            generation.text,
            AnswerAction.ANSWER,
            generation.model,
            timings={"retrieval_ms": retrieval_ms, "generation_ms": generation.generation_ms},
        )

    grounding = Grounding(context=hits, question=question)
    gate = GatedStream(grounding, on_token)
    generation = provider.generate(question=question, context=hits, on_token=gate.feed)
    draft = gate.finish()
    verdict = gate.verdict if not gate.verdict.ok else grounding.check(draft)
    text, fallback_reason, rejected = strip_citations(draft), None, None
    if not verdict.ok:
        # The customer gets the best entry's own words, labelled; the record keeps the why.
        text, rejected = quote_entry(hits[0]), draft
        fallback_reason = verdict.code or "ungrounded"
        if on_reset is not None:
            on_reset()
        if on_token is not None:
            on_token(text)
    return make(
        text,
        AnswerAction.ANSWER,
        generation.model,
        fallback_reason=fallback_reason,
        rejected_draft=rejected,
        tokens=generation.tokens,
        timings={
            "retrieval_ms": retrieval_ms,
            "first_token_ms": generation.first_token_ms,
            "generation_ms": generation.generation_ms,
        },
    )
