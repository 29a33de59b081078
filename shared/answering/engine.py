"""Answer one question: retrieve, decide between answering and a handoff, select the entry's
statements that answer it, let the model word them, and send the wording only when every claim
in it is verified — otherwise the statements themselves."""

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from shared.answering.context import StandaloneQuestion, standalone_question, subject_of
from shared.answering.handoff import HandoffReason, asks_for_a_person
from shared.answering.places import countries_of, country_name, names_a_place, regions_of
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
from shared.knowledge.loader import Entry
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


# How a base speaks of places it does not name one by one.
ABROAD = re.compile(r"\b(?:international\w*|countr(?:y|ies)|abroad|worldwide|overseas)\b", re.I)


def foreign_places(
    question: str, knowledge: KnowledgeBase, home_country: str | None = None
) -> list[str]:
    """Places the question names that are abroad for this base: a country it never names, other
    than the shop's own (`home_country`, an ISO code); a city it never names, whose country it
    never names either and, for a shop whose country is known, is not the shop's ("Toronto":
    Canada). A city is not taken for abroad while the shop's country is unknown."""
    home = country_name(home_country or "")
    foreign: list[str] = []
    for place, country in countries_of(question).items():
        if knowledge.names_place(place) or country == home:
            continue
        if place != country and (home is None or knowledge.names_place(country)):
            continue
        foreign.append(place)
    return foreign


def abroad_first(
    hits: list[SearchHit],
    knowledge: KnowledgeBase,
    query_vector: Vector | None,
    *,
    by_count: bool = False,
) -> list[SearchHit]:
    """For a question about a foreign place: the entries ranked by what they say of other
    countries (their statements that speak of abroad, by similarity to the question), so that
    a domestic delivery time is never given for it; entries that say nothing of it last.
    Without embeddings and `by_count`, the entries that say most of it first (one line pointing
    elsewhere, "International delivery times are listed separately", says little)."""

    def abroad(hit: SearchHit) -> float:
        statements = [s for s in hit.entry.units if ABROAD.search(s)]
        if not statements:
            return -1.0
        cosines = knowledge.index.unit_cosines(query_vector) if query_vector is not None else None
        if cosines is None:
            return float(len(statements)) if by_count else 0.0
        rows = knowledge.unit_rows(hit.index)
        return max(
            float(cosines[row])
            for row, unit in zip(rows, hit.entry.units, strict=True)
            if ABROAD.search(unit)
        )

    return sorted(hits, key=abroad, reverse=True)


ABROAD_MARGIN = 0.1  # how far below the best hit an entry that speaks of abroad may be


# Of the original question's best keyword score, what an entry needs to be about it at all.
KEYWORD_RELEVANT = 0.25


def keyword_relevant(
    hits: list[SearchHit], knowledge: KnowledgeBase, question: str
) -> list[SearchHit]:
    """The hits whose keyword score for `question` itself (without the words added for a place
    abroad) is at least `KEYWORD_RELEVANT` of the best: "How long does shipping to Germany take?"
    keeps the international entry (1.11 of 2.94), "How do I reset my password from Germany?"
    does not (0.26 of 4.09)."""
    scores = knowledge.index.bm25.scores(question)
    best = float(scores.max()) if scores.size else 0.0
    if best <= 0:
        return hits
    return [hit for hit in hits if scores[hit.index] >= KEYWORD_RELEVANT * best] or hits


def speaks_of_abroad_first(
    hits: list[SearchHit], knowledge: KnowledgeBase, query_vector: Vector | None
) -> list[SearchHit]:
    """For a question that says "international", "abroad", "overseas": the hits close to the
    best ranked by what they say of other countries ("How long does international shipping
    take?" is the international entry's question, not the delivery-times one's); the rest after."""
    if not hits:
        return hits
    close = [hit for hit in hits if hit.score >= hits[0].score - ABROAD_MARGIN]
    return abroad_first(close, knowledge, query_vector) + hits[len(close) :]


def places_the_base_names(question: str, knowledge: KnowledgeBase) -> list[str]:
    """The places the question names that the base speaks of: the place itself, or for a city
    the base does not name, its country ("to Toronto" in a base that speaks of Canada)."""
    named: list[str] = []
    for place, country in countries_of(question).items():
        if knowledge.names_place(place):
            named.append(place)
        elif place != country and knowledge.names_place(country):
            named.append(country)
    return named


def naming_first(hits: list[SearchHit], places: list[str]) -> list[SearchHit]:
    """The hits that name one of `places` first (as `abroad_first` does for abroad): "How long
    does shipping to Canada (or Toronto) take?" is answered by the entry that says "Orders to
    Canada arrive in 6-9 days", not by the generic delivery times, which rank higher on the
    question's other words."""
    naming = [hit for hit in hits if any(says(hit.entry.text, place) for place in places)]
    return naming + [hit for hit in hits if hit not in naming]


RECENT_TURNS = 3  # customer messages whose place (or "abroad") a follow-up may be about
# Entries whose questions with their answers are this similar are on the same subject (chosen
# on knowledge/: shipping times and costs, PO boxes and physical stores are 0.48-0.53 from
# shipping abroad; warranties, payment methods, returns and support 0.14-0.36).
SAME_SUBJECT = 0.45


def recent_messages(history: Sequence[Turn]) -> list[str]:
    """The customer's last `RECENT_TURNS` messages, oldest first."""
    return [turn.text for turn in history if turn.role == "customer"][-RECENT_TURNS:]


def places_text(message: str, history: Sequence[Turn], standalone: StandaloneQuestion) -> str:
    """The text whose places the message is about: its own when it names one ("For my order here
    in Boston…"); for a follow-up that names none, also the last of the customer's recent
    messages that named one ("How long does it take?" after "Do you ship to the UK?" and "Do I
    pay customs?" is about the UK)."""
    if standalone.rewritten:  # the model put in what the conversation says
        return standalone.text
    if names_a_place(message):  # with the countries of the states it names ("to Ontario")
        return " ".join([message, *regions_of(message).values()])
    placed = next((text for text in reversed(recent_messages(history)) if names_a_place(text)), "")
    return f"{placed} {standalone.text}".strip()


def abroad_before(
    message: str, history: Sequence[Turn], knowledge: KnowledgeBase, method: RetrievalMethod
) -> bool:
    """Whether a follow-up that does not say so itself is about other countries: the customer's
    recent messages said "international", "abroad"…, and what the conversation asked about is
    answered by an entry that speaks of abroad ("How long does it take?" after "Do you ship
    internationally?", not after "Can I get a refund if I ordered from overseas?")."""
    if ABROAD.search(message) or not any(ABROAD.search(t) for t in recent_messages(history)):
        return False
    subject = subject_of(history)
    best = knowledge.search(subject, k=1, method=method) if subject else []
    return bool(best) and speaks_of_abroad(best[0].entry)


def same_subject(knowledge: KnowledgeBase, first: SearchHit, other: SearchHit) -> bool:
    """Whether two entries speak of the same subject (shipping times and shipping abroad do; a
    password reset and shipping abroad do not). Without embeddings, taken to be: a domestic
    figure given for a place abroad would be wrong, an unrelated entry only unhelpful."""
    vectors = knowledge.index.vectors
    if vectors is None:
        return True
    rows = vectors.answers if vectors.answers is not None else vectors.questions
    return float(rows[first.index] @ rows[other.index]) >= SAME_SUBJECT


def speaks_of_abroad(entry: Entry) -> bool:
    return any(ABROAD.search(unit) for unit in entry.units)


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
        not (foreign or named or says_abroad or standalone.rewritten)
        and bool(history)
        and abroad_before(message, history, knowledge, retrieval)
    )
    if foreign:
        if query_vector is None:  # keyword scores: the words added must not bring in the
            hits = keyword_relevant(hits, knowledge, standalone.text)  # unrelated
        hits = abroad_first(hits, knowledge, query_vector, by_count=True)
    elif named:
        hits = naming_first(hits, named)
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
        or bool(ABROAD.search(message) or ABROAD.search(standalone.text))
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

    selection = select_units(
        knowledge=knowledge, hit=hits[0], question=query, query_vector=query_vector
    )
    if method is ContextMethod.ALL:
        selection = Selection(hit=hits[0], units=hits[0].entry.units, scores=[])
    readings = [selection]
    # Two near-equal entries: the statements of both, never a guess between them. Not for a
    # question about other countries (the runner-up may be the domestic entry), and only an
    # entry that would be answered from on its own.
    other = (
        second_reading(hits)
        if method is ContextMethod.HYBRID and not found.abroad and hits[0].dense is not None
        else None
    )
    if (
        other is not None
        and calibration.confidence(other.dense or 0.0) >= settings.handoff_threshold
        and not unmentioned_subject(question, other.entry)
    ):
        readings.append(
            select_units(knowledge=knowledge, hit=other, question=query, query_vector=query_vector)
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
