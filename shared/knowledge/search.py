"""BM25 ranking over the knowledge base."""

from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from shared.knowledge.loader import Entry


@dataclass(frozen=True)
class SearchHit:
    entry: Entry
    score: float


_STEMMER = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed terms: "Refunds" and "refund" match."""
    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )
    return tokens


class BM25Index:
    """A BM25 index over each entry's question and answer."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self._retriever: bm25s.BM25 | None = None
        if entries:
            self._retriever = bm25s.BM25()
            self._retriever.index(tokenize([entry.text for entry in entries]), show_progress=False)

    def search(self, query: str, *, k: int) -> list[SearchHit]:
        """The best `k` entries sharing at least one term with the query, best first."""
        if self._retriever is None:
            return []
        query_tokens = tokenize([query])
        if not query_tokens[0]:
            return []
        k = min(k, len(self.entries))
        indices, scores = self._retriever.retrieve(query_tokens, k=k, show_progress=False)
        return [
            SearchHit(entry=self.entries[int(i)], score=float(s))
            for i, s in zip(indices[0], scores[0], strict=True)
            if s > 0 and np.isfinite(s)
        ]
