"""A customer who asks for a person, in any phrasing, is noticed; a question is not taken for
one."""

import json

import pytest

from shared.answering.handoff import EXAMPLES, asks_for_a_person
from shared.core.config import PROJECT_ROOT, Settings
from shared.knowledge.embeddings import Embedder
from shared.knowledge.store import create_embedder
from tests.conftest import EVAL_DIR

# None of these is one of the examples the embedder compares with.
WANTS_A_PERSON = [
    "agent please",
    "human",
    "Can I speak to a human?",
    "I want to talk to an actual human being",
    "Is there a human I can talk to?",
    "get me a representative",
    "connect me to customer service",
    "Could you transfer me to someone from support?",
    "I'd rather deal with an actual person",
    "stop, I need a live agent",
    "you're a bot, I want someone real",
    "Let me talk with your supervisor",
    # A question about time beside the request leaves it a request.
    "Get a real person on the line, when is my package coming?",
    "Is there an actual human here? When will my refund arrive?",
    "Real person. How long?",
    "Put a real human on, I've waited until now for nothing",
]
QUESTIONS = [
    "How long does shipping take?",
    "Can I cancel my order?",
    "How do I reset my password?",
    "Do you ship internationally?",
    "What is your refund policy for damaged items?",
    "Can a person other than me pick up my order?",
    "Is the warranty transferable to another person?",
    "What are your customer service hours?",
    "How long until a real person answers on the live chat?",
    "When does a live agent usually reply?",
    "Do your agents work on weekends?",
    "How do I change the delivery address?",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    found = create_embedder(Settings(_env_file=None))  # type: ignore[call-arg]
    assert found is not None
    return found


def test_the_examples_are_not_the_phrasings_tested() -> None:
    assert not {p.lower() for p in WANTS_A_PERSON} & {e.lower() for e in EXAMPLES}


@pytest.mark.parametrize("message", WANTS_A_PERSON)
def test_asking_for_a_person_is_noticed(message: str, embedder: Embedder) -> None:
    assert asks_for_a_person(message, embedder)


@pytest.mark.parametrize("message", QUESTIONS)
def test_a_question_is_not_a_request_for_a_person(message: str, embedder: Embedder) -> None:
    assert not asks_for_a_person(message, embedder)


def test_without_an_embedder_the_plain_phrasings_are_still_noticed() -> None:
    assert asks_for_a_person("agent please")
    assert asks_for_a_person("Can I speak to a human?")
    assert not asks_for_a_person("Can I cancel my order?")


def test_no_customer_question_of_the_evaluation_sets_is_taken_for_one(embedder: Embedder) -> None:
    """StackFAQ's 625 questions and bench/data's answerable ones ask something; only the one that
    asks how to reach a human is passed to one."""
    stackfaq = EVAL_DIR / "stackfaq" / "queries.jsonl"
    if not stackfaq.exists():
        pytest.skip("../shared/eval/stackfaq is not here")
    questions = [json.loads(line)["query"] for line in stackfaq.read_text().splitlines() if line]
    for name in ("answers_default_kb", "answers_original_kb", "yes_no_traps"):
        path = PROJECT_ROOT / "bench" / "data" / f"{name}.jsonl"
        questions += [json.loads(line)["query"] for line in path.read_text().splitlines() if line]
    taken = [q for q in questions if asks_for_a_person(q, embedder)]
    assert len(questions) > 700
    assert taken == ["Fastest way to get hold of an actual human? I'm in a hurry"]
