"""Fit the confidence curve for the knowledge base the service answers from.

    support-assistant calibrate [--questions FILE.jsonl ...] [--split tune] [--paraphrases N]
                                [--outcomes] [--write]

Answerable examples: labelled questions (`{"query", "entry_id"}` lines) and paraphrases of each
entry's question written by the configured model (`--paraphrases N`). Out-of-scope examples:
lines without an `entry_id`, and a built-in set of general questions no shop's base answers
(shared/knowledge/out_of_scope.jsonl). `--outcomes` adds what real conversations showed (the
database at DATABASE_URL; see shared/learning/outcomes.py): answers rated up and handoffs the base
could have answered after all count as answerable; answers rated down and handoffs a person
answered with new knowledge as out of scope. The curve is
fitted with both classes weighted equally; the command prints the curve before and after, how
many of the examples each side of the handoff threshold would move, and for a few thresholds the
share of answerable examples handed off against the share of out-of-scope ones answered (what a
support team trades when it sets HANDOFF_THRESHOLD). `--write` keeps the curve in
the knowledge folder (calibration.json), where every process picks it up.
"""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.core.config import Settings, get_settings
from shared.core.db import create_db_engine, create_session_factory, session_scope
from shared.knowledge import KnowledgeBase, KnowledgeStore
from shared.knowledge.calibration import (
    calibration_path,
    describe,
    effective_calibration,
    fit_curve,
    save_calibration,
    top_cosines,
    trade_off,
)
from shared.learning.outcomes import Outcomes, read_outcomes
from shared.llm import Passage, create_http_client, create_provider

BUILT_IN_OUT_OF_SCOPE = Path(__file__).parents[1] / "knowledge" / "out_of_scope.jsonl"


@dataclass(frozen=True)
class Examples:
    answerable: list[str]
    out_of_scope: list[str]


def read_examples(files: list[Path], *, entry_ids: set[str], split: str | None = None) -> Examples:
    """Labelled questions: with the `entry_id` of an entry of this base answerable, without one
    out of scope (lines about another base's entries are left out)."""
    answerable: list[str] = []
    out_of_scope: list[str] = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            if split and case.get("split", split) != split:
                continue
            if "entry_id" not in case:
                out_of_scope.append(case["query"])
            elif case["entry_id"] in entry_ids:
                answerable.append(case["query"])
    return Examples(answerable, out_of_scope)


def paraphrases(
    base: KnowledgeBase, generate: Callable[[str], str], *, per_entry: int
) -> list[str]:
    """Other wordings of each entry's question, written by a model (duplicates dropped)."""
    found: list[str] = []
    for entry in base.entries:
        seen = {question.lower() for question in entry.questions}
        for _ in range(per_entry):
            text = " ".join(generate(entry.question).split()).strip()
            if 3 <= len(text) <= 200 and text.lower() not in seen and text.endswith("?"):
                seen.add(text.lower())
                found.append(text)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="support-assistant calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--questions", type=Path, nargs="*", default=[], help="JSONL files of labelled questions"
    )
    parser.add_argument("--split", help="use only the lines of this split (e.g. tune)")
    parser.add_argument(
        "--paraphrases",
        type=int,
        default=0,
        help="paraphrases per entry written by the configured model",
    )
    parser.add_argument(
        "--outcomes",
        action="store_true",
        help="add the outcomes of real conversations (ratings, resolved handoffs)",
    )
    parser.add_argument("--write", action="store_true", help="keep the fitted curve")
    args = parser.parse_args(argv)
    settings = get_settings()

    base = KnowledgeStore.from_settings(settings).current()
    examples = read_examples(
        [*args.questions, BUILT_IN_OUT_OF_SCOPE],
        entry_ids={entry.id for entry in base.entries},
        split=args.split,
    )
    answerable, out_of_scope = list(examples.answerable), list(examples.out_of_scope)
    sources = [f"{len(answerable)} labelled answerable"]
    if args.paraphrases:
        written = paraphrases(base, _paraphraser(settings), per_entry=args.paraphrases)
        answerable += written
        sources.append(f"{len(written)} model paraphrases")
    inside, outside = top_cosines(base, answerable), top_cosines(base, out_of_scope)
    sources.append(f"{len(out_of_scope)} out of scope")
    if args.outcomes:
        outcomes = _outcomes(settings, base)
        inside = np.concatenate([inside, outcomes.answerable])
        outside = np.concatenate([outside, outcomes.out_of_scope])
        told = ", ".join(f"{n} {kind}" for kind, n in sorted(outcomes.counts.items()))
        sources.append(f"outcomes: {told or 'none yet'}")
        if outcomes.skipped:
            sources.append(f"{outcomes.skipped} outcomes without a usable vector left out")
    if not len(inside):
        print(
            "no answerable examples: give --questions, --paraphrases or --outcomes",
            file=sys.stderr,
        )
        return 2
    before = effective_calibration(base, settings)
    after = fit_curve(inside, outside, fitted_on=f"knowledge {base.version}: " + ", ".join(sources))
    print(f"knowledge base {base.version} ({len(base.entries)} entries): {', '.join(sources)}")
    for line in describe(
        before, after, inside=inside, outside=outside, threshold=settings.handoff_threshold
    ):
        print(line)
    print(f"slope {after.slope}, intercept {after.intercept}")
    print(f"with this curve (HANDOFF_THRESHOLD is {settings.handoff_threshold}):")
    for line in trade_off(after, inside=inside, outside=outside):
        print(line)
    if args.write:
        path = calibration_path(settings.knowledge_path)
        save_calibration(path, after)
        print(f"written to {path}; every process picks it up at its next check")
    return 0


def _outcomes(settings: Settings, base: KnowledgeBase) -> Outcomes:
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            return read_outcomes(session=session, base=base)
    finally:
        engine.dispose()


def _paraphraser(settings: Settings) -> Callable[[str], str]:
    """A function that asks the configured model for another wording of a question."""
    provider = create_provider(settings, client=create_http_client(settings))
    if not provider.generative:
        raise SystemExit(f"--paraphrases needs a model; {provider.name} does not write")
    instruction = Passage(
        id="paraphrase",
        title="Rewrite the question",
        text="Write the customer's question again in other words, as another customer would "
        "ask it. Reply with the question only.",
    )

    def generate(question: str) -> str:
        return provider.generate(question=question, passages=[instruction]).text

    return generate


if __name__ == "__main__":
    sys.exit(main())
