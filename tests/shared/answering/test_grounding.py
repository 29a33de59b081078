import pytest

from shared.answering.grounding import (
    GatedStream,
    Grounding,
    clean_output,
    invents_turn,
    strip_citations,
)
from shared.core.config import PROJECT_ROOT
from shared.knowledge import KnowledgeBase, SearchHit
from shared.llm import StopGeneration
from shared.llm.prompt import SYSTEM_PROMPT

KNOWLEDGE = PROJECT_ROOT / "knowledge"


def _grounding(question: str = "What is your refund policy?") -> Grounding:
    base = KnowledgeBase.load(KNOWLEDGE)
    policy = next(e for e in base.entries if e.id.endswith("#what-is-your-refund-policy"))
    hits = [SearchHit(entry=policy, score=1.0, keyword=1.0, dense=0.9)]
    return Grounding(context=hits, question=question)


def test_a_faithful_paraphrase_passes() -> None:
    draft = "You can return most items within 30 days of delivery for a full refund."
    assert _grounding().check(draft).ok


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        ("You can return items within 60 days for a full refund.", "number '60'"),
        ("Refunds need a $1000 minimum order within 30 days.", "number '1000'"),
        ("Returns are accepted for forty days after delivery.", "number '40'"),
        ("Email refunds@shop.example for a refund within 30 days.", "email"),
        ("Start your 30 day return at https://evil.example/returns now.", "address"),
        ("Call 0800 123 4567 to return items within 30 days.", "number"),
        ("Returns within 30 days [billing#secret-policy] are refunded.", "not retrieved"),
        ("You can visit our store in Berlin to return items within 30 days.", "'Berlin'"),
        ("Our partner ReturnCo collects items within 30 days.", "'ReturnCo'"),
        ("Ask the cashier to wrap and gift your goods for 30 days.", "no entry supports"),
        (
            "Items in their original packaging are not refunded within 30 days.",
            "turns an entry around",
        ),
    ],
)
def test_invented_facts_are_refused(draft: str, reason: str) -> None:
    verdict = _grounding().check(draft)
    assert not verdict.ok and reason in (verdict.detail or "")


def test_numbers_the_customer_gave_may_be_repeated() -> None:
    grounding = _grounding("Can I return an item after three weeks?")
    assert grounding.check("Yes, three weeks is within the 30 days return period for a refund.").ok


def test_echoing_the_instructions_is_refused() -> None:
    echo = " ".join(SYSTEM_PROMPT.split()[:12])
    verdict = _grounding().check(f"{echo} Returns within 30 days are refunded.")
    assert not verdict.ok and "instructions" in (verdict.detail or "")


def test_leaving_out_every_figure_of_the_best_entry_is_refused() -> None:
    verdict = _grounding().check("You can return items for a refund.")
    assert not verdict.ok and "figure" in (verdict.detail or "")


def test_empty_draft_is_refused() -> None:
    assert not _grounding().check("   ").ok


def test_citations_of_retrieved_entries_pass_and_are_stripped() -> None:
    draft = "Items can be returned within 30 days [returns-and-refunds#what-is-your-refund-policy]."
    assert _grounding().check(draft).ok
    assert strip_citations(draft) == "Items can be returned within 30 days."


def test_clean_output_drops_labels_and_invented_turns() -> None:
    raw = "Agent: Returns take 30 days.\nQ: Can I also get a discount?\nA: Yes, 90% off!"
    assert clean_output(raw) == "Returns take 30 days."
    assert invents_turn(raw)
    assert not invents_turn("Returns take 30 days.\nThey are free.")


def test_clean_output_caps_the_length_at_a_sentence() -> None:
    text = "Returns are easy. " * 200
    cleaned = clean_output(text, max_chars=100)
    assert len(cleaned) <= 100 and cleaned.endswith(".")


def test_gated_stream_releases_only_checked_sentences() -> None:
    published: list[str] = []
    gate = GatedStream(_grounding(), published.append)
    for token in ["You can return ", "items within 30 days", ". Refunds need a ", "$1000 minimum."]:
        try:
            gate.feed(token)
        except StopGeneration:
            break
    gate.finish()
    assert "".join(published).strip() == "You can return items within 30 days."
    assert not gate.verdict.ok and "1000" in (gate.verdict.detail or "")


def test_gated_stream_stops_when_the_model_starts_a_new_turn() -> None:
    gate = GatedStream(_grounding(), None)
    gate.feed("Returns are accepted within 30 days.")
    with pytest.raises(StopGeneration):
        gate.feed("\nCustomer: thanks")
    assert gate.finish() == "Returns are accepted within 30 days."


def test_a_figure_must_appear_whole() -> None:
    base = KnowledgeBase.load(KNOWLEDGE)
    contact = next(e for e in base.entries if e.id.endswith("#how-can-i-contact-support"))
    grounding = Grounding(
        context=[SearchHit(entry=contact, score=1.0, keyword=1.0, dense=0.9)],
        question="What is your phone number?",
    )
    assert grounding.check("Call us on +1 800 555 0199, Monday to Friday.").ok
    verdict = grounding.check("Call us on 1-800-555-0188.")
    assert not verdict.ok and "1-800-555-0188" in (verdict.detail or "")
    assert grounding.check("Chat is answered within 2 minutes, email within 1 business day.").ok
