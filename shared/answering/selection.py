"""Which statements of an entry answer the question: its units (sentences, list items), ranked by
their similarity to the question and the words they share with it. When two entries retrieve
almost equally well, the question may mean either, and the statements of both answer it."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.knowledge import KnowledgeBase, SearchHit
from shared.knowledge.embeddings import Vector
from shared.knowledge.loader import EntryKind
from shared.knowledge.search import tokenize

# Tuned on the tune halves of bench/data (python bench/answer_quality.py --split tune).
LEXICAL_WEIGHT = 0.25  # of the share of the question's terms a unit contains
MARGIN = 0.15  # a further unit is kept when it scores within this of the best
MAX_UNITS = 3
WHOLE_ENTRY_UNITS = 2  # entries this short are given whole
# A question this close to the entry's own (cosine) is answered by the entry's whole answer: "How
# do I make a complaint?" is not asked by one of its sentences. The closest question of
# bench/data is at 0.8996 ("Do you ship to other countries?" to "Do you ship internationally?").
OWN_QUESTION = 0.95
# Below this, the best statement answers nothing on its own ("How can I reach you?" — "Please
# have your order number ready…", 0.44): the whole answer does, for a Q/A entry of at most
# WHOLE_WHEN_WEAK_UNITS statements (a long one or a passage keeps its selection). A score on the
# default embedding model's scale (all-mpnet-base-v2; cosine + LEXICAL_WEIGHT * shared words),
# chosen on the tune half (extractive): right 89.2 % at 0.5 (answer length 66 %), 90.3 % at 0.6
# (74 %), 91.4 % at 0.65 (83 %) — one question for 11 points of length at 0.6, the balance.
WEAK_STATEMENT = 0.6
WHOLE_WHEN_WEAK_UNITS = MAX_UNITS + 1
# The runner-up entry within this of the best one's fused score is a second reading of the question.
SECOND_READING_MARGIN = 0.05


@dataclass(frozen=True)
class Selection:
    """The statements of `hit.entry` an answer is built from, in the entry's order."""

    hit: SearchHit
    units: list[str]
    scores: list[float]

    @property
    def text(self) -> str:
        """The statements as the customer reads them. A statement's own "Yes," or "No," answered
        the entry's question, not necessarily this one, so it is left out."""
        lines: list[str] = []
        lead_in = None
        for unit in self.units:
            head, _, item = unit.partition("\n- ")
            if item and head == lead_in:  # another item of the same list: the lead-in once
                lines.append(f"- {item}")
                continue
            lead_in = head if item else None
            lines.append(_without_verdict(unit))
        return "\n".join(lines)


def second_reading(hits: Sequence[SearchHit]) -> SearchHit | None:
    """The runner-up entry, when it retrieves almost as well as the best: "How long is the
    guarantee?" may ask for the warranty or for the return window, and a guess between two
    near-equal entries is wrong as often as not. Hits must be in order of their fused (hybrid)
    score; the margin means nothing for raw BM25 scores."""
    if len(hits) < 2 or hits[1].score < hits[0].score - SECOND_READING_MARGIN:
        return None
    return hits[1]


def readings_text(selections: Sequence[Selection]) -> str:
    """What the customer reads: one entry's statements as they are; the statements of two, each
    under its entry's question, so the customer sees which answers what."""
    if len(selections) == 1:
        return selections[0].text
    return "\n\n".join(f"{s.hit.entry.question}\n{s.text}" for s in selections)


def select_units(
    *,
    knowledge: KnowledgeBase,
    hit: SearchHit,
    question: str,
    query_vector: Vector | None,
    prefer: re.Pattern[str] | None = None,
    whole_when_weak: bool = True,
) -> Selection:
    """The one to three units of the entry that best answer `question` (only units matching
    `prefer`, when the question needs them and the entry has some: a foreign place needs what is
    said of other countries); the whole answer of a short entry none of whose units answers on
    its own, unless `whole_when_weak` is off (a second reading: an entry that weak is no answer)."""
    units = hit.entry.units
    allowed = [prefer is None or bool(prefer.search(unit)) for unit in units]
    if not any(allowed):
        allowed = [True] * len(units)
    if all(allowed) and (
        len(units) <= WHOLE_ENTRY_UNITS or _asks_its_question(knowledge, hit, query_vector)
    ):
        return Selection(hit=hit, units=units, scores=[1.0] * len(units))
    scores = _lexical(question, units) * LEXICAL_WEIGHT
    dense = _unit_cosines(knowledge, hit, query_vector)
    margin = MARGIN * LEXICAL_WEIGHT  # without embeddings, scores span a quarter of the range
    if dense is not None:
        scores = scores + dense
        margin = MARGIN
    scores = np.where(allowed, scores, -np.inf)
    ranked = sorted(range(len(units)), key=lambda i: -scores[i])
    best = scores[ranked[0]]
    if (
        whole_when_weak
        and dense is not None
        and all(allowed)
        and best < WEAK_STATEMENT
        and hit.entry.kind is EntryKind.QA
        and len(units) <= WHOLE_WHEN_WEAK_UNITS
    ):
        return Selection(hit=hit, units=units, scores=[float(score) for score in scores])
    kept = [i for i in ranked[:MAX_UNITS] if allowed[i] and scores[i] >= best - margin]
    kept.sort()
    return Selection(
        hit=hit, units=[units[i] for i in kept], scores=[float(scores[i]) for i in kept]
    )


_LEADING_VERDICT = re.compile(r"^(?:yes|no)\b[.,!]?\s*", re.IGNORECASE)


def _without_verdict(statement: str) -> str:
    rest = _LEADING_VERDICT.sub("", statement)
    return rest[:1].upper() + rest[1:] if rest and rest != statement else statement


def _lexical(question: str, units: list[str]) -> np.ndarray:
    terms = set(tokenize([question])[0])
    if not terms:
        return np.zeros(len(units))
    return np.array([len(terms & set(unit_terms)) / len(terms) for unit_terms in tokenize(units)])


def _asks_its_question(
    knowledge: KnowledgeBase, hit: SearchHit, query_vector: Vector | None
) -> bool:
    vectors = knowledge.index.vectors
    if query_vector is None or vectors is None:
        return False
    # The question itself, not its phrasings: a phrasing often asks one detail ("Do gift cards
    # expire?"), which one statement answers.
    return float(vectors.questions[hit.index] @ query_vector) >= OWN_QUESTION


def _unit_cosines(
    knowledge: KnowledgeBase, hit: SearchHit, query_vector: Vector | None
) -> np.ndarray | None:
    vectors = knowledge.index.vectors
    if query_vector is None or vectors is None or vectors.units is None:
        return None
    rows = knowledge.unit_rows(hit.index)
    return np.asarray(vectors.units[rows] @ query_vector)
