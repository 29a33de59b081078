"""Right facts, wrong facts and handoffs, per provider, on questions the engine was not tuned on.

    python bench/answer_quality.py [--provider embedded extractive openai]
                                   [--split test|tune|fresh|all]
                                   [--openai-gguf PATH] [--show]

The question sets (bench/data, written apart from the engine, each split once into a `tune` and a
`test` half; report on `test`; `fresh` holds questions over knowledge/ written later by someone who
read only the base): customer questions over the default knowledge base (knowledge/)
and over the original ten-entry base (../shared/eval/original-kb) with their expected facts,
yes/no traps, out-of-scope questions, and prompt injections (tests/data). Answers come from the
real engine (`shared.answering.engine.answer_question`) with each provider; the grader
(bench/grader.py) is separate code with its own labels and never calls the engine's checks.
`openai` starts `python -m shared.llm.llama_server` (llama_cpp.server) on a GGUF (default: Gemma
3 270M) and answers through it, as a deployment with Ollama's or vLLM's OpenAI-compatible
endpoint would.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.grader import Outcome, grade, leaks  # noqa: E402
from shared.answering.engine import AnswerAction, answer_question  # noqa: E402
from shared.cli.calibrate import BUILT_IN_OUT_OF_SCOPE, read_examples  # noqa: E402
from shared.cli.launcher import free_port  # noqa: E402
from shared.core.config import ProviderName, Settings  # noqa: E402
from shared.knowledge import KnowledgeBase, KnowledgeStore  # noqa: E402
from shared.knowledge.calibration import fit_curve, top_cosines  # noqa: E402
from shared.llm import LLMProvider, ProviderChoice, create_http_client, create_provider  # noqa: E402
from shared.llm.embedded import default_model_path  # noqa: E402
from shared.llm.prompt import instruction_texts  # noqa: E402

DATA = ROOT / "bench" / "data"
EVAL_DIR = Path(os.environ.get("SUPPORT_EVAL_DIR") or ROOT.parent / "shared" / "eval")
BASES = {"default": ROOT / "knowledge", "original": EVAL_DIR / "original-kb" / "knowledge_base.md"}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def question_sets(split: str) -> dict[str, list[dict[str, Any]]]:
    """Set name -> cases; each case names its knowledge base (`kb`)."""
    keep = (lambda case: True) if split == "all" else (lambda case: case["split"] == split)
    sets = {
        "default": [{**c, "kb": "default"} for c in lines(DATA / "answers_default_kb.jsonl")],
        "original": [{**c, "kb": "original"} for c in lines(DATA / "answers_original_kb.jsonl")],
        "yes/no": lines(DATA / "yes_no_traps.jsonl"),
        "out-of-scope": [{**c, "kb": "default"} for c in lines(DATA / "out_of_scope.jsonl")],
    }
    sets = {name: [c for c in cases if keep(c)] for name, cases in sets.items()}
    injections = lines(ROOT / "tests" / "data" / "prompt_injections.jsonl")
    sets["injection"] = [{**c, "kb": "default"} for c in injections]
    return sets


@contextmanager
def llama_server(gguf: Path) -> Iterator[str]:
    """llama-cpp-python's server on loopback (`shared.llm.llama_server`), stopped at the end."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "shared.llm.llama_server",
        "--model",
        str(gguf),
        "--model_alias",
        gguf.stem,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(os.cpu_count() or 2),
    ]
    if "gemma" in gguf.name.lower():
        command += ["--chat_format", "gemma"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def fitted(base: KnowledgeBase) -> KnowledgeBase:
    """The base with its confidence curve fitted on the tune half (as `support-assistant
    calibrate --split tune` does), whatever curve lies beside it."""
    files = [
        DATA / f
        for f in (
            "answers_default_kb.jsonl",
            "answers_original_kb.jsonl",
            "yes_no_traps.jsonl",
            "out_of_scope.jsonl",
        )
    ]
    examples = read_examples(
        [*files, BUILT_IN_OUT_OF_SCOPE], entry_ids={e.id for e in base.entries}, split="tune"
    )
    curve = fit_curve(
        top_cosines(base, examples.answerable),
        top_cosines(base, examples.out_of_scope),
        fitted_on="tune half",
    )
    return replace(base, calibration=curve)


def provider_for(name: str, settings: Settings) -> LLMProvider:
    client = create_http_client(settings)
    model = settings.openai_model if name == "openai" else ""
    return create_provider(
        settings, client=client, choice=ProviderChoice(ProviderName(name), model)
    )


def run(
    provider_name: str, sets: dict[str, list[dict[str, Any]]], settings: Settings, show: bool
) -> dict[str, Any]:
    provider = provider_for(provider_name, settings)
    bases: dict[str, KnowledgeBase] = {}
    texts: dict[str, str] = {}
    for name, path in BASES.items():
        store = KnowledgeStore.from_settings(settings.model_copy(update={"knowledge_path": path}))
        bases[name] = fitted(store.current())
        texts[name] = "\n".join(entry.text for entry in bases[name].entries)
    secrets = instruction_texts()
    report: dict[str, Any] = {"provider": provider.name, "model": provider.model, "sets": {}}
    latencies: list[float] = []
    origins: Counter[str] = Counter()
    shares: list[float] = []  # of the cited entry's answer, in characters, per answer given
    two_entries = 0  # answers given from two entries' statements
    for set_name, cases in sets.items():
        outcomes: Counter[str] = Counter()
        for case in cases:
            started = time.perf_counter()
            answer = answer_question(
                question=case["query"],
                context_method="hybrid",
                knowledge=bases[case["kb"]],
                provider=provider,
                settings=settings,
            )
            latencies.append(time.perf_counter() - started)
            handed_off = answer.action is AnswerAction.HANDOFF
            if set_name == "out-of-scope":
                outcome = "handoff" if handed_off else "answered"
                if show or not handed_off:
                    print(f"  [{outcome:7}] {set_name}: {case['query']}")
                    print(f"            -> {' '.join(answer.text.split())[:200]}")
            elif set_name == "injection":
                leaked = leaks(answer.text, secrets=secrets)
                made_up = grade(
                    {"query": case["query"]},
                    answer=answer.text,
                    handed_off=handed_off,
                    knowledge_text=texts["default"],
                )
                contained = not leaked and made_up.outcome is not Outcome.WRONG
                outcome = "contained" if contained else "escaped"
            else:
                result = grade(
                    case,
                    answer=answer.text,
                    handed_off=handed_off,
                    knowledge_text=texts[case["kb"]],
                )
                outcome = result.outcome.value
                if outcome != Outcome.EXCLUDED:
                    origins[answer.origin.value] += 1
                if not handed_off and answer.sources:
                    cited = bases[case["kb"]].entry(answer.sources[0]["id"])
                    if cited is not None:
                        shares.append(len(answer.text) / max(len(cited.answer), 1))
                    # the statements of two entries, each under its entry's question
                    second = answer.sources[1]["question"] if len(answer.sources) > 1 else None
                    two_entries += second is not None and second in answer.text.splitlines()
                if show or outcome in ("wrong", "missed"):
                    print(f"  [{outcome:7}] {set_name}: {case['query']}")
                    print(f"            -> {' '.join(answer.text.split())[:200]}")
                    if result.reason or show:
                        print(
                            f"            ({result.reason}; origin {answer.origin.value}, "
                            f"{answer.fallback_reason or 'verified'})"
                        )
            outcomes[outcome] += 1
        report["sets"][set_name] = dict(outcomes)
    answerable = Counter[str]()
    for name in ("default", "original", "yes/no"):
        answerable.update(report["sets"].get(name, {}))
    report["answerable"] = dict(answerable)
    report["origins"] = dict(origins)
    report["entry_share"] = statistics.mean(shares) if shares else 0.0
    report["two_entries"] = two_entries
    report["p50_s"] = statistics.median(latencies) if latencies else 0.0
    report["p95_s"] = sorted(latencies)[int(0.95 * (len(latencies) - 1))] if latencies else 0.0
    return report


def print_report(report: dict[str, Any], split: str) -> None:
    print(f"\nprovider={report['provider']} model={report['model']} split={split}")
    print("| set | n | right | wrong | missed | handed off | excluded |")
    print("|---|---|---|---|---|---|---|")
    for name in ("default", "original", "yes/no"):
        c = report["sets"].get(name, {})
        n = sum(c.values())
        print(
            f"| {name} | {n} | {c.get('right', 0)} | {c.get('wrong', 0)} | "
            f"{c.get('missed', 0)} | {c.get('handoff', 0)} | {c.get('excluded', 0)} |"
        )
    a = report["answerable"]
    graded = sum(a.values()) - a.get("excluded", 0)
    origins = report["origins"]
    answered = origins.get("generated", 0) + origins.get("extracted", 0)
    oos = report["sets"].get("out-of-scope", {})
    inj = report["sets"].get("injection", {})
    print(
        f"answerable ({graded}): right {a.get('right', 0) / max(graded, 1):.1%}, "
        f"wrong {a.get('wrong', 0)}, handed off {a.get('handoff', 0) / max(graded, 1):.1%}; "
        f"out-of-scope handed off {oos.get('handoff', 0)}/{sum(oos.values())}; "
        f"injections contained {inj.get('contained', 0)}/{sum(inj.values())}"
    )
    print(
        f"answers in the model's own words: {origins.get('generated', 0)}/{answered}; "
        f"from two entries: {report['two_entries']}/{answered}; "
        f"length of an answer given: {report['entry_share']:.0%} of its entry's on average; "
        f"latency p50 {report['p50_s']:.2f} s, p95 {report['p95_s']:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--provider",
        nargs="+",
        default=["embedded", "extractive"],
        choices=["embedded", "extractive", "openai", "ollama"],
    )
    parser.add_argument("--split", default="test", choices=["test", "tune", "fresh", "all"])
    parser.add_argument("--openai-gguf", type=Path, help="GGUF for llama_cpp.server")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    if not BASES["original"].exists():
        print(f"no evaluation data at {EVAL_DIR} (set SUPPORT_EVAL_DIR)", file=sys.stderr)
        return 2
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    sets = question_sets(args.split)
    for name in args.provider:
        if name == "openai":
            gguf = args.openai_gguf or default_model_path()
            with llama_server(gguf) as base:
                served = settings.model_copy(
                    update={"openai_base_url": base, "openai_model": gguf.stem}
                )
                print_report(run(name, sets, served, args.show), args.split)
        else:
            print_report(run(name, sets, settings, args.show), args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
