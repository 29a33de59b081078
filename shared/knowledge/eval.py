"""Measure retrieval on a labelled FAQ set: R@1, R@3, MRR@10 and latency per query, per method.

    python -m shared.knowledge.eval DATASET_DIR [--fold A|B|all] [--limit N] [--tune]

DATASET_DIR holds `knowledge_base.md` (Q:/A: entries) and `queries.jsonl` with one
`{"query": str, "faq_id": int}` a line, `faq_id` being the entry's 0-based position in the file.
The queries are split once into two folds (a seeded permutation): the fusion weights were tuned
on fold A (`--tune` sweeps them there), so figures are reported on fold B.
"""

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from shared.core.config import get_settings
from shared.knowledge import KnowledgeBase, RetrievalMethod, create_embedder
from shared.knowledge.embeddings import EmbeddingCache
from shared.knowledge.loader import EntryKind, load_entries


@dataclass(frozen=True)
class Query:
    text: str
    faq_id: int


@dataclass(frozen=True)
class MethodResult:
    method: str
    recall_at_1: float
    recall_at_3: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float

    def row(self) -> str:
        return (
            f"| {self.method} | {self.recall_at_1:.3f} | {self.recall_at_3:.3f} | "
            f"{self.mrr_at_10:.3f} | {self.p50_ms:.1f} | {self.p95_ms:.1f} |"
        )


FOLD_SEED = 0


def fold(queries: list["Query"], name: str) -> list["Query"]:
    """Fold A or B of the queries (the same halves every run), or all of them."""
    if name == "all":
        return queries
    order = np.random.default_rng(FOLD_SEED).permutation(len(queries))
    half = (
        set(order[: len(queries) // 2].tolist())
        if name == "A"
        else set(order[len(queries) // 2 :].tolist())
    )
    return [query for i, query in enumerate(queries) if i in half]


def load_dataset(directory: Path, *, limit: int | None = None) -> tuple[KnowledgeBase, list[Query]]:
    """The dataset's entries (in file order, Q/A only) and its labelled queries."""
    settings = get_settings()
    kb_file = directory / "knowledge_base.md"
    entries = [
        e for e in load_entries([kb_file], root=directory) if e.kind is EntryKind.QA
    ]  # fmt: skip
    with tqdm(total=len(entries), desc="embedding entries", unit="entry", file=sys.stderr) as bar:
        base = KnowledgeBase.from_entries(
            entries,
            embedder=create_embedder(settings),
            cache=EmbeddingCache(settings.embedding_cache_dir),
            dense_weight=settings.retrieval_dense_weight,
            unit_weight=settings.retrieval_unit_weight,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    lines = (directory / "queries.jsonl").read_text().splitlines()
    queries = [Query(d["query"], int(d["faq_id"])) for d in map(json.loads, filter(None, lines))]
    return base, queries[:limit] if limit else queries


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def evaluate(base: KnowledgeBase, queries: list[Query], method: RetrievalMethod) -> MethodResult:
    """Run every query alone, as a customer's request would, and score the ranking."""
    ids = {entry.id: i for i, entry in enumerate(base.entries)}
    ranks, latencies = [], []
    for query in tqdm(queries, desc=method.value, unit="query", file=sys.stderr, leave=False):
        started = time.perf_counter()
        hits = base.search(query.text, k=10, method=method)
        latencies.append((time.perf_counter() - started) * 1000)
        found = [ids[hit.entry.id] for hit in hits]
        ranks.append(found.index(query.faq_id) + 1 if query.faq_id in found else None)
    n = len(queries)
    return MethodResult(
        method=method.value,
        recall_at_1=sum(r == 1 for r in ranks) / n,
        recall_at_3=sum(r is not None and r <= 3 for r in ranks) / n,
        mrr_at_10=sum(1 / r for r in ranks if r is not None) / n,
        p50_ms=statistics.median(latencies),
        p95_ms=percentile(latencies, 0.95),
    )


def score_matrices(
    base: KnowledgeBase, queries: list[Query]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Cosine and max-normalised BM25 of every query against every entry."""
    index = base.index
    dense = np.stack([index.cosines(q.text) for q in queries])  # type: ignore[misc]
    keyword = np.stack([index.bm25.scores(q.text) for q in queries])
    keyword = keyword / np.maximum(keyword.max(axis=1, keepdims=True), 1e-9)
    return dense, keyword


def recall_at_1(scores: npt.NDArray[np.float32], gold: npt.NDArray[np.int64]) -> float:
    return float((scores.argmax(axis=1) == gold).mean())


def tune_weights(base: KnowledgeBase, queries: list[Query]) -> None:
    """Sweep the fusion weights on fold A; print R@1 on both folds for each."""
    folds = {name: fold(queries, name) for name in ("A", "B")}
    ids = {entry.id: i for i, entry in enumerate(base.entries)}
    index = base.index
    print(
        "\n| dense weight | unit weight | R@1 fold A (tuned on) | R@1 fold B |\n|---|---|---|---|"
    )
    best = (0.0, 0.0, 0.0)
    vectors = {q.text: index.embed_query(q.text) for q in queries}
    for dense in (0.7, 0.8, 0.9, 1.0):
        for unit in (0.0, 0.3, 0.5):
            index.dense_weight, index.unit_weight = dense, unit
            scores = {}
            for name, qs in folds.items():
                hits = [base.search(q.text, k=1, query_vector=vectors[q.text]) for q in qs]
                right = sum(
                    bool(h) and ids[h[0].entry.id] == q.faq_id
                    for h, q in zip(hits, qs, strict=True)
                )
                scores[name] = right / len(qs)
            print(f"| {dense:.1f} | {unit:.1f} | {scores['A']:.3f} | {scores['B']:.3f} |")
            best = max(best, (scores["A"], dense, unit))
    print(f"best on fold A: RETRIEVAL_DENSE_WEIGHT={best[1]} RETRIEVAL_UNIT_WEIGHT={best[2]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.knowledge.eval", description=__doc__)
    parser.add_argument("dataset", type=Path)
    parser.add_argument(
        "--fold",
        default="B",
        choices=["A", "B", "all"],
        help="the queries to report on (B: not tuned on)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N queries")
    parser.add_argument("--tune", action="store_true", help="sweep the fusion weights on fold A")
    args = parser.parse_args(argv)

    base, all_queries = load_dataset(args.dataset, limit=args.limit)
    queries = fold(all_queries, args.fold)
    methods = [RetrievalMethod.KEYWORD]
    if base.index.has_dense:
        methods += [RetrievalMethod.DENSE, RetrievalMethod.HYBRID]
    embedder = base.index.embedder.name if base.index.embedder else "none"
    print(
        f"{args.dataset}: {len(base.entries)} entries, {len(queries)} queries of fold "
        f"{args.fold} (dense weight {base.index.dense_weight}, unit weight "
        f"{base.index.unit_weight}, embedder {embedder})\n"
    )
    print("| method | R@1 | R@3 | MRR@10 | p50 ms | p95 ms |\n|---|---|---|---|---|---|")
    for method in methods:
        print(evaluate(base, queries, method).row(), flush=True)
    if args.tune and base.index.has_dense:
        tune_weights(base, all_queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
