"""Which statements of an entry an answer is built from, over the default knowledge base."""

from dataclasses import replace

from shared.answering.selection import (
    MARGIN,
    MAX_UNITS,
    SECOND_READING_MARGIN,
    WEAK_STATEMENT,
    WHOLE_ENTRY_UNITS,
    WHOLE_WHEN_WEAK_UNITS,
    Selection,
    readings_text,
    second_reading,
    select_units,
)
from shared.knowledge import Entry, KnowledgeBase
from shared.knowledge.loader import EntryKind


def _select(knowledge: KnowledgeBase, question: str) -> Selection:
    vector = knowledge.embed_query(question)
    hit = knowledge.search(question, k=1, query_vector=vector)[0]
    return select_units(knowledge=knowledge, hit=hit, question=question, query_vector=vector)


def test_a_question_in_two_parts_gets_the_statement_for_each(knowledge: KnowledgeBase) -> None:
    selection = _select(knowledge, "How do I complain, and when will someone reply?")
    assert selection.hit.entry.id == "contact#how-do-i-make-a-complaint"
    assert "replies within 2 business days" in selection.text


def test_a_third_statement_close_to_the_best_is_kept(knowledge: KnowledgeBase) -> None:
    selection = _select(knowledge, "how long does standard delivery take and what does it cost?")
    assert selection.hit.entry.id == "orders-and-shipping#how-long-does-shipping-take"
    assert len(selection.units) == 3
    assert "Standard: 3-5 business days" in selection.text


def test_statements_close_to_the_best_are_kept_in_the_entrys_order(
    knowledge: KnowledgeBase,
) -> None:
    for question in (
        "how long does standard delivery take and what does it cost?",
        "Can I use two discount codes on one order?",
        "What happens if I'm not happy with how my complaint was handled?",
    ):
        selection = _select(knowledge, question)
        units = selection.hit.entry.units
        assert len(units) > WHOLE_ENTRY_UNITS  # these entries are not given whole
        assert 1 <= len(selection.units) <= MAX_UNITS
        assert max(selection.scores) - min(selection.scores) <= MARGIN
        positions = [units.index(unit) for unit in selection.units]
        assert positions == sorted(positions)


def test_a_runner_up_close_to_the_best_is_a_second_reading(knowledge: KnowledgeBase) -> None:
    hits = knowledge.search("How long is the guarantee on your stuff?", k=3)
    best, runner_up = hits[0], hits[1]
    close = replace(runner_up, score=best.score - SECOND_READING_MARGIN)
    far = replace(runner_up, score=best.score - SECOND_READING_MARGIN - 0.001)
    assert second_reading([best, close]) is close
    assert second_reading([best, far]) is None
    assert second_reading([best]) is None


def test_two_readings_are_each_under_their_entrys_question(knowledge: KnowledgeBase) -> None:
    one = _select(knowledge, "How do I complain, and when will someone reply?")
    other = _select(knowledge, "how long does standard delivery take and what does it cost?")
    assert readings_text([one]) == one.text
    assert readings_text([one, other]) == (
        f"{one.hit.entry.question}\n{one.text}\n\n{other.hit.entry.question}\n{other.text}"
    )


def test_the_entrys_own_question_gets_its_whole_answer(knowledge: KnowledgeBase) -> None:
    # One of its sentences ("If you are not satisfied with the outcome…") scored best alone.
    for question in ("How do I make a complaint?", "how do I make a complaint"):
        selection = _select(knowledge, question)
        assert selection.hit.entry.id == "contact#how-do-i-make-a-complaint"
        assert selection.units == selection.hit.entry.units


def test_asking_a_phrasing_word_for_word_gets_its_statement_not_the_whole_entry(
    knowledge: KnowledgeBase,
) -> None:
    phrasing = "Do gift cards expire?"
    selection = _select(knowledge, phrasing)
    assert phrasing in selection.hit.entry.phrasings  # the base says this entry answers it
    assert len(selection.hit.entry.units) > WHOLE_ENTRY_UNITS
    assert selection.text == "Gift cards never expire."


def test_a_phrasing_no_one_statement_answers_gets_the_whole_entry(
    knowledge: KnowledgeBase,
) -> None:
    # "How can I reach you?" is the contact entry's question asked another way: its best
    # statement alone ("Please have your order number ready…") would answer nothing.
    phrasing = "How can I reach you?"
    selection = _select(knowledge, phrasing)
    assert phrasing in selection.hit.entry.phrasings
    assert selection.units == selection.hit.entry.units
    # Not as a second reading: an entry that weak for the question is no answer to it.
    vector = knowledge.embed_query(phrasing)
    second = select_units(
        knowledge=knowledge, hit=selection.hit, question=phrasing, query_vector=vector,
        whole_when_weak=False,
    )  # fmt: skip
    assert len(second.units) < len(selection.hit.entry.units)


def test_a_long_entry_or_a_passage_keeps_its_selection_however_weak(
    knowledge: KnowledgeBase,
) -> None:
    question = "Can I call you?"
    long_answer = (
        " ".join(f"Statement number {n} says something about our shop." for n in range(1, 7))
        + " Please have your order number ready when you phone us."
    )
    entries = [
        Entry("faq#contact", "How can I contact support?", long_answer, "faq"),
        Entry("faq#about", "About us", long_answer, "faq", kind=EntryKind.PASSAGE),
    ]
    base = KnowledgeBase.from_entries(entries, embedder=knowledge.index.embedder)
    vector = base.embed_query(question)
    for hit in base.search(question, k=2, query_vector=vector):
        assert len(hit.entry.units) > WHOLE_WHEN_WEAK_UNITS or hit.entry.kind is EntryKind.PASSAGE
        selection = select_units(knowledge=base, hit=hit, question=question, query_vector=vector)
        assert max(selection.scores) < WEAK_STATEMENT  # weak, yet selected
        assert 1 <= len(selection.units) <= MAX_UNITS


def test_a_question_no_statement_answers_on_its_own_gets_the_whole_entry(
    knowledge: KnowledgeBase,
) -> None:
    # Its best statement alone would be "Please have your order number ready…".
    selection = _select(knowledge, "Can I call you?")
    assert selection.hit.entry.id == "contact#how-can-i-contact-support"
    assert selection.units == selection.hit.entry.units
    assert "+1 800 555 0199" in selection.text
