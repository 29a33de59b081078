"""The retrieval evaluation on a slice of StackFAQ (skipped where the data set is absent)."""

import pytest

from shared.knowledge import RetrievalMethod
from shared.knowledge.calibration import fit_logistic
from shared.knowledge.eval import evaluate, fold, load_dataset, main
from tests.conftest import EVAL_DIR

STACKFAQ = EVAL_DIR / "stackfaq"
pytestmark = pytest.mark.skipif(
    not (STACKFAQ / "queries.jsonl").exists(), reason="../shared/eval/stackfaq is not here"
)


def test_hybrid_retrieval_beats_keyword_on_a_slice() -> None:
    base, queries = load_dataset(STACKFAQ, limit=80)
    keyword = evaluate(base, queries, RetrievalMethod.KEYWORD)
    hybrid = evaluate(base, queries, RetrievalMethod.HYBRID)
    assert hybrid.recall_at_1 >= 0.9 and hybrid.recall_at_3 >= 0.95
    assert hybrid.recall_at_1 > keyword.recall_at_1
    assert 0 < hybrid.p50_ms < 1000
    assert hybrid.recall_at_1 <= hybrid.recall_at_3 <= 1


def test_command_prints_a_row_per_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(STACKFAQ), "--limit", "20"]) == 0
    out = capsys.readouterr().out
    for method in ("keyword", "dense", "hybrid"):
        assert f"| {method} |" in out
    assert "| method | R@1 | R@3 | MRR@10 | p50 ms | p95 ms |" in out


def test_the_folds_split_the_queries_the_same_way_every_time() -> None:
    _, queries = load_dataset(STACKFAQ)
    a, b = fold(queries, "A"), fold(queries, "B")
    assert len(a) + len(b) == len(queries) and not {q.text for q in a} & {q.text for q in b}
    assert fold(queries, "B") == b


def test_logistic_fit_recovers_a_known_curve() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 4000)
    y = (rng.uniform(0, 1, 4000) < 1 / (1 + np.exp(-(10 * x - 5)))).astype(float)
    slope, intercept = fit_logistic(x, y, l2=0.0)
    assert slope == pytest.approx(10, rel=0.2) and intercept == pytest.approx(-5, rel=0.2)
