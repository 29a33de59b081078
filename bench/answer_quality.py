"""Do answers carry the right fact, and never an invented one? Over the original service's
ten-entry knowledge base, with paraphrased questions (bench/data/original_kb_paraphrases.jsonl).

    python bench/answer_quality.py [--provider embedded|ollama|openai|extractive] [--kb FILE]

For each question it prints what was sent, then the figures: right fact (one of the expected
strings is in the answer), invented (the sent text states something no retrieved entry supports),
and how often the model's own draft was sent, replaced by the entry (grounding fallback), or handed
off. `--raw` also scores the model's unchecked drafts, to show what the checks stop.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from shared.answering.engine import AnswerAction, answer_question
from shared.answering.grounding import Grounding
from shared.core.config import ProviderName, Settings
from shared.knowledge import KnowledgeStore
from shared.llm import create_http_client, create_provider

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KB = ROOT.parent / "shared" / "eval" / "original-kb" / "knowledge_base.md"
QUESTIONS = ROOT / "bench" / "data" / "original_kb_paraphrases.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--provider", default="embedded", choices=[p.value for p in ProviderName])
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB)
    parser.add_argument("--raw", action="store_true", help="also score the unchecked drafts")
    args = parser.parse_args()
    if not args.kb.exists():
        print(f"no knowledge base at {args.kb}; pass --kb", file=sys.stderr)
        return 2

    settings = Settings(knowledge_path=args.kb, llm_provider=args.provider)
    knowledge = KnowledgeStore.from_settings(settings).current()
    provider = create_provider(settings, client=create_http_client(settings))
    cases = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]

    right = invented = sent_draft = fallback = handoff = raw_right = raw_invented = 0
    latencies = []
    for case in cases:
        started = time.perf_counter()
        answer = answer_question(
            question=case["query"], context_method="hybrid", knowledge=knowledge,
            provider=provider, settings=settings,
        )  # fmt: skip
        latencies.append((time.perf_counter() - started) * 1000)
        hits = knowledge.search(case["query"], k=settings.retrieval_top_k)
        grounding = Grounding(context=hits, question=case["query"])
        has_fact = any(fact.lower() in answer.text.lower() for fact in case["facts"])
        quoted = answer.text.startswith("From our help center")
        made_up = (
            answer.action is AnswerAction.ANSWER
            and not quoted
            and not grounding.check(answer.text).ok
        )
        right += has_fact
        invented += made_up
        handoff += answer.action is AnswerAction.HANDOFF
        fallback += answer.fallback_reason is not None
        sent_draft += answer.action is AnswerAction.ANSWER and answer.fallback_reason is None
        draft = answer.rejected_draft or (answer.text if not quoted else "")
        if args.raw and provider.generative and answer.action is AnswerAction.ANSWER:
            raw_right += any(fact.lower() in draft.lower() for fact in case["facts"])
            raw_invented += bool(draft) and not grounding.check(draft).ok
        mark = "ok " if has_fact else "MISS"
        print(f"[{mark}] {case['query']}\n       -> {' '.join(answer.text.split())[:160]}")
        if answer.fallback_reason:
            print(f"       (draft replaced: {answer.fallback_reason})")

    n = len(cases)
    print(f"\nprovider={provider.name} model={provider.model} questions={n} kb={args.kb.name}")
    print(f"right fact: {right}/{n} ({right / n:.0%})   invented: {invented}")
    print(f"model draft sent: {sent_draft}   replaced by the entry: {fallback}   "
          f"handed off: {handoff}")  # fmt: skip
    print(f"latency per answer: p50 {statistics.median(latencies):.0f} ms, "
          f"max {max(latencies):.0f} ms")  # fmt: skip
    if args.raw and provider.generative:
        print(f"unchecked drafts: right fact {raw_right}/{n}, ungrounded {raw_invented}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
