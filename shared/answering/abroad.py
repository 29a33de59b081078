"""Questions about places: which places a customer message is about (with the conversation
before it), and the entries ranked by what they say of them, so that a domestic delivery time
or price is never given for a place abroad (`shared.answering.engine.retrieve` uses these)."""

import re
from collections.abc import Sequence

from shared.answering.context import StandaloneQuestion, subject_of
from shared.answering.courtesy import says_nothing
from shared.answering.places import countries_of, country_name, names_a_place, regions_of
from shared.knowledge import Entry, KnowledgeBase, RetrievalMethod, SearchHit
from shared.knowledge.embeddings import Vector
from shared.knowledge.search import says
from shared.llm import Turn

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


def home_places(question: str, knowledge: KnowledgeBase, home_country: str | None) -> list[str]:
    """The places the question names in the shop's own country that the base does not name
    ("Texas", "Chicago" or "the US" for a shop in the US); none while its country is unknown."""
    home = country_name(home_country or "")
    if home is None:
        return []
    return [
        place
        for place, country in countries_of(question).items()
        if country == home and not knowledge.names_place(place)
    ]


def home_first(hits: list[SearchHit]) -> list[SearchHit]:
    """For a question about a place at home: of the hits close to the best, those whose own
    question is about abroad ("Do you ship internationally?") after the others, so that "I
    meant to Texas, how long does it take?" after "Do you ship to Canada?" gets the domestic
    delivery times."""
    if not hits:
        return hits
    close = [hit for hit in hits if hit.score >= hits[0].score - ABROAD_MARGIN]
    abroad = [hit for hit in close if ABROAD.search(hit.entry.question)]
    return [hit for hit in close if hit not in abroad] + abroad + hits[len(close) :]


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
    """The customer's last `RECENT_TURNS` messages that say something (not "thanks"), oldest
    first."""
    said = [turn.text for turn in history if turn.role == "customer"]
    return [text for text in said if not says_nothing(text)][-RECENT_TURNS:]


def places_text(message: str, history: Sequence[Turn], standalone: StandaloneQuestion) -> str:
    """The text whose places the message is about: its own when it names one ("For my order here
    in Boston…"); for a follow-up that names none, also the last of the customer's recent
    messages that named one ("How long does it take?" after "Do you ship to the UK?" and "Do I
    pay customs?" is about the UK), or the subject the conversation is still on."""
    if standalone.rewritten:  # the model put in what the conversation says
        return standalone.text
    if names_a_place(message):  # with the countries of the states it names ("to Ontario")
        return " ".join([message, *regions_of(message).values()])
    placed = next((text for text in reversed(recent_messages(history)) if names_a_place(text)), "")
    if not placed:  # the subject may be further back, past a run of follow-ups and thanks
        subject = subject_of(history) or ""
        placed = subject if names_a_place(subject) else ""
    return f"{placed} {standalone.text}".strip()


def abroad_before(
    message: str, history: Sequence[Turn], knowledge: KnowledgeBase, method: RetrievalMethod
) -> bool:
    """Whether a follow-up that does not say so itself is about other countries: the customer's
    recent messages said "international", "abroad"…, and what the conversation asked about is
    answered by an entry that speaks of abroad ("How long does it take?" after "Do you ship
    internationally?", not after "Can I get a refund if I ordered from overseas?")."""
    subject = subject_of(history)
    earlier = [*recent_messages(history), subject or ""]  # the subject may be further back
    if ABROAD.search(message) or not any(ABROAD.search(text) for text in earlier):
        return False
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
