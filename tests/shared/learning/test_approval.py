"""Approving a suggestion: as a new entry, or as one more phrasing of the entry that already
answered it, so that the base learns the customer's words (SQLite and PostgreSQL)."""

import shutil
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from shared.core.config import PROJECT_ROOT, Settings
from shared.core.db import session_scope
from shared.knowledge import KnowledgeBase
from shared.knowledge.editing import EntryNotFound, InvalidEntry, KnowledgeFiles
from shared.knowledge.loader import EntryKind
from shared.knowledge.models import KnowledgeChange
from shared.knowledge.store import create_embedder
from shared.learning import service as learning
from shared.learning.models import Suggestion, SuggestionStatus
from shared.learning.outcomes import read_outcomes
from shared.learning.schemas import SuggestionView
from tests.shared.learning.test_outcomes import Story

CONTACT = "contact#how-can-i-contact-support"
CUSTOMER_WORDS = "Who do I ring when a delivery goes wrong?"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "knowledge", tmp_path / "knowledge")
    return tmp_path / "knowledge"


def _load(folder: Path) -> KnowledgeBase:
    settings = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]
    return KnowledgeBase.load(folder, embedder=create_embedder(settings))


def _suggestion(sessions: sessionmaker[Session], base: KnowledgeBase) -> str:
    with session_scope(sessions) as session:
        Story(session, base).resolved(CUSTOMER_WORDS)
        suggestion = session.query(Suggestion).one()
        return suggestion.id


def test_approved_as_a_phrasing_the_customer_words_find_the_entry(
    sessions: sessionmaker[Session], folder: Path
) -> None:
    before = _load(folder)
    suggestion_id = _suggestion(sessions, before)
    with session_scope(sessions) as session:
        approval = learning.approve(
            session=session, files=KnowledgeFiles(folder), suggestion_id=suggestion_id,
            actor="dana", phrasing_of=CONTACT,
        )  # fmt: skip
        assert approval.change.action == "edited" and approval.change.entry_id == CONTACT
    with session_scope(sessions) as session:
        suggestion = session.get(Suggestion, suggestion_id)
        assert suggestion is not None and suggestion.status is SuggestionStatus.APPROVED
        assert suggestion.entry_id == CONTACT
        (change,) = session.query(KnowledgeChange).all()
        assert change.after is not None and CUSTOMER_WORDS in change.after["phrasings"]
        assert change.before is not None and CUSTOMER_WORDS not in change.before["phrasings"]

    after = _load(folder)
    entry = after.entry(CONTACT)
    assert entry is not None and entry.phrasings[-1] == CUSTOMER_WORDS
    before_entry = before.entry(CONTACT)
    assert before_entry is not None and entry.answer == before_entry.answer
    (hit,) = after.search(CUSTOMER_WORDS, k=1)
    assert hit.entry.id == CONTACT
    vector = after.embed_query(CUSTOMER_WORDS)
    assert vector is not None and after.index.vectors is not None
    assert after.index.vectors.question_cosines(vector)[hit.index] > 0.99

    # For refitting the curve it was answerable all along, measured without what it taught.
    with session_scope(sessions) as session:
        outcomes = read_outcomes(session=session, base=after)
    assert outcomes.counts == {"handed off, the base had it": 1} and not outcomes.out_of_scope
    untaught = before.index.cosines(CUSTOMER_WORDS)
    assert untaught is not None
    assert outcomes.answerable[0] == pytest.approx(float(untaught.max()), abs=1e-5)


def test_a_phrasing_keeps_the_answer_and_needs_an_entry_that_exists(
    sessions: sessionmaker[Session], folder: Path
) -> None:
    suggestion_id = _suggestion(sessions, _load(folder))
    files = KnowledgeFiles(folder)
    text = (folder / "contact.md").read_text()
    with pytest.raises(InvalidEntry), session_scope(sessions) as session:
        learning.approve(
            session=session, files=files, suggestion_id=suggestion_id, actor="dana",
            answer="Call us.", phrasing_of=CONTACT,
        )  # fmt: skip
    with pytest.raises(EntryNotFound), session_scope(sessions) as session:
        learning.approve(
            session=session, files=files, suggestion_id=suggestion_id, actor="dana",
            phrasing_of="contact#no-such-entry",
        )  # fmt: skip
    assert (folder / "contact.md").read_text() == text
    with session_scope(sessions) as session:
        suggestion = session.get(Suggestion, suggestion_id)
        assert suggestion is not None and suggestion.status is SuggestionStatus.PENDING
        assert not session.query(KnowledgeChange).all()


def test_a_passage_it_resembles_is_marked_as_one_and_takes_no_phrasing(
    sessions: sessionmaker[Session], folder: Path
) -> None:
    (folder / "couriers.md").write_text(
        "# Deliveries that go wrong\nRing the courier desk when a delivery goes wrong.\n"
    )
    base = _load(folder)
    suggestion_id = _suggestion(sessions, base)
    with session_scope(sessions) as session:
        suggestion = session.get(Suggestion, suggestion_id)
        assert suggestion is not None
        assert learning.compare(suggestion=suggestion, knowledge=base, duplicate_cosine=0.99)
        view = SuggestionView.from_suggestion(suggestion)
    assert view.similar is not None
    kinds = {entry.id: entry.kind for entry in view.similar}
    passage = next(e.id for e in base.entries if e.kind is EntryKind.PASSAGE)
    assert kinds.get(passage) == "passage", kinds  # the console offers it no phrasing
    assert {kind for entry_id, kind in kinds.items() if entry_id != passage} == {"qa"}

    text = (folder / "couriers.md").read_text()
    with pytest.raises(InvalidEntry), session_scope(sessions) as session:
        learning.approve(
            session=session, files=KnowledgeFiles(folder), suggestion_id=suggestion_id,
            actor="dana", phrasing_of=passage,
        )  # fmt: skip
    assert (folder / "couriers.md").read_text() == text
