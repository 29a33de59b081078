"""Follow-ups made standalone: by the model where it can rewrite, by mixing vectors where not."""

from collections.abc import Sequence

import httpx
import pytest

from shared.answering.context import bare_follow_up, said_of, standalone_question, subject_of
from shared.answering.engine import ContextMethod, Retrieval, retrieve
from shared.knowledge import KnowledgeBase
from shared.llm import LLMProvider, Turn
from shared.llm.extractive import ExtractiveProvider
from shared.llm.ollama import OllamaProvider
from tests.support.ollama import ScriptedOllama

ABROAD = "orders-and-shipping#do-you-ship-internationally"
SHIPPED_ABROAD = [Turn("customer", "Do you ship internationally?")]


def _retrieve(
    knowledge: KnowledgeBase,
    message: str,
    *,
    history: Sequence[Turn] = (),
    method: ContextMethod = ContextMethod.HYBRID,
    provider: LLMProvider | None = None,
) -> Retrieval:
    """The message retrieved as the engine does, for a shop in the United States."""
    return retrieve(
        message=message, history=history, knowledge=knowledge, method=method, k=3,
        provider=provider, home_country="US",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("message", "bare"),
    [
        ("How long does it take?", True),
        ("How much does it cost?", True),
        ("Is that possible?", True),
        ("How long does shipping take?", False),  # names its subject
        ("And to Canada?", False),  # no pronoun: an ellipsis, not a bare follow-up
        ("Can I return it if it is damaged?", False),
        # no pronoun, but nothing that names a subject either
        ("How long till someone gets back to me?", True),
        ("How long do I have to let you know?", True),
        ("How do I reset my password?", False),
        ("Thanks, that helps!", False),  # asks nothing
        ("Ok, how long till someone gets back to me please?", True),
        # asks about nothing said before
        ("What can you do?", False),
        ("Who are you?", False),
        ("How are you?", False),
    ],
)
def test_a_bare_follow_up_names_no_subject_of_its_own(message: str, bare: bool) -> None:
    assert bare_follow_up(message) is bare


def test_a_first_message_is_its_own_question(knowledge: KnowledgeBase) -> None:
    found = standalone_question(message="Can I cancel my order?", history=[], knowledge=knowledge)
    assert found.text == "Can I cancel my order?" and not found.rewritten


def test_a_follow_up_is_retrieved_with_the_turn_before_it(knowledge: KnowledgeBase) -> None:
    alone = knowledge.search("How long does it take?", k=1)
    found = _retrieve(
        knowledge, "How long does it take?", history=SHIPPED_ABROAD, provider=ExtractiveProvider()
    )
    assert alone[0].entry.id != ABROAD  # the message alone means nothing in particular
    assert found.hits[0].entry.id == ABROAD
    # asked of what the turn before named, in place of "it"
    assert found.standalone.text == "How long does ship internationally take?"


def test_a_bare_follow_up_asks_its_own_question_of_the_earlier_subject(
    knowledge: KnowledgeBase,
) -> None:
    # "how long" was the earlier turn's question; "what does it cost" replaces it.
    delivery = "how long does standard delivery usually take?"
    found = _retrieve(knowledge, "ok and what does it cost?", history=[Turn("customer", delivery)])
    assert found.standalone.text == "ok and what does standard delivery cost?"
    assert found.hits[0].entry.id == "orders-and-shipping#how-much-does-shipping-cost"


@pytest.mark.parametrize(
    ("message", "earlier", "said"),
    [
        ("How much?", "Do you ship internationally?", "How much ship internationally?"),
        ("How long does it take?", "Is there a live chat?", "How long does a live chat take?"),
        # the small words that place it stay: "to Toronto" is a place, "Toronto" alone is not
        (
            "How long does it take?",
            "Do you ship to Toronto?",
            "How long does ship to Toronto take?",
        ),
        # the customer's words are put in as they are, never read as a pattern
        (
            "How long does it take?",
            r"Can I return size 10\12?",
            r"How long does return size 10\12 take?",
        ),
        # a name in capitals is not "us"; a contraction goes with its pronoun
        ("Is it free?", "Do you ship to the US?", "Is ship to the US free?"),
        ("Is it free?", "it's for my mum", "Is for mum free?"),
        ("How long does it take?", "How long does it take?", None),  # names nothing
        ("How long does it take?", " ".join(["word"] * 20), None),  # too long to paste in
    ],
)
def test_what_a_bare_follow_up_is_asked_of(message: str, earlier: str, said: str | None) -> None:
    assert said_of(message, earlier) == said


def test_a_message_that_stands_alone_is_searched_with_its_own_words(
    knowledge: KnowledgeBase,
) -> None:
    # The earlier turn nudges its vector, but its words are not searched for.
    found = _retrieve(knowledge, "Can I change my delivery address?", history=SHIPPED_ABROAD)
    assert found.standalone.text == "Can I change my delivery address?"


@pytest.mark.parametrize("courtesy", ["thanks!", "ok great, thank you", "hi there", "no"])
def test_thanks_and_greetings_are_not_what_the_customer_asked_about(
    knowledge: KnowledgeBase, courtesy: str
) -> None:
    history = [*SHIPPED_ABROAD, Turn("customer", courtesy)]
    assert subject_of(history) == "Do you ship internationally?"
    assert _first_hit(knowledge, *(t.text for t in history), "How long does it take?") == ABROAD


def test_abroad_said_before_some_thanks_still_holds(knowledge: KnowledgeBase) -> None:
    thanked = (*(t.text for t in SHIPPED_ABROAD), "thanks", "ok", "great")
    assert _first_hit(knowledge, *thanked, "How long does shipping take?") == ABROAD


def test_a_request_is_not_taken_for_courtesy() -> None:
    assert subject_of([Turn("customer", "Please get back to me")]) == "Please get back to me"
    assert subject_of([Turn("customer", "hi")]) is None


def test_a_place_named_before_a_long_run_of_follow_ups_still_holds(
    knowledge: KnowledgeBase,
) -> None:
    # Toronto is further back than the recent turns: what the base says of abroad, still.
    toronto = ("Do you ship to Toronto?", "How much does it cost?", "How long does it take?")
    run = (*toronto, "Is that quick?", "When does it happen?")
    assert _first_hit(knowledge, *run) == ABROAD
    assert _first_hit(knowledge, *run, "How much is express shipping?") == ABROAD


def test_a_new_question_in_the_same_conversation_is_not_dragged_back(
    knowledge: KnowledgeBase,
) -> None:
    found = _retrieve(knowledge, "How do I reset my password?", history=SHIPPED_ABROAD)
    assert "password" in found.hits[0].entry.id


def test_a_run_of_follow_ups_keeps_the_conversation_s_subject(knowledge: KnowledgeBase) -> None:
    # "How long does it take?" names nothing: the third turn's subject is still shipping abroad.
    history = [
        *SHIPPED_ABROAD,
        Turn("assistant", "We ship to more than 40 countries."),
        Turn("customer", "How long does it take?"),
        Turn("assistant", "International delivery usually takes 7-14 business days."),
    ]
    found = _retrieve(knowledge, "And who pays the duties?", history=history)
    assert found.hits[0].entry.id == ABROAD
    assert found.standalone.text.startswith("Do you ship internationally? How long does it take?")


def test_a_bare_follow_up_about_abroad_gets_what_the_base_says_of_abroad(
    knowledge: KnowledgeBase,
) -> None:
    # The price list says nothing of other countries: not an answer to what shipping abroad costs.
    history = [*SHIPPED_ABROAD, Turn("customer", "How long does it take?")]
    found = _retrieve(knowledge, "How much does it cost?", history=history)
    assert found.abroad
    assert found.hits[0].entry.id == ABROAD


def _first_hit(knowledge: KnowledgeBase, *turns: str) -> str:
    *earlier, message = turns
    found = _retrieve(knowledge, message, history=[Turn("customer", text) for text in earlier])
    return found.hits[0].entry.id


def test_a_follow_up_is_about_the_place_the_conversation_named(knowledge: KnowledgeBase) -> None:
    # The UK two turns back: the domestic delivery times would be wrong.
    uk = "Do you ship to the UK?"
    assert _first_hit(knowledge, uk, "Do I pay customs?", "How long does it take?") == ABROAD
    assert _first_hit(knowledge, uk, "How long does shipping take?") == ABROAD


def test_a_new_subject_is_not_about_the_place_named_before(knowledge: KnowledgeBase) -> None:
    reset = "payments-and-accounts#i-forgot-my-password-how-do-i-reset-it"
    assert _first_hit(knowledge, "Do you ship to the UK?", "How do I reset my password?") == reset
    assert _first_hit(knowledge, "Do you ship to Germany?", "How do I reset my password?") == reset
    delete = "payments-and-accounts#how-do-i-delete-my-account"
    germany = ("Do you ship to Germany?", "How do I create an account?")
    assert _first_hit(knowledge, *germany, "How do I delete my account?") == delete


def test_a_destination_named_before_holds_across_the_conversation(
    knowledge: KnowledgeBase,
) -> None:
    uk = "Do you ship to the UK?"
    assert _first_hit(knowledge, uk, "Do I pay customs?", "How much does shipping cost?") == ABROAD
    germany = ("Do you ship to Germany?", "How long does shipping take?")
    assert _first_hit(knowledge, *germany, "And express?") == ABROAD
    sizes = "Are your sizes the US sizes?"  # says where nothing goes
    assert _first_hit(knowledge, uk, sizes, "How long does it take?") == ABROAD
    abroad = "Do you ship internationally?"
    assert _first_hit(knowledge, abroad, "Do I pay customs?", "How long does it take?") == ABROAD


def test_a_state_is_in_its_country(knowledge: KnowledgeBase) -> None:
    canada = "Do you ship to Canada?"
    assert _first_hit(knowledge, canada, "How long does it take to Ontario?") == ABROAD
    times = "orders-and-shipping#how-long-does-shipping-take"
    assert _first_hit(knowledge, canada, "I meant to Texas, how long does it take?") == times


def test_a_place_at_home_after_shipping_abroad_gets_what_the_base_says_of_home(
    knowledge: KnowledgeBase,
) -> None:
    abroad = ("Do you ship internationally?",)
    cost = "orders-and-shipping#how-much-does-shipping-cost"
    times = "orders-and-shipping#how-long-does-shipping-take"
    assert _first_hit(knowledge, *abroad, "I meant to Texas, is it free?") == cost
    assert _first_hit(knowledge, *abroad, "And to Chicago, how long does it take?") == times
    found = _retrieve(
        knowledge, "I meant to Texas, is it free?", history=[Turn("customer", abroad[0])]
    )
    assert not found.abroad


def test_the_last_place_named_is_the_one_meant(knowledge: KnowledgeBase) -> None:
    # Chicago and the US are at home for the default base's shop: the domestic times.
    times = "orders-and-shipping#how-long-does-shipping-take"
    uk, canada = "Do you ship to the UK?", "Do you ship to Canada?"
    assert _first_hit(knowledge, uk, "What about Chicago?", "How long does it take?") != ABROAD
    home = "OK, I'll ship it to my address in the US instead."
    assert _first_hit(knowledge, canada, home, "How long does shipping take?") == times


def test_abroad_in_an_earlier_turn_counts_when_it_was_the_subject(
    knowledge: KnowledgeBase,
) -> None:
    refund = "returns-and-refunds#how-long-does-a-refund-take"
    overseas = "Can I get a refund if I ordered from overseas?"
    assert _first_hit(knowledge, overseas, "How long does it take?") == refund


def test_keyword_retrieval_stays_keyword_when_a_place_is_set_aside(
    knowledge: KnowledgeBase,
) -> None:
    found = _retrieve(
        knowledge,
        "How do I reset my password?",
        history=[Turn("customer", "Do you ship to the UK?")],
        method=ContextMethod.KEYWORD,
    )
    assert found.query_vector is None


def test_a_long_run_of_follow_ups_still_has_its_subject(knowledge: KnowledgeBase) -> None:
    bare = ["How long does it take?", "How much does it cost?", "Is that possible?", "Why is it?"]
    history = [*SHIPPED_ABROAD, *(Turn("customer", text) for text in bare)]
    found = _retrieve(knowledge, "And who pays the duties?", history=history)
    assert found.hits[0].entry.id == ABROAD
    # the subject, then the last three of the run
    assert found.standalone.text == (
        "Do you ship internationally? How much does it cost? Is that possible? Why is it? "
        "And who pays the duties?"
    )


def test_a_new_subject_ends_the_run(knowledge: KnowledgeBase) -> None:
    history = [*SHIPPED_ABROAD, Turn("customer", "How do I reset my password?")]
    found = standalone_question(
        message="How long is it valid?", history=history, knowledge=knowledge
    )
    assert found.text == "How do I reset my password? How long is it valid?"


def test_a_model_that_can_rewrites_the_follow_up(knowledge: KnowledgeBase) -> None:
    script = ScriptedOllama("How long does international shipping take?")
    found = _retrieve(
        knowledge, "How long does it take?", history=SHIPPED_ABROAD, provider=script.provider()
    )
    assert found.standalone.rewritten
    assert found.standalone.text == "How long does international shipping take?"
    assert found.hits[0].entry.id == ABROAD
    # The model was shown the conversation and the message to rewrite.
    prompt = str(script.requests[0]["messages"])
    assert "Do you ship internationally?" in prompt and "How long does it take?" in prompt


def test_a_failed_rewrite_falls_back_to_mixing(knowledge: KnowledgeBase) -> None:
    down = OllamaProvider(
        client=httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(503))),
        host="http://ollama.test",
        model="mistral",
    )
    found = standalone_question(
        message="How long does it take?", history=SHIPPED_ABROAD, knowledge=knowledge, provider=down
    )
    assert not found.rewritten and found.vector is not None
    assert knowledge.search(found.text, k=1, query_vector=found.vector)[0].entry.id == ABROAD


def test_keyword_retrieval_answers_a_place_abroad_from_what_the_base_says_of_abroad(
    knowledge: KnowledgeBase,
) -> None:
    found = _retrieve(
        knowledge, "How long does shipping to Germany take?", method=ContextMethod.KEYWORD
    )
    assert found.hits[0].entry.id == ABROAD
    # and only a question the international entry is about at all
    found = _retrieve(
        knowledge, "How do I reset my password from Germany?", method=ContextMethod.KEYWORD
    )
    assert found.hits[0].entry.id == "payments-and-accounts#i-forgot-my-password-how-do-i-reset-it"
