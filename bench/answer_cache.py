"""The answer cache on StackFAQ: how many questions it answers, and how many of those wrongly.

    python bench/answer_cache.py [--fold A|B|all] [--calibrate] [--provider extractive|embedded]

StackFAQ (../shared/eval/stackfaq) has five or so paraphrases of each of its 125 FAQ entries,
labelled with the entry they ask about. The labelled questions arrive in a shuffled order (seed
fixed) and each is answered by the real engine (`answer_question`) with the real cache
(`shared.answer_cache`) over a fresh SQLite database, as a worker answers a conversation's first
turn. A *hit* is an answer given from the cache; a *wrong hit* is a hit whose cached answer cites
an entry other than the question's label. `--calibrate` tries similarity thresholds on fold A
(the tuning half): the README's threshold is the lowest whose wrong hits stay at most 0.5 % of
the hits there; report on fold B. Timings: a hit against a miss, which with `--provider
embedded` is the model path.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shared.answer_cache.models  # noqa: E402  (the tables)
import shared.conversations.models  # noqa: E402, F401
from bench.answer_quality import EVAL_DIR, provider_for  # noqa: E402
from shared.answer_cache.service import AnswerCache, store  # noqa: E402
from shared.answering.engine import AnswerAction, answer_question  # noqa: E402
from shared.core.config import Settings, get_settings  # noqa: E402
from shared.core.db import Base, create_db_engine, create_session_factory, session_scope  # noqa: E402
from shared.knowledge import KnowledgeBase  # noqa: E402
from shared.knowledge.eval import Query, fold, load_dataset  # noqa: E402
from shared.llm import LLMProvider  # noqa: E402
from shared.questions.models import Question  # noqa: E402

STACKFAQ = EVAL_DIR / "stackfaq"
THRESHOLDS = (0.80, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98, 1.01)
MAX_WRONG_SHARE = 0.005  # of the hits, on the tuning fold
SEED = 7


@dataclass
class Result:
    threshold: float
    questions: int = 0
    answered: int = 0  # not handed off
    hits: int = 0
    wrong_hits: int = 0
    wrong_misses: int = 0  # answers not from the cache citing the wrong entry (for comparison)
    hit_ms: list[float] | None = None
    miss_ms: list[float] | None = None

    def row(self) -> str:
        hit_rate = self.hits / self.answered if self.answered else 0.0
        wrong = self.wrong_hits / self.hits if self.hits else 0.0
        label = "exact text only" if self.threshold > 1 else f"{self.threshold:.2f}"
        return (
            f"| {label} | {self.answered} | {self.hits} ({hit_rate:.1%}) | "
            f"{self.wrong_hits} ({wrong:.2%}) | {self.wrong_misses} |"
        )


def run(
    base: KnowledgeBase,
    queries: list[Query],
    *,
    threshold: float,
    provider: LLMProvider,
    settings: Settings,
) -> Result:
    """Answer `queries` in a shuffled order with a fresh cache at `threshold`."""
    order = list(queries)
    random.Random(SEED).shuffle(order)
    result = Result(threshold=threshold, hit_ms=[], miss_ms=[])
    with tempfile.TemporaryDirectory() as directory:
        engine = create_db_engine(f"sqlite:///{directory}/cache.db")
        Base.metadata.create_all(engine)
        sessions = create_session_factory(engine)
        cache = AnswerCache(sessions, similarity=threshold)

        for query in order:
            gold = base.entries[query.faq_id].id
            started = time.perf_counter()
            answer = answer_question(
                question=query.text,
                context_method="hybrid",
                knowledge=base,
                provider=provider,
                settings=settings,
                cache=cache.over(base),
            )
            elapsed = (time.perf_counter() - started) * 1000
            result.questions += 1
            if answer.action is not AnswerAction.ANSWER:
                continue
            result.answered += 1
            cited = answer.sources[0]["id"] if answer.sources else None
            if answer.cached_from is not None:
                result.hits += 1
                result.wrong_hits += cited != gold
                result.hit_ms.append(elapsed)
                continue
            result.wrong_misses += cited != gold
            result.miss_ms.append(elapsed)
            with session_scope(sessions) as session:
                question = Question(question=query.text)
                session.add(question)
                session.flush()
                store(
                    session=session,
                    question_id=question.id,
                    answer=answer,
                    max_entries=settings.answer_cache_max_entries,
                )
        engine.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fold", choices=["A", "B", "all"], default="B")
    parser.add_argument("--calibrate", action="store_true", help="try thresholds on fold A")
    parser.add_argument("--provider", choices=["extractive", "embedded"], default="extractive")
    args = parser.parse_args()
    if not (STACKFAQ / "queries.jsonl").exists():
        print(f"StackFAQ is not at {STACKFAQ}: nothing to measure", file=sys.stderr)
        return 2
    settings = get_settings()
    base, queries = load_dataset(STACKFAQ)
    provider = provider_for(args.provider, settings)
    header = "| threshold | answered | hits (of answered) | wrong hits (of hits) | wrong misses |"
    divider = "|---|---|---|---|---|"
    if args.calibrate:
        tune = fold(queries, "A")
        print(f"\nfold A ({len(tune)} questions), provider {args.provider}\n\n{header}\n{divider}")
        chosen = None
        for threshold in THRESHOLDS:
            result = run(base, tune, threshold=threshold, provider=provider, settings=settings)
            print(result.row(), flush=True)
            if chosen is None and result.wrong_hits <= MAX_WRONG_SHARE * result.hits:
                chosen = threshold
        print(f"\nlowest threshold with wrong hits <= {MAX_WRONG_SHARE:.1%} of hits: {chosen}")
    threshold = settings.answer_cache_similarity
    questions = fold(queries, args.fold)
    result = run(base, questions, threshold=threshold, provider=provider, settings=settings)
    print(
        f"\nfold {args.fold} ({len(questions)} questions), provider {args.provider}, "
        f"ANSWER_CACHE_SIMILARITY={threshold}\n\n{header}\n{divider}\n{result.row()}"
    )
    if result.hit_ms and result.miss_ms:
        hit, miss = statistics.median(result.hit_ms), statistics.median(result.miss_ms)
        print(
            f"\nlatency p50: hit {hit:.1f} ms, miss ({args.provider}) {miss:.1f} ms "
            f"-> a hit costs {hit / miss:.1%} of a miss"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
