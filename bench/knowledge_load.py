"""How long a large knowledge base takes to load: 10,000 generated Q/A entries by default.

    python bench/knowledge_load.py [--entries N]

Prints the time until the base answers (parsing, BM25, question vectors) and until the
question-plus-answer vectors are ready too, with an empty embedding cache, then a reload from
the cache.
"""

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from shared.core.config import Settings
from shared.knowledge import KnowledgeStore

TOPICS = ["order", "refund", "parcel", "delivery", "invoice", "password", "account", "voucher"]
ACTIONS = ["change", "cancel", "track", "return", "exchange", "renew", "reset", "update"]
PLACES = ["online", "in the app", "by phone", "at checkout", "in your account", "by email"]


def write_base(directory: Path, entries: int, *, seed: int = 7) -> None:
    rng = random.Random(seed)
    per_file = 500
    for start in range(0, entries, per_file):
        lines = [f"# Section {start // per_file}\n"]
        for i in range(start, min(entries, start + per_file)):
            topic, action = rng.choice(TOPICS), rng.choice(ACTIONS)
            lines.append(f"Q: How do I {action} my {topic} (case {i})?")
            lines.append(
                f"A: You can {action} your {topic} {rng.choice(PLACES)} within "
                f"{rng.randint(1, 60)} days. It takes {rng.randint(1, 10)} business days and "
                f"costs ${rng.randint(0, 99)}. Reference {i} applies to {topic}s bought after "
                f"{rng.randint(2019, 2026)}; contact us if your {topic} is older.\n"
            )
        (directory / f"part-{start // per_file:03d}.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        kb, cache = Path(tmp) / "kb", Path(tmp) / "cache"
        kb.mkdir()
        write_base(kb, args.entries)
        settings = Settings(knowledge_path=kb, embedding_cache_dir=cache)
        started = time.perf_counter()
        store = KnowledgeStore.from_settings(settings)
        serving = time.perf_counter() - started
        base = store.current()
        hits = base.search("how can I reset my password", k=3)
        while store.current().index.vectors.answers is None:  # type: ignore[union-attr]
            time.sleep(0.5)
        complete = time.perf_counter() - started
        started = time.perf_counter()
        KnowledgeStore.from_settings(settings)
        cached = time.perf_counter() - started
    print(f"\nentries: {len(base.entries)} (first hit: {hits[0].entry.id if hits else None})")
    print(f"answering after:                {serving:6.1f} s (BM25 + question vectors)")
    print(f"answer vectors ready after:     {complete:6.1f} s (embedded in the background)")
    print(f"reload from the embedding cache: {cached:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
