"""Entries added, edited and removed in the files, which stay readable and load back the same."""

from pathlib import Path

import pytest

from shared.knowledge import KnowledgeBase
from shared.knowledge.editing import (
    LEARNED_FILE,
    EntryNotFound,
    EntryText,
    InvalidEntry,
    KnowledgeFiles,
)

FAQ = """# Shipping

Q: How long does shipping take?
A: Standard delivery takes 3-5 business days.
- Express: 1-2 business days

Q: Do you ship abroad?
A: Yes, to 40 countries.

## About us

Some prose about the shop that is a passage.
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "faq.md").write_text(FAQ)
    return tmp_path


def _entries(path: Path) -> dict[str, tuple[str, str]]:
    base = KnowledgeBase.load(path)
    return {e.id: (e.question, e.answer) for e in base.entries}


def test_an_added_entry_goes_to_the_learned_file_and_loads(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    change = files.add(EntryText.checked("Do you gift wrap?", "Yes, for $3.\nAsk at checkout."))
    assert change.entry_id == "learned#do-you-gift-wrap" and change.file == LEARNED_FILE
    assert _entries(folder)[change.entry_id] == (
        "Do you gift wrap?",
        "Yes, for $3.\nAsk at checkout.",
    )
    second = files.add(EntryText.checked("Do you gift wrap?", "Also for free on Sundays."))
    assert second.entry_id == "learned#do-you-gift-wrap-2"
    text = (folder / LEARNED_FILE).read_text()
    assert text.startswith("# Learned from conversations\n\nQ: Do you gift wrap?\nA: Yes, for $3.")
    assert "\n\nQ: Do you gift wrap?\nA: Also for free on Sundays.\n" in text


def test_an_edit_changes_only_that_entry(folder: Path) -> None:
    before = _entries(folder)
    change = KnowledgeFiles(folder).update(
        "faq#how-long-does-shipping-take",
        EntryText.checked("How long does shipping take?", "Standard: 2-4 business days."),
    )
    assert change.before == EntryText(
        "How long does shipping take?",
        "Standard delivery takes 3-5 business days.\n- Express: 1-2 business days",
    )
    after = _entries(folder)
    assert after["faq#how-long-does-shipping-take"][1] == "Standard: 2-4 business days."
    unchanged = {k: v for k, v in before.items() if k != "faq#how-long-does-shipping-take"}
    assert {k: after[k] for k in unchanged} == unchanged
    assert "\n\nQ: Do you ship abroad?\n" in (folder / "faq.md").read_text()


def test_a_new_question_gives_the_entry_a_new_id(folder: Path) -> None:
    change = KnowledgeFiles(folder).update(
        "faq#do-you-ship-abroad", EntryText.checked("Do you ship internationally?", "Yes.")
    )
    assert change.entry_id == "faq#do-you-ship-internationally"
    assert "faq#do-you-ship-abroad" not in _entries(folder)


def test_a_removed_entry_is_gone_and_the_rest_stays(folder: Path) -> None:
    KnowledgeFiles(folder).remove("faq#how-long-does-shipping-take")
    entries = _entries(folder)
    assert "faq#how-long-does-shipping-take" not in entries
    assert "faq#do-you-ship-abroad" in entries
    assert (folder / "faq.md").read_text().startswith("# Shipping\n\nQ: Do you ship abroad?")


def test_unknown_entries_and_passages_cannot_be_changed(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    with pytest.raises(EntryNotFound):
        files.remove("faq#no-such-question")
    passage = next(e for e in KnowledgeBase.load(folder).entries if e.kind.value == "passage")
    with pytest.raises(InvalidEntry):
        files.remove(passage.id)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("", "An answer."),
        ("A question?", "   "),
        ("A question?", "Fine.\nQ: a smuggled entry"),
        ("A question?", "# a heading"),
        ("Q: nested?", "Yes."),
        ("x" * 301, "Yes."),
    ],
)
def test_text_that_would_not_read_back_is_refused(question: str, answer: str) -> None:
    with pytest.raises(InvalidEntry):
        EntryText.checked(question, answer)


def test_files_outside_the_folder_are_refused(folder: Path) -> None:
    with pytest.raises(InvalidEntry):
        KnowledgeFiles(folder).add(EntryText.checked("Q?", "A."), file="../outside.md")


def test_a_single_knowledge_file_takes_the_new_entries(folder: Path) -> None:
    change = KnowledgeFiles(folder / "faq.md").add(EntryText.checked("Do you gift wrap?", "Yes."))
    assert change.entry_id == "faq#do-you-gift-wrap"
    assert "faq#do-you-gift-wrap" in _entries(folder / "faq.md")
    assert not list(folder.glob("*.tmp"))


def test_adding_the_same_entry_again_writes_it_once(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    text = EntryText.checked("Do you sell gift cards?", "Yes, from $10 to $200.")
    first = files.add(text)
    again = files.add(text)  # an approval retried after its commit failed, say
    assert again.entry_id == first.entry_id
    assert (folder / "learned.md").read_text().count("Q: Do you sell gift cards?") == 1
