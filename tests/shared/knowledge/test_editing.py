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
        (),
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


def test_an_edit_without_phrasings_keeps_them_and_an_edit_with_them_replaces_them(
    folder: Path,
) -> None:
    files = KnowledgeFiles(folder)
    entry_id = "faq#do-you-ship-abroad"
    files.update(entry_id, EntryText.checked("Do you ship abroad?", "Yes.", ["Ship to Spain?"]))
    files.update(entry_id, EntryText.checked("Do you ship abroad?", "Yes, to 41 countries."))
    entry = next(e for e in KnowledgeBase.load(folder).entries if e.id == entry_id)
    assert entry.phrasings == ("Ship to Spain?",) and entry.answer == "Yes, to 41 countries."
    assert (
        "Q: Do you ship abroad?\nQ: Ship to Spain?\nA: Yes, to 41 countries."
        in (folder / "faq.md").read_text()
    )

    files.update(entry_id, EntryText.checked("Do you ship abroad?", "Yes.", []))
    entry = next(e for e in KnowledgeBase.load(folder).entries if e.id == entry_id)
    assert entry.phrasings == ()


def test_a_phrasing_is_added_once_and_the_entry_keeps_its_id_and_answer(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    before = _entries(folder)
    entry_id = "faq#how-long-does-shipping-take"
    change = files.add_phrasing(entry_id, "  When will my parcel  arrive? ")
    again = files.add_phrasing(entry_id, "When will my parcel arrive?")
    assert change.entry_id == entry_id and change.after is not None
    assert change.after.phrasings == ("When will my parcel arrive?",)
    assert again.before == again.after
    base = KnowledgeBase.load(folder)
    entry = next(e for e in base.entries if e.id == entry_id)
    assert entry.phrasings == ("When will my parcel arrive?",)
    assert _entries(folder) == before  # questions and answers as they were
    with pytest.raises(InvalidEntry):
        files.add_phrasing(entry_id, "Q: a new entry?")
    with pytest.raises(EntryNotFound):
        files.add_phrasing("faq#no-such-entry", "Anything?")


def test_a_new_question_that_was_a_phrasing_is_not_written_twice(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    entry_id = "faq#do-you-ship-abroad"
    files.update(entry_id, EntryText.checked("Do you ship abroad?", "Yes.", ["Ship to Spain?"]))
    change = files.update(entry_id, EntryText.checked("ship to spain?", "Yes."))
    assert change.after == EntryText("ship to spain?", "Yes.", ())
    assert (folder / "faq.md").read_text().lower().count("ship to spain?") == 1


def test_adding_an_entry_that_exists_reports_it_as_it_is(folder: Path) -> None:
    files = KnowledgeFiles(folder)
    text = EntryText.checked("Do you ship abroad?", "Yes, to 40 countries.", ["Ship to Peru?"])
    change = files.add(text, file="faq.md")
    assert change.entry_id == "faq#do-you-ship-abroad"
    assert change.after == EntryText("Do you ship abroad?", "Yes, to 40 countries.", ())
    assert "Peru" not in (folder / "faq.md").read_text()


def test_a_phrasing_goes_into_an_entry_written_by_hand_beyond_the_api_limits(
    folder: Path,
) -> None:
    long_answer = " ".join(["Every word of this answer counts."] * 150)  # over 4000 characters
    (folder / "long.md").write_text(f"Q: What is the whole story?\nA: {long_answer}\n")
    change = KnowledgeFiles(folder).add_phrasing("long#what-is-the-whole-story", "Tell me all?")
    assert change.after is not None and change.after.answer == long_answer
    entry = next(e for e in KnowledgeBase.load(folder).entries if e.source == "long")
    assert entry.phrasings == ("Tell me all?",) and entry.answer == long_answer


def test_phrasings_differing_only_in_case_are_one(folder: Path) -> None:
    text = EntryText.checked(
        "Do you ship abroad?", "Yes.", ["When?", "when?", "DO YOU SHIP ABROAD?"]
    )
    assert text.phrasings == ("When?",)
    files = KnowledgeFiles(folder)
    files.update("faq#do-you-ship-abroad", text)
    again = files.add_phrasing("faq#do-you-ship-abroad", "WHEN?")
    assert again.before == again.after
