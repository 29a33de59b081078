"""Ranking: BM25 over question and answer, dense cosine over the question, the question with its
answer, and each answer unit (sentence or list item), and their fusion."""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

from shared.knowledge.embeddings import Embedder, Vector, Vectors
from shared.knowledge.loader import Entry

_STEMMER = Stemmer.Stemmer("english")


class RetrievalMethod(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


@dataclass(frozen=True)
class SearchHit:
    entry: Entry
    index: int  # the entry's position in the base
    score: float  # what the ranking used: fused, cosine or BM25, by method
    keyword: float  # the raw BM25 score
    dense: float | None  # cosine similarity to the query; None without embeddings


_PLAIN_WORD = re.compile(r"[a-z0-9]+")
# Letters that Unicode does not decompose into a plain letter and a mark.
_UNDECOMPOSED = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae",
     "Æ": "Ae", "œ": "oe", "\u0131": "i"}  # the last: a dotless i
)  # fmt: skip


def plain_words(text: str) -> str:
    """`text` as lower-case plain-letter words joined by single spaces ("Montréal, Łódź" →
    "montreal lodz"): how place names are compared, whole words only."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    return " ".join(_PLAIN_WORD.findall(decomposed.encode("ascii", "ignore").decode().lower()))


def says(text: str, phrase: str) -> bool:
    """Whether `text` contains `phrase` as whole words, accents aside ("woman" does not say
    "Oman"; "Montreal" says "Montréal")."""
    return f" {plain_words(phrase)} " in f" {plain_words(text)} "


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed terms: "Refunds" and "refund" match."""
    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )
    return tokens


class BM25Index:
    """A BM25 index over each entry's question (and its phrasings) and answer."""

    def __init__(self, entries: list[Entry]) -> None:
        self.size = len(entries)
        self._retriever: bm25s.BM25 | None = None
        if entries:
            self._retriever = bm25s.BM25()
            self._retriever.index(tokenize([entry.text for entry in entries]), show_progress=False)

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every entry for the query (zeros when no term is shared)."""
        if self._retriever is None:
            return np.zeros(0, dtype=np.float32)
        terms = tokenize([query])[0]
        if not terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)


@dataclass(frozen=True)
class DenseVectors:
    """Unit vectors of each entry's question and of its other phrasings (`phrasing_entries[i]`
    is the entry of phrasing row i) and, once computed, of question plus answer and of every
    answer unit (`unit_entries[i]` is the entry of unit row i)."""

    questions: Vectors
    answers: Vectors | None = None
    units: Vectors | None = None
    unit_entries: npt.NDArray[np.int64] | None = None
    phrasings: Vectors | None = None
    phrasing_entries: npt.NDArray[np.int64] | None = None

    def question_cosines(self, query_vector: Vector) -> npt.NDArray[np.float32]:
        """Each entry's best similarity to the query over its question and its phrasings."""
        cosines = np.asarray(self.questions @ query_vector, dtype=np.float32)
        if self.phrasings is not None and self.phrasing_entries is not None:
            np.maximum.at(cosines, self.phrasing_entries, self.phrasings @ query_vector)
        return cosines


class HybridIndex:
    """BM25 and dense retrieval over the same entries, fused by a weighted score sum:
    dense_weight * cosine + (1 - dense_weight) * BM25 / best BM25. The cosine of an entry is
    (1 - unit_weight) * the mean of the query's similarity to its question and to its question
    with its answer, + unit_weight * the best similarity to one of its answer units — so a
    paraphrase of one sentence ("pay when the parcel arrives") finds the entry that says it."""

    def __init__(
        self,
        entries: list[Entry],
        *,
        vectors: DenseVectors | None,
        embedder: Embedder | None,
        dense_weight: float,
        unit_weight: float = 0.0,
        bm25: BM25Index | None = None,
    ) -> None:
        self.entries = entries
        self.bm25 = bm25 or BM25Index(entries)
        self.vectors = vectors
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.unit_weight = unit_weight

    def with_vectors(self, vectors: DenseVectors) -> "HybridIndex":
        """The same index with other dense vectors (the BM25 part is shared)."""
        return HybridIndex(
            self.entries, vectors=vectors, embedder=self.embedder,
            dense_weight=self.dense_weight, unit_weight=self.unit_weight, bm25=self.bm25,
        )  # fmt: skip

    @property
    def has_dense(self) -> bool:
        return self.vectors is not None and self.embedder is not None and len(self.entries) > 0

    def embed_query(self, query: str) -> Vector | None:
        """The query's unit vector, once per question (None without embeddings)."""
        if self.vectors is None or self.embedder is None:
            return None
        vector: Vector = self.embedder.embed([query])[0]
        return vector

    def search(
        self,
        query: str,
        *,
        k: int,
        method: RetrievalMethod = RetrievalMethod.HYBRID,
        query_vector: Vector | None = None,
    ) -> list[SearchHit]:
        """The best `k` entries, best first; keyword search keeps only entries sharing a term."""
        if not self.entries:
            return []
        keyword = self.bm25.scores(query)
        dense = (
            None
            if method is RetrievalMethod.KEYWORD
            else self.cosines(query, query_vector=query_vector)
        )
        if method is RetrievalMethod.KEYWORD or dense is None:
            ranking = keyword
        elif method is RetrievalMethod.DENSE:
            ranking = dense
        else:
            top = float(keyword.max())
            normalised = keyword / top if top > 0 else keyword
            ranking = self.dense_weight * dense + (1 - self.dense_weight) * normalised
        k = min(k, len(self.entries))
        best = np.argpartition(-ranking, k - 1)[:k]
        best = best[np.argsort(-ranking[best], kind="stable")]
        hits = [
            SearchHit(
                entry=self.entries[i],
                index=int(i),
                score=float(ranking[i]),
                keyword=float(keyword[i]),
                dense=None if dense is None else float(dense[i]),
            )
            for i in best
        ]
        if method is RetrievalMethod.KEYWORD or dense is None:
            hits = [hit for hit in hits if hit.keyword > 0]
        return hits

    def cosines(
        self, query: str, *, query_vector: Vector | None = None
    ) -> npt.NDArray[np.float32] | None:
        """Dense similarity of every entry to the query; None without embeddings."""
        vectors = self.vectors
        if vectors is None or self.embedder is None:
            return None
        if query_vector is None:
            query_vector = self.embedder.embed([query])[0]
        cosines: npt.NDArray[np.floating[Any]] = vectors.question_cosines(query_vector)
        if vectors.answers is not None:
            cosines = (cosines + vectors.answers @ query_vector) / 2
        if self.unit_weight and vectors.units is not None and vectors.unit_entries is not None:
            best_unit = np.full(len(self.entries), -1.0, dtype=np.float32)
            np.maximum.at(best_unit, vectors.unit_entries, vectors.units @ query_vector)
            has_units = best_unit > -1.0
            cosines = np.where(
                has_units,
                (1 - self.unit_weight) * cosines + self.unit_weight * best_unit,
                cosines,
            )
        return np.asarray(cosines, dtype=np.float32)

    def unit_cosines(self, query_vector: Vector) -> npt.NDArray[np.float32] | None:
        """Similarity of every answer unit to the query (rows as in `vectors.units`)."""
        if self.vectors is None or self.vectors.units is None:
            return None
        return np.asarray(self.vectors.units @ query_vector, dtype=np.float32)
