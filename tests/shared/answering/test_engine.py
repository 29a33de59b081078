"""The answering pipeline with a scripted Ollama (httpx.MockTransport) and the real retrieval."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from shared.answering.abroad import foreign_places
from shared.answering.engine import AnswerAction, AnswerOrigin, answer_question
from shared.answering.selection import SECOND_READING_MARGIN
from shared.answering.verification import ECHO_WORDS
from shared.core.config import PROJECT_ROOT, ProviderName, Settings
from shared.knowledge import Entry, KnowledgeBase
from shared.llm import ProviderChoice, Turn, create_http_client, create_provider
from shared.llm.prompt import FEW_SHOT_EXAMPLES, SYSTEM_PROMPT
from tests.support.ollama import ScriptedOllama

DATA = PROJECT_ROOT / "tests" / "data"
OUT_OF_SCOPE = PROJECT_ROOT / "shared" / "knowledge" / "out_of_scope.jsonl"
SETTINGS = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]


def _lines(name: str | Path) -> list[dict[str, str]]:
    path = DATA / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


EXTRACTIVE = create_provider(
    SETTINGS,
    client=create_http_client(SETTINGS),
    choice=ProviderChoice(ProviderName.EXTRACTIVE, ""),
)


def _ask(  # type: ignore[no-untyped-def]
    knowledge: KnowledgeBase,
    question: str,
    script: ScriptedOllama | None,  # None: the extractive provider
    settings: Settings = SETTINGS,
    **kwargs: object,
):
    tokens: list[str] = []
    answer = answer_question(
        question=question, context_method="hybrid", knowledge=knowledge,
        provider=script.provider() if script is not None else EXTRACTIVE, settings=settings,
        on_token=tokens.append, **kwargs,
    )  # fmt: skip
    return answer, tokens


def test_a_verified_wording_is_sent_with_sources(knowledge: KnowledgeBase) -> None:
    script = ScriptedOllama(
        "You can cancel an order within 2 hours of placing it "
        "[orders-and-shipping#can-i-change-or-cancel-my-order]."
    )
    answer, tokens = _ask(knowledge, "Can I still cancel my order?", script)
    assert answer.action is AnswerAction.ANSWER and answer.origin is AnswerOrigin.GENERATED
    assert answer.text == "You can cancel an order within 2 hours of placing it."
    assert answer.fallback_reason is None and answer.provider == "ollama"
    assert answer.sources[0]["id"] == "orders-and-shipping#can-i-change-or-cancel-my-order"
    assert answer.confidence > 0.9
    assert "".join(tokens).strip() == answer.text
    assert answer.knowledge_version == knowledge.version
    # The model saw the answering entry's statements, and no other entry.
    prompt = script.requests[0]["messages"][0]["content"]  # type: ignore[index]
    assert "[orders-and-shipping#can-i-change-or-cancel-my-order]" in prompt
    assert prompt.count("]\nQ: ") == 1 and "within 2 hours of placing it" in prompt


def test_an_invented_policy_is_replaced_by_the_entrys_statements(
    knowledge: KnowledgeBase,
) -> None:
    script = ScriptedOllama("Refunds need a $1000 minimum order and take 90 days.")
    answer, tokens = _ask(knowledge, "What is your refund policy?", script)
    assert answer.action is AnswerAction.ANSWER and answer.origin is AnswerOrigin.EXTRACTED
    assert "30 days" in answer.text and "1000" not in answer.text
    policy = next(e for e in knowledge.entries if e.id.endswith("#what-is-your-refund-policy"))
    assert all(line in policy.answer for line in answer.text.splitlines())  # verbatim statements
    assert answer.fallback_reason == "unsupported_figure"
    assert answer.rejected_draft is not None and "1000" in answer.rejected_draft
    assert not any("1000" in token for token in tokens)  # never streamed either


# The three kinds of wrong answer a 270M model gave, each from a correctly retrieved entry.
WRONG_ANSWERS = [
    # a figure of the entry, bound to the wrong thing (next-day is $24.99, express $12.99)
    ("What does next-day delivery cost?", "Next-day delivery is $12.99.", "misbound_figure",
     "$24.99"),
    # a "yes" the entry contradicts (one discount code per order)
    ("Can I use two discount codes on one order?",
     "Yes, you can use two discount codes on one order.", "question_condition", "one discount"),
    # a domestic delivery time given for a foreign place
    ("How long does delivery to Germany take?", "Delivery takes 3-5 business days.",
     "question_place", "7-14"),
    # ... or for a city abroad, which the base names no more than its country
    ("how long does shipping to Toronto take", "Delivery takes 3-5 business days.",
     "question_place", "7-14"),
]  # fmt: skip


def test_a_city_in_the_shops_own_country_is_answered_as_at_home(
    knowledge: KnowledgeBase,
) -> None:
    answer, _ = _ask(knowledge, "how long does shipping to Chicago take",
                     ScriptedOllama("Standard delivery takes 3-5 business days."))  # fmt: skip
    assert answer.sources[0]["id"] == "orders-and-shipping#how-long-does-shipping-take"
    assert "3-5" in answer.text
    # With the shop's country unknown, no city is taken for abroad: Berlin gets the statements
    # (never the model's words for a place the entry does not name), not the international ones.
    unknown = SETTINGS.model_copy(update={"shop_country": ""})
    berlin, _ = _ask(knowledge, "How long does delivery to Berlin take?", ScriptedOllama("unused"),
                     settings=unknown)  # fmt: skip
    assert berlin.sources[0]["id"] == "orders-and-shipping#how-long-does-shipping-take"
    assert berlin.origin is AnswerOrigin.EXTRACTED and berlin.fallback_reason == "question_place"


@pytest.mark.parametrize(("question", "draft", "reason", "fact"), WRONG_ANSWERS)
def test_a_wrong_answer_never_reaches_the_customer(
    knowledge: KnowledgeBase, question: str, draft: str, reason: str, fact: str
) -> None:
    answer, tokens = _ask(knowledge, question, ScriptedOllama(draft))
    assert answer.origin is AnswerOrigin.EXTRACTED and answer.fallback_reason == reason
    assert fact in answer.text  # the entry's own statement that answers it
    assert draft not in answer.text and draft not in "".join(tokens)
    assert "3-5" not in answer.text  # no domestic time for Germany either


def test_a_yes_the_entry_states_for_this_question_is_sent(knowledge: KnowledgeBase) -> None:
    draft = "Yes, gift cards can be combined with a discount code."
    answer, _ = _ask(knowledge, "Can I combine a gift card with a discount code?",
                     ScriptedOllama(draft))  # fmt: skip
    assert answer.origin is AnswerOrigin.GENERATED and answer.text == draft


def test_a_question_two_entries_answer_almost_equally_gets_both(
    knowledge: KnowledgeBase,
) -> None:
    # A refund for a defective item: the refund policy or what to do with a damaged item? No
    # guess between them.
    script = ScriptedOllama("Yes, within 30 days.")
    answer, tokens = _ask(knowledge, "Can I get a refund for a defective item?", script)
    assert answer.action is AnswerAction.ANSWER and answer.origin is AnswerOrigin.EXTRACTED
    assert answer.fallback_reason == "second_reading" and not script.requests
    first, second = answer.text.split("\n\n")
    cited = [knowledge.entry(source["id"]) for source in answer.sources[:2]]
    for part, entry in zip((first, second), cited, strict=True):
        assert entry is not None
        question, *statements = part.splitlines()
        assert question == entry.question
        assert statements and all(line in entry.answer for line in statements)
    assert {entry.id for entry in cited if entry} >= {
        "returns-and-refunds#my-item-arrived-damaged-or-defective-what-should-i-do",
        "returns-and-refunds#what-is-your-refund-policy",
    }
    assert "within 7 days" in answer.text and "".join(tokens) == answer.text


def test_a_question_about_another_country_gets_no_domestic_second_reading(
    knowledge: KnowledgeBase,
) -> None:
    # The delivery-times entry scores as high as the international one, but speaks of home.
    answer, _ = _ask(knowledge, "how long does shipping to france take",
                     ScriptedOllama("unused"))  # fmt: skip
    assert answer.sources[0]["id"] == "orders-and-shipping#do-you-ship-internationally"
    assert answer.fallback_reason != "second_reading" and "\n\n" not in answer.text
    assert "3-5" not in answer.text
    # Nor for a follow-up to one, made standalone without a model: the domestic prices stay out.
    history = [
        Turn(role="customer", text="Do you ship internationally?"),
        Turn(role="assistant", text="Yes, we ship to over 40 countries."),
    ]
    answer, _ = _ask(knowledge, "How much does it cost?", None, history=history)
    assert answer.sources[0]["id"] == "orders-and-shipping#do-you-ship-internationally"
    assert "\n\n" not in answer.text and "$4.99" not in answer.text


def test_an_entry_that_names_nothing_asked_for_is_no_answer_even_when_confident(
    knowledge: KnowledgeBase,
) -> None:
    # The best entry ("We sell online only.") passes the confidence curve.
    answer, _ = _ask(knowledge, "Do you sell car insurance?", None)
    assert answer.confidence >= SETTINGS.handoff_threshold
    assert answer.action is AnswerAction.HANDOFF
    assert answer.fallback_reason == "unmentioned_subject"


@pytest.mark.parametrize(
    ("message", "reply"),
    [("thanks!", SETTINGS.thanks_message), ("hi there", SETTINGS.greeting_message)],
)
def test_a_message_that_asks_nothing_is_answered_in_kind(
    knowledge: KnowledgeBase, message: str, reply: str
) -> None:
    # Which messages are courtesy: tests/shared/answering/test_courtesy.py.
    history = [Turn(role="customer", text="Do you ship internationally?")]
    answer, tokens = _ask(knowledge, message, None, history=history)
    assert answer.action is AnswerAction.ANSWER and answer.origin is AnswerOrigin.COURTESY
    assert answer.text == reply and tokens == [reply]
    assert not answer.sources and answer.handoff_reason is None


def test_a_new_question_in_a_conversation_gets_the_statements_it_asks_for(
    knowledge: KnowledgeBase,
) -> None:
    # The earlier turn nudges which entry is found, not which of its statements answer.
    first, _ = _ask(knowledge, "What's your phone number?", None)
    history = [Turn(role="customer", text="Do you ship internationally?")]
    later, _ = _ask(knowledge, "What's your phone number?", None, history=history)
    assert "555 0199" in first.text
    assert later.text == first.text


def test_a_question_about_home_gets_no_second_reading_about_abroad(
    knowledge: KnowledgeBase,
) -> None:
    # The international entry scores as high as the delivery times (the conversation spoke of
    # Canada), but Texas is at home for the default base's shop: no international times.
    history = [
        Turn(role="customer", text="Do you ship to Canada?"),
        Turn(role="assistant", text="Yes, we ship to more than 40 countries."),
    ]
    answer, _ = _ask(knowledge, "I meant to Texas, how long does it take?", None, history=history)
    assert answer.sources[0]["id"] == "orders-and-shipping#how-long-does-shipping-take"
    assert answer.sources[1]["id"] == "orders-and-shipping#do-you-ship-internationally"
    assert "\n\n" not in answer.text and "7-14" not in answer.text and "3-5" in answer.text


def test_a_runner_up_the_question_would_be_handed_off_from_is_no_second_reading(
    knowledge: KnowledgeBase,
) -> None:
    # Close to the best in fused score (shared words: "boxes"), far below the handoff threshold
    # alone.
    question = "My order is coming in two boxes, am I going to be billed twice?"
    hits = knowledge.search(question, k=2)
    assert hits[1].score >= hits[0].score - SECOND_READING_MARGIN
    assert knowledge.calibration.confidence(hits[1].dense or 0.0) < SETTINGS.handoff_threshold
    answer, _ = _ask(knowledge, question, ScriptedOllama("unused"))
    assert "\n\n" not in answer.text and answer.fallback_reason != "second_reading"


def test_a_place_the_base_speaks_of_is_answered_from_what_it_says_of_it(
    knowledge: KnowledgeBase,
) -> None:
    entries = [
        Entry("shop#times", "How long does shipping take?",
              "Standard shipping takes 3-5 business days.", "shop.md"),
        Entry("shop#canada", "Do you deliver to Canada?",
              "Yes. Orders to Canada arrive in 6-9 business days.", "shop.md"),
    ]  # fmt: skip
    base = replace(
        KnowledgeBase.from_entries(
            entries, embedder=knowledge.index.embedder,
            dense_weight=SETTINGS.retrieval_dense_weight,
            unit_weight=SETTINGS.retrieval_unit_weight,
        ),
        calibration=knowledge.calibration,
    )  # fmt: skip
    for question in ("How long does shipping to Canada take?", "how long to ship to Toronto?"):
        # The generic entry scores higher on "how long does shipping take" alone.
        assert base.search(question, k=1)[0].entry.id == "shop#times"
        answer, _ = _ask(base, question, ScriptedOllama("unused"))
        assert answer.sources[0]["id"] == "shop#canada", question
        assert "6-9" in answer.text and "3-5" not in answer.text  # no second reading either


def test_places_are_named_by_whole_words_accents_aside(knowledge: KnowledgeBase) -> None:
    entries = [
        Entry("shop#women", "Do you sell clothes for women?",
              "Yes, a woman's range in every size, manufacturing in our own workshops.", "shop.md"),
        Entry("shop#montreal", "Do you deliver to Montreal?", "Yes, in 6-9 days.", "shop.md"),
    ]  # fmt: skip
    base = KnowledgeBase.from_entries(entries)
    # "woman" names no Oman, "manufacturing" no Turin: both are abroad for this base.
    assert not base.names_place("Oman") and not base.names_place("Turin")
    assert set(foreign_places("shipping to Turin or Oman?", base, "US")) == {"Turin", "Oman"}
    assert base.names_place("Montréal")  # the base writes "Montreal"
    assert foreign_places("shipping to Montréal?", base, "US") == []


def test_out_of_scope_questions_are_handed_off_without_asking_the_model(
    knowledge: KnowledgeBase,
) -> None:
    # The built-in general questions the default base's curve was fitted against.
    script = ScriptedOllama("Paris, obviously.")
    answers = [_ask(knowledge, case["query"], script)[0] for case in _lines(OUT_OF_SCOPE)]
    handed_off = [a for a in answers if a.action is AnswerAction.HANDOFF]
    assert len(handed_off) >= 0.95 * len(answers)
    assert all(a.text == SETTINGS.handoff_message for a in handed_off)
    # The model is asked for the rest, but for a question naming a place the entry does not
    # ("a flight to Madrid"): it gets the statements without a draft.
    placed = [a for a in answers if a.fallback_reason == "question_place"]
    assert all(a.rejected_draft is None for a in placed)
    assert len(script.requests) == len(answers) - len(handed_off) - len(placed)


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
    assert answer.origin in (AnswerOrigin.HANDOFF, AnswerOrigin.EXTRACTED)
