from pathlib import Path

import pytest

from shared.core.config import PROJECT_ROOT
from shared.knowledge import KnowledgeBase
from shared.knowledge.loader import (
    EntryKind,
    content_version,
    knowledge_files,
    load_entries,
    parse_document,
)


def parse_entries(text: str) -> list[tuple[str, str]]:
    return [(e.question, e.answer) for e in parse_document(text) if e.kind is EntryKind.QA]


def test_parses_question_and_multiline_answer() -> None:
    text = (
        "# FAQ\n\nQ: How long does shipping take?\n"
        "A: It depends:\n- Standard: 3 days\n- Express: 1 day\n"
    )
    assert parse_entries(text) == [
        ("How long does shipping take?", "It depends:\n- Standard: 3 days\n- Express: 1 day")
    ]


def test_q_in_the_middle_of_an_answer_line_does_not_start_an_entry() -> None:
    text = "Q: What does Q: mean?\nA: Lines like Q: this one stay in the answer. A: too.\n"
    assert parse_entries(text) == [
        ("What does Q: mean?", "Lines like Q: this one stay in the answer. A: too.")
    ]


def test_a_inside_a_question_does_not_start_the_answer() -> None:
    text = "Q: Plan A: is it the cheapest?\nA: Yes, plan A is the cheapest.\n"
    assert parse_entries(text) == [("Plan A: is it the cheapest?", "Yes, plan A is the cheapest.")]


def test_a_heading_ends_an_answer() -> None:
    text = "Q: One?\nA: First.\n\n# Next section\nSome prose.\n\nQ: Two?\nA: Second.\n"
    assert parse_entries(text) == [("One?", "First."), ("Two?", "Second.")]


def test_prose_becomes_passages_titled_by_their_heading_path() -> None:
    text = (
        "# Shipping\nWe ship from Leeds.\n\n## Express\nExpress parcels leave the same day.\n"
        "\nQ: Do you ship on Sundays?\nA: No.\n"
    )
    passages = [(e.question, e.answer) for e in parse_document(text) if e.kind is EntryKind.PASSAGE]
    assert passages == [
        ("Shipping", "We ship from Leeds."),
        ("Shipping > Express", "Express parcels leave the same day."),
    ]
    assert parse_entries(text) == [("Do you ship on Sundays?", "No.")]


def test_long_sections_are_split_at_paragraphs() -> None:
    paragraph = " ".join(["word"] * 120)
    text = "# Long\n" + "\n\n".join([paragraph] * 5)
    passages = parse_document(text)
    assert len(passages) == 3
    assert all(len(p.answer.split()) <= 250 for p in passages)


def test_question_without_answer_is_dropped() -> None:
    assert parse_entries("Q: Orphan?\n\nQ: Real?\nA: Yes.\n") == [("Real?", "Yes.")]


def test_entry_ids_name_file_and_question_and_stay_unique(tmp_path: Path) -> None:
    (tmp_path / "billing.md").write_text("Q: Refunds?\nA: 30 days.\nQ: Refunds?\nA: Again.\n")
    entries = load_entries(knowledge_files(tmp_path), root=tmp_path)
    assert [e.id for e in entries] == ["billing#refunds", "billing#refunds-2"]


def test_knowledge_path_may_be_a_single_file(tmp_path: Path) -> None:
    file = tmp_path / "faq.txt"
    file.write_text("Q: Open on Sundays?\nA: No.\n")
    base = KnowledgeBase.load(file)
    assert [e.id for e in base.entries] == ["faq#open-on-sundays"]


def test_version_changes_with_content_only(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Q: One?\nA: First.\n")
    first = KnowledgeBase.load(tmp_path).version
    assert KnowledgeBase.load(tmp_path).version == first
    (tmp_path / "a.md").write_text("Q: One?\nA: Changed.\n")
    assert KnowledgeBase.load(tmp_path).version != first
    assert content_version([]) != first


def test_missing_knowledge_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        knowledge_files(tmp_path / "nowhere")


def test_default_knowledge_base_covers_the_original_topics() -> None:
    base = KnowledgeBase.load(PROJECT_ROOT / "knowledge")
    questions = " ".join(e.question.lower() for e in base.entries)
    for topic in ("refund", "contact", "payment", "shipping take", "warrant", "track",
                  "cancel", "internationally", "privacy", "create an account"):  # fmt: skip
        assert topic in questions
    assert len(base.entries) >= 20


def test_q_lines_one_under_the_other_are_phrasings_of_one_entry() -> None:
    text = (
        "Q: How can I contact support?\nQ: How do I reach you?\n"
        "Q: What is your phone\nnumber?\nA: Call +1 800 555 0199.\n\nQ: Do you have stores?\nA: No."
    )
    first, second = parse_document(text)
    assert first.question == "How can I contact support?"
    assert first.phrasings == ("How do I reach you?", "What is your phone number?")
    assert first.answer == "Call +1 800 555 0199." and first.lines == (0, 5)
    assert second.question == "Do you have stores?" and second.phrasings == ()


def test_phrasings_are_in_the_entry_text_and_change_the_version(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text("Q: Do you sell gift cards?\nA: Yes, from $10 to $200.\n")
    plain = load_entries([tmp_path / "faq.md"], root=tmp_path)
    (tmp_path / "faq.md").write_text(
        "Q: Do you sell gift cards?\nQ: Can I buy a voucher for a friend?\n"
        "A: Yes, from $10 to $200.\n"
    )
    asked = load_entries([tmp_path / "faq.md"], root=tmp_path)
    assert asked[0].id == plain[0].id == "faq#do-you-sell-gift-cards"
    assert asked[0].questions == ("Do you sell gift cards?", "Can I buy a voucher for a friend?")
    assert "voucher" in asked[0].text and content_version(asked) != content_version(plain)
