"""Measure retrieval on a labelled FAQ set: R@1, R@3, MRR@10 and latency per query, per method.

    python -m shared.knowledge.eval DATASET_DIR [--limit N] [--tune] [--calibrate OOS.jsonl]

DATASET_DIR holds `knowledge_base.md` (Q:/A: entries) and `queries.jsonl` with one
`{"query": str, "faq_id": int}` a line, `faq_id` being the entry's 0-based position in the file.
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


def tune_dense_weight(base: KnowledgeBase, queries: list[Query], *, seed: int = 0) -> float:
    """Two-fold cross-validated sweep of the fusion weight; prints both folds, returns the best."""
    dense, keyword = score_matrices(base, queries)
    gold = np.array([q.faq_id for q in queries])
    folds = np.array_split(np.random.default_rng(seed).permutation(len(queries)), 2)
    weights = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]
    print("\n| dense weight | R@1 fold A | R@1 fold B | R@1 all |\n|---|---|---|---|")
    for w in weights:
        fused = w * dense + (1 - w) * keyword
        a, b = (recall_at_1(fused[f], gold[f]) for f in folds)
        print(f"| {w:.2f} | {a:.3f} | {b:.3f} | {recall_at_1(fused, gold):.3f} |")
    choices = []
    for train, test in ((0, 1), (1, 0)):
        scores = [recall_at_1((w * dense + (1 - w) * keyword)[folds[train]], gold[folds[train]])
                  for w in weights]  # fmt: skip
        w = weights[int(np.argmax(scores))]
        held_out = recall_at_1((w * dense + (1 - w) * keyword)[folds[test]], gold[folds[test]])
        print(
            f"tuned on fold {'AB'[train]}: weight {w:.2f}, R@1 on fold {'AB'[test]} {held_out:.3f}"
        )
        choices.append(w)
    return float(np.mean(choices))


def fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], *, l2: float = 1.0
) -> tuple[float, float]:
    """One-feature logistic regression by Newton's method: P(y=1) = sigmoid(a*x + b).

    The L2 penalty on the slope keeps the curve finite when the classes separate perfectly.
    """
    a, b = 0.0, 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = p * (1 - p) + 1e-9
        gradient = np.array([np.sum((p - y) * x) + l2 * a, np.sum(p - y)])
        hessian = np.array([[np.sum(w * x * x) + l2, np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def calibrate(base: KnowledgeBase, queries: list[Query], out_of_scope: list[str]) -> None:
    """Fit confidence = logistic(top cosine) on answerable versus out-of-scope questions."""
    settings = get_settings()

    def top_cosine(text: str) -> float:
        hits = base.search(text, k=1)
        return hits[0].dense if hits and hits[0].dense is not None else 0.0

    inside = np.array([top_cosine(q.text) for q in queries])
    outside = np.array([top_cosine(text) for text in out_of_scope])
    x = np.concatenate([inside, outside])
    y = np.concatenate([np.ones(len(inside)), np.zeros(len(outside))])
    # Weight the classes equally, whatever their sizes.
    weights = np.where(y == 1, len(y) / (2 * len(inside)), len(y) / (2 * len(outside)))
    repeat = np.maximum(np.round(weights / weights.min()).astype(int), 1)
    slope, intercept = fit_logistic(np.repeat(x, repeat), np.repeat(y, repeat))
    confidence = 1 / (1 + np.exp(-(slope * x + intercept)))
    threshold = settings.handoff_threshold
    answered = float((confidence[y == 1] >= threshold).mean())
    handed_off = float((confidence[y == 0] < threshold).mean())
    print(f"\nconfidence calibration ({len(inside)} answerable, {len(outside)} out-of-scope)")
    for name, values in (("answerable", inside), ("out-of-scope", outside)):
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        print(f"top cosine, {name}: p5 {p5:.3f}, median {p50:.3f}, p95 {p95:.3f}")
    print(f"CONFIDENCE_SLOPE={slope:.2f} CONFIDENCE_INTERCEPT={intercept:.2f}")
    print(f"at HANDOFF_THRESHOLD={threshold}: answerable answered {answered:.3f}, "
          f"out-of-scope handed off {handed_off:.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.knowledge.eval", description=__doc__)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--limit", type=int, help="evaluate only the first N queries")
    parser.add_argument("--tune", action="store_true", help="sweep the fusion weight")
    parser.add_argument("--calibrate", type=Path, help="JSONL of out-of-scope {'query'} lines")
    args = parser.parse_args(argv)

    base, queries = load_dataset(args.dataset, limit=args.limit)
    methods = [RetrievalMethod.KEYWORD]
    if base.index.has_dense:
        methods += [RetrievalMethod.DENSE, RetrievalMethod.HYBRID]
    print(f"{args.dataset}: {len(base.entries)} entries, {len(queries)} queries "
          f"(dense weight {base.index.dense_weight})\n")  # fmt: skip
    print("| method | R@1 | R@3 | MRR@10 | p50 ms | p95 ms |\n|---|---|---|---|---|---|")
    for method in methods:
        print(evaluate(base, queries, method).row(), flush=True)
    if args.tune and base.index.has_dense:
        print(f"suggested RETRIEVAL_DENSE_WEIGHT={tune_dense_weight(base, queries):.2f}")
    if args.calibrate and base.index.has_dense:
        lines = args.calibrate.read_text().splitlines()
        calibrate(base, queries, [json.loads(line)["query"] for line in lines if line.strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
