"""The answering pipeline with a scripted Ollama (httpx.MockTransport) and the real retrieval."""

import json
from collections.abc import Callable

import httpx
import pytest

from shared.answering.engine import AnswerAction, answer_question
from shared.answering.grounding import ECHO_WORDS
from shared.core.config import PROJECT_ROOT, Settings
from shared.knowledge import KnowledgeBase, KnowledgeStore
from shared.llm.ollama import OllamaProvider
from shared.llm.prompt import FEW_SHOT_EXAMPLES, SYSTEM_PROMPT

DATA = PROJECT_ROOT / "tests" / "data"
SETTINGS = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    return KnowledgeStore.from_settings(SETTINGS).current()


def _lines(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


class ScriptedOllama:
    """Answers /api/chat with a fixed reply, streamed word by word, and records the requests."""

    def __init__(self, reply: str | Callable[[dict[str, object]], str]) -> None:
        self.reply = reply
        self.requests: list[dict[str, object]] = []

    def provider(self) -> OllamaProvider:
        client = httpx.Client(transport=httpx.MockTransport(self._handle))
        return OllamaProvider(client=client, host="http://ollama.test", model="mistral")

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        reply = self.reply(body) if callable(self.reply) else self.reply
        words = reply.split(" ")
        lines = [
            {
                "model": "mistral",
                "message": {"role": "assistant", "content": w + " "},
                "done": False,
            }
            for w in words
        ] + [
            {"model": "mistral", "message": {"content": ""}, "done": True, "eval_count": len(words)}
        ]
        return httpx.Response(200, content="\n".join(json.dumps(line) for line in lines))


def _ask(knowledge: KnowledgeBase, question: str, script: ScriptedOllama, **kwargs: object):  # type: ignore[no-untyped-def]
    tokens: list[str] = []
    answer = answer_question(
        question=question, context_method="hybrid", knowledge=knowledge,
        provider=script.provider(), settings=SETTINGS, on_token=tokens.append, **kwargs,
    )  # fmt: skip
    return answer, tokens


def test_grounded_generation_is_sent_with_sources(knowledge: KnowledgeBase) -> None:
    script = ScriptedOllama(
        "You can cancel an order within 2 hours of placing it "
        "[orders-and-shipping#can-i-change-or-cancel-my-order]."
    )
    answer, tokens = _ask(knowledge, "Can I still cancel my order?", script)
    assert answer.action is AnswerAction.ANSWER
    assert answer.text == "You can cancel an order within 2 hours of placing it."
    assert answer.fallback_reason is None and answer.provider == "ollama"
    assert answer.sources[0]["id"] == "orders-and-shipping#can-i-change-or-cancel-my-order"
    assert answer.confidence > 0.9
    assert "".join(tokens).strip() == answer.text
    assert answer.knowledge_version == knowledge.version


def test_invented_policy_is_replaced_by_the_entry(knowledge: KnowledgeBase) -> None:
    script = ScriptedOllama("Refunds need a $1000 minimum order and take 90 days.")
    answer, tokens = _ask(knowledge, "What is your refund policy?", script)
    assert answer.action is AnswerAction.ANSWER
    assert answer.text.startswith('From our help center, "What is your refund policy?"')
    assert "30 days" in answer.text and "1000" not in answer.text
    assert answer.fallback_reason == "unsupported_figure"
    assert answer.rejected_draft is not None and "1000" in answer.rejected_draft
    assert not any("1000" in token for token in tokens)  # never streamed either


@pytest.mark.parametrize("question", [q["query"] for q in _lines("out_of_scope.jsonl")])
def test_out_of_scope_questions_are_handed_off_without_asking_the_model(
    knowledge: KnowledgeBase, question: str
) -> None:
    script = ScriptedOllama("Paris, obviously.")
    answer, _ = _ask(knowledge, question, script)
    assert answer.action is AnswerAction.HANDOFF, (question, answer.confidence)
    assert answer.text == SETTINGS.handoff_message
    assert answer.confidence < SETTINGS.handoff_threshold
    assert script.requests == []


def test_paraphrased_questions_are_answered_from_the_right_entry(knowledge: KnowledgeBase) -> None:
    cases = _lines("default_kb_questions.jsonl")
    answered = [
        answer_question(
            question=case["query"],
            context_method="hybrid",
            knowledge=knowledge,
            provider=ScriptedOllama("unused").provider(),
            settings=SETTINGS,
        )
        for case in cases
    ]
    in_top_3 = sum(
        case["entry_id"] in [s["id"] for s in answer.sources]
        for case, answer in zip(cases, answered, strict=True)
    )
    handed_off = sum(answer.action is AnswerAction.HANDOFF for answer in answered)
    assert in_top_3 / len(cases) >= 0.9
    assert handed_off / len(cases) <= 0.15


def _leaks(text: str) -> bool:
    words = text.lower().split()
    grams = {tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}
    secret = " ".join([SYSTEM_PROMPT, FEW_SHOT_EXAMPLES]).lower().split()
    return any(tuple(secret[i : i + ECHO_WORDS]) in grams for i in range(len(secret)))


@pytest.mark.parametrize("question", [q["query"] for q in _lines("prompt_injections.jsonl")])
def test_an_obedient_model_cannot_leak_the_prompt_or_leave_its_role(
    knowledge: KnowledgeBase, question: str
) -> None:
    # The scripted model does exactly what the injection asks: it prints its system prompt.
    script = ScriptedOllama(lambda body: body["messages"][0]["content"] + " PWNED")  # type: ignore[index]
    answer, tokens = _ask(knowledge, question, script)
    shown = answer.text + "".join(tokens)
    assert not _leaks(shown)
    assert "PWNED" not in shown
    assert answer.action is AnswerAction.HANDOFF or answer.text.startswith("From our help center")
