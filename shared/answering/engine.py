"""Answer one question: retrieve, decide between answering and a handoff, select the entry's
statements that answer it, let the model word them, and send the wording only when every claim
in it is verified — otherwise the statements themselves."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from shared.answering.abroad import (
    ABROAD,
    abroad_before,
    abroad_first,
    foreign_places,
    home_first,
    home_places,
    keyword_relevant,
    naming_first,
    places_text,
    places_the_base_names,
    same_subject,
    speaks_of_abroad,
    speaks_of_abroad_first,
)
from shared.answering.context import StandaloneQuestion, standalone_question
from shared.answering.courtesy import Courtesy, courtesy
from shared.answering.handoff import HandoffReason, asks_for_a_person
from shared.answering.places import names_a_place
from shared.answering.reuse import (
    CACHE_PROVIDER,
    AnswerLookup,
    CachedAnswer,
    CacheKey,
    digest,
    entry_digest,
    normalise,
)
from shared.answering.selection import Selection, readings_text, second_reading, select_units
from shared.answering.verification import (
    GatedStream,
    Verifier,
    strip_citations,
    unmentioned_subject,
)
from shared.core.config import Settings
from shared.knowledge import KnowledgeBase, RetrievalMethod, SearchHit
from shared.knowledge.calibration import Calibration, effective_calibration
from shared.knowledge.embeddings import Vector
from shared.knowledge.search import says, tokenize
from shared.llm import LLMProvider, Passage, TokenSink, Turn
from shared.llm.prompt import instruction_texts


class AnswerAction(StrEnum):
    ANSWER = "answer"
    HANDOFF = "handoff"


class AnswerOrigin(StrEnum):
    GENERATED = "generated"  # the model's wording, every claim verified
    EXTRACTED = "extracted"  # the entry's own statements that answer the question
    HANDOFF = "handoff"
    COURTESY = "courtesy"  # "hi", "thanks!" answered in kind: nothing was looked up


class ContextMethod(StrEnum):
    HYBRID = "hybrid"  # BM25 and dense retrieval; the best entry's answering statements
    KEYWORD = "keyword"  # BM25 only
    ALL = "all"  # the best entry's statements, all of them


@dataclass(frozen=True)
class Answer:
    text: str
    action: AnswerAction
    origin: AnswerOrigin
    confidence: float
    sources: list[dict[str, Any]]
    provider: str
    model: str
    knowledge_version: str
    standalone_question: str | None = None  # what was retrieved with, for a follow-up
    handoff_reason: HandoffReason | None = None
    fallback_reason: str | None = None  # a code: why the model's wording was not sent
    rejected_draft: str | None = None  # internal: what the model wrote, never shown
    timings: dict[str, float | None] = field(default_factory=dict)
    tokens: int | None = None
    # What was retrieved with, as float32 bytes, and the embedding model that made it.
    vector: bytes | None = None
    vector_model: str | None = None
    # Set when the answer may be reused for an equivalent question (a first turn's answer).
    cache_key: CacheKey | None = None
    cached_from: int | None = None  # the cached answer it repeats


def confidence_of(hits: list[SearchHit], calibration: Calibration) -> float:
    """Calibrated probability that the base answers the question, from the best cosine."""
    if not hits:
        return 0.0
    top = hits[0].dense
    if top is None:  # keyword-only retrieval: a shared term is all we know
        return 1.0 if hits[0].keyword > 0 else 0.0
    return calibration.confidence(top)


def source_list(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {"id": hit.entry.id, "question": hit.entry.question, "score": round(hit.score, 4)}
        for hit in hits
    ]


@dataclass(frozen=True)
class Retrieval:
    """What a customer message was searched with, and what was found."""

    standalone: StandaloneQuestion
    query: str
    query_vector: Vector | None
    hits: list[SearchHit]
    foreign: bool  # it is about a place abroad (see `places_text` for a follow-up)
    # The question, with the turns it was made standalone with, is about other countries.
    abroad: bool = False


def retrieve(
    *,
    message: str,
    history: Sequence[Turn],
    knowledge: KnowledgeBase,
    method: ContextMethod,
    k: int,
    provider: LLMProvider | None = None,
    message_vector: Vector | None = None,
    home_country: str | None = None,
) -> Retrieval:
    """Search the base for a customer message, understood against the turns before it
    (`home_country`: the shop's, an ISO code, when known)."""
    standalone = standalone_question(
        message=message,
        history=history,
        knowledge=knowledge,
        provider=provider,
        message_vector=message_vector,
    )
    about = places_text(message, history, standalone)
    # Places only earlier turns named: the message may have moved on to another subject.
    carried = not (standalone.rewritten or names_a_place(message)) and about != message
    foreign = bool(foreign_places(about, knowledge, home_country))
    named = [] if foreign else places_the_base_names(about, knowledge)
    home = not (foreign or named) and bool(home_places(about, knowledge, home_country))
    keyword_only = method is ContextMethod.KEYWORD
    retrieval = RetrievalMethod.KEYWORD if keyword_only else RetrievalMethod.HYBRID

    def search(query: str, query_vector: Vector | None) -> list[SearchHit]:
        return knowledge.search(query, k=k, method=retrieval, query_vector=query_vector)

    query = standalone.text
    query_vector = found_vector = None if keyword_only else standalone.vector
    hits = found = search(query, query_vector)
    if foreign:  # what the base says of other countries, in its words
        query = f"{query} (international, another country)"
        query_vector = knowledge.embed_query(query) if query_vector is not None else None
        hits = search(query, query_vector)
    says_abroad = bool(ABROAD.search(standalone.text if standalone.rewritten else message))
    abroad_earlier = (
        not (foreign or named or home or says_abroad or standalone.rewritten)
        and bool(history)
        and abroad_before(message, history, knowledge, retrieval)
    )
    if foreign:
        if query_vector is None:  # keyword scores: the words added must not bring in the
            hits = keyword_relevant(hits, knowledge, standalone.text)  # unrelated
        hits = abroad_first(hits, knowledge, query_vector, by_count=True)
    elif named:
        hits = naming_first(hits, named)
    elif home and not says_abroad:
        hits = home_first(hits)
    elif says_abroad or abroad_earlier:
        hits = speaks_of_abroad_first(hits, knowledge, query_vector)
    # What only earlier turns said puts first only an entry that speaks of it, on the subject of
    # the one found without it: "How long does shipping take?" after "Do you ship to the UK?"
    # gets what the base says of shipping abroad, "How do I reset my password?" the password
    # reset.
    if ((carried and (foreign or named)) or abroad_earlier) and hits and found:
        first = hits[0].entry
        speaks = speaks_of_abroad(first) if foreign or abroad_earlier else (
            any(says(first.text, place) for place in named)
        )  # fmt: skip
        if not (speaks and same_subject(knowledge, found[0], hits[0])):
            query, query_vector, hits = standalone.text, found_vector, found
            foreign, named, abroad_earlier = False, [], False
    # "How much does it cost?" after "Do you ship internationally?" is about abroad too; and a
    # place the base speaks of is answered from what it says of that place alone.
    abroad = (
        foreign
        or bool(named)
        or abroad_earlier
        or bool(ABROAD.search(message))
        or (not home and bool(ABROAD.search(standalone.text)))  # "I meant to Texas" is not
    )
    return Retrieval(standalone, query, query_vector, hits, foreign, abroad)


def answer_question(
    *,
    question: str,
    context_method: str,
    knowledge: KnowledgeBase,
    provider: LLMProvider,
    settings: Settings,
    history: Sequence[Turn] = (),
    on_token: TokenSink | None = None,
    on_reset: Callable[[], None] | None = None,
    cache: AnswerLookup | None = None,
) -> Answer:
    """Answer from the knowledge base, hand off when it does not know, never send a claim that
    the entry's statements do not verify. `history` is the conversation before `question`;
    `cache` finds an earlier answer to the same question from the same statements."""
    started = time.perf_counter()
    if (kind := courtesy(question)) is not None:  # before the cache, as the API's same words
        return courteous_reply(kind, settings=settings, provider=provider, knowledge=knowledge,
                               on_token=on_token)  # fmt: skip
    repeated = (
        cache.repeated(normalise(question), context_method)
        if cache is not None and not history
        else None
    )
    # Given again only while it would still be answered (the threshold may have been raised).
    if repeated is not None and repeated.confidence >= settings.handoff_threshold:
        if on_token is not None:
            on_token(repeated.text)
        return repeat(repeated, model=provider.model, timings={"retrieval_ms": None})
    # The message is embedded once: for recognising a request for a person and for retrieval.
    message_vector = knowledge.embed_query(question)
    if asks_for_a_person(question, knowledge.index.embedder, vector=message_vector):
        if on_token is not None:
            on_token(settings.person_requested_message)
        return Answer(
            text=settings.person_requested_message,
            action=AnswerAction.HANDOFF,
            origin=AnswerOrigin.HANDOFF,
            confidence=0.0,
            sources=[],
            provider=provider.name,
            model=provider.model,
            knowledge_version=knowledge.version,
            handoff_reason=HandoffReason.CUSTOMER_REQUEST,
            timings={"retrieval_ms": (time.perf_counter() - started) * 1000},
        )
    method = ContextMethod(context_method)
    found = retrieve(
        message=question,
        history=history,
        knowledge=knowledge,
        method=method,
        k=settings.retrieval_top_k,
        provider=provider,
        message_vector=message_vector,
        home_country=settings.shop_country,
    )
    standalone, query, query_vector, hits = (
        found.standalone,
        found.query,
        found.query_vector,
        found.hits,
    )
    calibration = effective_calibration(knowledge, settings)
    confidence = confidence_of(hits, calibration)
    timings: dict[str, float | None] = {"retrieval_ms": (time.perf_counter() - started) * 1000}
    embedder = knowledge.index.embedder
    vector, vector_model = (
        (np.asarray(query_vector, dtype=np.float32).tobytes(), embedder.name)
        if query_vector is not None and embedder is not None
        else (None, None)
    )

    def make(text: str, origin: AnswerOrigin, model: str, **extra: Any) -> Answer:
        handoff = origin is AnswerOrigin.HANDOFF
        return Answer(
            text=text,
            action=AnswerAction.HANDOFF if handoff else AnswerAction.ANSWER,
            origin=origin,
            model=model,
            confidence=round(confidence, 4),
            sources=source_list(hits),
            provider=provider.name,
            knowledge_version=knowledge.version,
            standalone_question=standalone.text if history else None,
            timings=timings,
            vector=vector,
            vector_model=vector_model,
            **extra,
        )

    confident = bool(hits) and confidence >= settings.handoff_threshold
    # Confident retrieval of an entry that names nothing the customer asks the shop to have.
    unmentioned = confident and bool(unmentioned_subject(question, hits[0].entry))
    if not confident or unmentioned:
        if on_token is not None:
            on_token(settings.handoff_message)
        return make(
            settings.handoff_message,
            AnswerOrigin.HANDOFF,
            provider.model,
            handoff_reason=HandoffReason.LOW_CONFIDENCE,
            fallback_reason="unmentioned_subject" if unmentioned else None,
        )

    # A message that stood on its own chooses the statements by its own meaning: the earlier
    # turns only nudged which entry it found ("What's your phone number?" after "Do you ship
    # internationally?" wants the phone line, not the sentence about an order number).
    chooser = message_vector if query == question and query_vector is not None else query_vector
    selection = select_units(knowledge=knowledge, hit=hits[0], question=query, query_vector=chooser)
    if method is ContextMethod.ALL:
        selection = Selection(hit=hits[0], units=hits[0].entry.units, scores=[])
    readings = [selection]
    # Two near-equal entries: the statements of both, never a guess between them. Not for a
    # question about other countries (the runner-up may be the domestic entry), nor an entry
    # about abroad for one that is not (the international times for "how many days for
    # express?"), and only an entry that would be answered from on its own.
    other = (
        second_reading(hits)
        if method is ContextMethod.HYBRID and not found.abroad and hits[0].dense is not None
        else None
    )
    if (
        other is not None
        and not ABROAD.search(other.entry.question)
        and calibration.confidence(other.dense or 0.0) >= settings.handoff_threshold
        and not unmentioned_subject(question, other.entry)
    ):
        readings.append(
            select_units(
                knowledge=knowledge,
                hit=other,
                question=query,
                query_vector=chooser,
                whole_when_weak=False,
            )
        )
    statements = readings_text(readings)
    key = cache_key(standalone.text, vector, vector_model, readings, hits, method)
    cached = cache.equivalent(key) if cache is not None else None
    if cached is not None and cached.origin == AnswerOrigin.GENERATED.value:
        # A model's wording was verified against the question it answered; it must pass the
        # same checks against this one (a figure or place this question names, a yes/no).
        checks = verifier_for(question, selection)
        if not (checks.question_check().ok and checks.check(cached.text).ok):
            cached = None
    if cached is not None:
        if on_token is not None:
            on_token(cached.text)
        return replace(
            repeat(cached, model=provider.model, timings=timings),
            standalone_question=standalone.text if history else None,
            vector=vector,
            vector_model=vector_model,
        )
    # An answer that leaned on earlier turns is not reused: only a first turn's answer depends
    # on nothing but its standalone question.
    reusable = key if not history else None

    def extracted(reason: str | None, draft: str | None = None, **extra: Any) -> Answer:
        if draft is not None and on_reset is not None:
            on_reset()
        if on_token is not None:
            on_token(statements)
        return make(
            statements,
            AnswerOrigin.EXTRACTED,
            provider.model,
            fallback_reason=reason,
            rejected_draft=draft,
            cache_key=reusable,
            **extra,
        )

    if not provider.generative:
        return extracted(None)
    if len(readings) > 1:  # each statement under its entry's question, as the entries say it
        return extracted("second_reading")
    verifier = verifier_for(question, selection)
    if not (precheck := verifier.question_check()).ok:
        return extracted(precheck.code)

    gate = GatedStream(verifier, on_token)
    passage = Passage(id=hits[0].entry.id, title=hits[0].entry.question, text=statements)
    generation = provider.generate(
        question=question, passages=[passage], history=history, on_token=gate.feed
    )
    draft = gate.finish()
    verdict = gate.verdict if not gate.verdict.ok else verifier.check(draft)
    timings.update(first_token_ms=generation.first_token_ms, generation_ms=generation.generation_ms)
    if not verdict.ok:
        return extracted(verdict.code or "unverified", draft, tokens=generation.tokens)
    return make(
        strip_citations(draft),
        AnswerOrigin.GENERATED,
        generation.model,
        tokens=generation.tokens,
        cache_key=reusable,
    )


def courteous_reply(
    kind: Courtesy,
    *,
    settings: Settings,
    provider: LLMProvider,
    knowledge: KnowledgeBase,
    on_token: TokenSink | None,
) -> Answer:
    """The reply in kind — GREETING_MESSAGE to a greeting, THANKS_MESSAGE to thanks — answered,
    not handed off (a "thanks!" looked up found nothing and went to a person's inbox)."""
    text = settings.greeting_message if kind is Courtesy.GREETING else settings.thanks_message
    if on_token is not None:
        on_token(text)
    return Answer(
        text=text,
        action=AnswerAction.ANSWER,
        origin=AnswerOrigin.COURTESY,
        confidence=1.0,  # nothing to look up: not a knowledge gap
        sources=[],
        provider=provider.name,
        model=provider.model,
        knowledge_version=knowledge.version,
        timings={"retrieval_ms": None},
    )


def verifier_for(question: str, selection: Selection) -> Verifier:
    """The checks a wording must pass to answer `question` from the selected statements."""
    return Verifier(
        question=question,
        statements=selection.units,
        entry=selection.hit.entry,
        instructions=instruction_texts(),
    )


def cache_key(
    standalone: str,
    vector: bytes | None,
    vector_model: str | None,
    readings: Sequence[Selection],
    hits: list[SearchHit],
    method: ContextMethod,
) -> CacheKey:
    """What an answer built from `readings` (the best entry's statements, and a second entry's
    when the question may mean either) is reused by: the same statements of the same entries."""
    units = [unit for selection in readings for unit in selection.units]
    statement_terms = [term for terms in tokenize(units) for term in terms]
    statements = "\n".join(units)
    if len(readings) > 1:  # never equal to an answer from the first entry alone
        statements = "\n".join(f"{s.hit.entry.id}\n" + "\n".join(s.units) for s in readings)
    return CacheKey(
        question=normalise(standalone),
        vector=vector,
        vector_model=vector_model,
        entry_id=readings[0].hit.entry.id,
        statements=digest(statements),
        anchors=" ".join(sorted(set(tokenize([standalone])[0]) & set(statement_terms))),
        entries={hit.entry.id: entry_digest(hit.entry) for hit in hits},
        context_method=method.value,
    )


def repeat(cached: CachedAnswer, *, model: str, timings: dict[str, float | None]) -> Answer:
    """The earlier answer as it was given: its sources, confidence and knowledge version,
    `provider: cache` (`model`: when the row names none)."""
    return Answer(
        text=cached.text,
        action=AnswerAction.ANSWER,
        origin=AnswerOrigin(cached.origin),
        confidence=cached.confidence,
        sources=cached.sources,
        provider=CACHE_PROVIDER,
        model=cached.model or model,
        knowledge_version=cached.knowledge_version,
        timings=timings,
        cached_from=cached.id,
    )
