import os
import time
from dataclasses import replace
from pathlib import Path

from shared.core.config import PROJECT_ROOT, Settings
from shared.knowledge import KnowledgeBase, KnowledgeStore
from shared.knowledge.loader import Entry
from shared.knowledge.search import HybridIndex
from shared.knowledge.store import create_embedder

KNOWLEDGE = PROJECT_ROOT / "knowledge"


def test_ranks_the_matching_entry_first() -> None:
    base = KnowledgeBase.load(KNOWLEDGE)
    cases = {
        "What is your refund policy?": "returns-and-refunds#what-is-your-refund-policy",
        "how long will shipping take": "orders-and-shipping#how-long-does-shipping-take",
        "which payment methods are accepted": (
            "payments-and-accounts#what-payment-methods-do-you-accept"
        ),
        "I want to track my order": "orders-and-shipping#how-do-i-track-my-order",
    }  # fmt: skip
    for query, expected in cases.items():
        assert base.search(query, k=3)[0].entry.id == expected, query


def test_stemming_matches_word_forms() -> None:
    base = KnowledgeBase.load(KNOWLEDGE)
    hits = base.search("refunds", k=1)
    assert hits and "refund" in hits[0].entry.id


def test_no_shared_term_means_no_hits() -> None:
    base = KnowledgeBase.load(KNOWLEDGE)
    assert base.search("zyxxy qwertz", k=3) == []
    assert base.search("the and of", k=3) == []


def test_empty_index_returns_nothing() -> None:
    index = HybridIndex([], vectors=None, embedder=None, dense_weight=0.9)
    assert index.search("refund", k=3) == []


def test_store_picks_up_edited_files(tmp_path: Path) -> None:
    faq = tmp_path / "faq.md"
    faq.write_text("Q: Opening hours?\nA: 9 to 5.\n")
    store = KnowledgeStore(tmp_path, check_interval=0)
    before = store.current().version
    faq.write_text("Q: Opening hours?\nA: 8 to 8.\n")
    os.utime(faq, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    after = store.current()
    assert after.version != before
    assert after.entries[0].answer == "8 to 8."


def test_a_phrasing_is_matched_as_the_question_is() -> None:
    embedder = create_embedder(Settings(_env_file=None, embedding_cache_dir=None))  # type: ignore[call-arg]
    assert embedder is not None
    answer = "Live chat, email help@example.com or phone +1 800 555 0199, weekdays 8 AM to 8 PM."
    others = [
        Entry("faq#track", "How do I track my order?", "Open Orders in your account.", "faq"),
        Entry("faq#cancel", "Can I cancel my order?", "Within 2 hours of placing it.", "faq"),
        Entry("faq#stores", "Do you have physical stores?", "No, we sell online only.", "faq"),
    ]
    asked = "What number do I ring to speak to you?"
    plain = Entry("faq#contact", "How can I contact support?", answer, "faq")
    phrased = replace(plain, phrasings=("What phone number can I call?",))
    without = KnowledgeBase.from_entries([plain, *others], embedder=embedder)
    with_it = KnowledgeBase.from_entries([phrased, *others], embedder=embedder)

    before = next(h for h in without.search(asked, k=4) if h.entry.id == "faq#contact")
    after = with_it.search(asked, k=4)[0]
    assert after.entry.id == "faq#contact"
    assert after.dense is not None and before.dense is not None
    assert after.dense > before.dense + 0.05
