"""Are follow-ups understood? R@1 of a conversation's last, elliptical message, two ways.

    python bench/followups.py [--split test|tune|fresh|all]

bench/data/followups.jsonl holds conversations written apart from the engine over StackFAQ and
over knowledge/, each ending in an elliptical follow-up ("And in GitHub markdown?", "How long does
it take?"), labelled with the entry that answers it, and split once into a tune and a test half
(the weights of shared/answering/context.py were tuned on `tune`); `fresh` holds 24 more over
knowledge/, written later by someone who read only the base; the last 48 lines, 48 more over
knowledge/ written the same way, were split at random (seed 2026) into 24 tune and 24 test
before any was looked at. For each, the right entry
first (R@1) retrieving with the last message alone, and with the message made standalone
(`shared.answering.engine.retrieve`, the default stack: no model rewrite). It also prints
single-turn R@1 on StackFAQ's fold B: understanding follow-ups must not cost single questions.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.answering.engine import ContextMethod, retrieve  # noqa: E402
from shared.core.config import Settings  # noqa: E402
from shared.knowledge import KnowledgeBase, KnowledgeStore, RetrievalMethod  # noqa: E402
from shared.knowledge.eval import evaluate, fold, load_dataset  # noqa: E402
from shared.llm import Turn  # noqa: E402

EVAL_DIR = Path(os.environ.get("SUPPORT_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="test", choices=["test", "tune", "fresh", "all"])
    args = parser.parse_args()
    stackfaq = EVAL_DIR / "stackfaq"
    if not stackfaq.exists():
        print(f"no evaluation data at {EVAL_DIR} (set SUPPORT_EVAL_DIR)", file=sys.stderr)
        return 2
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    faq, queries = load_dataset(stackfaq)
    bases: dict[str, KnowledgeBase] = {
        "stackfaq": faq,
        "default": KnowledgeStore.from_settings(settings).current(),
    }
    lines = (ROOT / "bench" / "data" / "followups.jsonl").read_text().splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    cases = [c for c in cases if args.split == "all" or c["split"] == args.split]

    print(f"follow-ups ({args.split} half): R@1 of the last message")
    print("| base | conversations | last message alone | made standalone |\n|---|---|---|---|")
    totals = [0, 0, 0]
    for name, base in bases.items():
        mine = [c for c in cases if c["kb"] == name]
        alone = standalone = 0
        for case in mine:
            gold = case["entries"][-1]
            want = base.entries[gold].id if name == "stackfaq" else gold
            *earlier, last = case["turns"]
            hits = base.search(last, k=1)
            alone += bool(hits) and hits[0].entry.id == want
            history = [Turn("customer", text) for text in earlier]
            found = retrieve(
                message=last, history=history, knowledge=base, method=ContextMethod.HYBRID, k=3,
                home_country=settings.shop_country,
            )  # fmt: skip
            standalone += bool(found.hits) and found.hits[0].entry.id == want
        n = len(mine)
        if not n:
            continue
        totals = [totals[0] + n, totals[1] + alone, totals[2] + standalone]
        print(f"| {name} | {n} | {alone / n:.3f} | {standalone / n:.3f} |")
    n, alone, standalone = totals
    print(f"| **all** | {n} | {alone / n:.3f} | **{standalone / n:.3f}** |")

    single = evaluate(faq, fold(queries, "B"), RetrievalMethod.HYBRID)
    print(
        f"\nsingle questions, StackFAQ fold B ({len(fold(queries, 'B'))} queries): "
        f"R@1 {single.recall_at_1:.3f}, R@3 {single.recall_at_3:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
