"""What real conversations say about the handoff threshold: labelled examples for refitting the
confidence curve (`support-assistant calibrate --outcomes`).

- *The base answered it* (answerable): an answer the customer rated up; a question handed off for
  low confidence whose suggestion turned out to repeat an existing entry (`duplicate_of`), or was
  approved as one more phrasing of one (the base had the answer, not the customer's words).
- *The base did not* (out of scope): an answer rated down; a question handed off for low
  confidence that a person answered with knowledge the base lacked (its suggestion was approved
  as a new entry).

Each example's feature is the retrieval cosine of its stored vector against today's base, with
what it taught left out — the new entry, or the phrasing (otherwise every approved gap would look
answered, and every taught phrasing would match itself)."""

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.answering.handoff import HandoffReason
from shared.conversations.models import Feedback, Message, MessageRole, Rating
from shared.inbox.models import Handoff
from shared.knowledge.loader import phrasing_rows
from shared.knowledge.models import KnowledgeChange
from shared.knowledge.search import HybridIndex
from shared.knowledge.service import ChangeAction
from shared.knowledge.store import KnowledgeBase
from shared.learning.models import Suggestion, SuggestionStatus
from shared.questions.models import Question


@dataclass
class Outcomes:
    answerable: list[float] = field(default_factory=list)
    out_of_scope: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # no vector, or one made by another embedding model

    def add(self, kind: str, cosine: float | None, *, answerable: bool) -> None:
        if cosine is None:
            self.skipped += 1
            return
        (self.answerable if answerable else self.out_of_scope).append(cosine)
        self.counts[kind] = self.counts.get(kind, 0) + 1


def read_outcomes(*, session: Session, base: KnowledgeBase) -> Outcomes:
    outcomes = Outcomes()
    index = base.index
    model = index.embedder.name if index.embedder is not None else None
    positions = {entry.id: i for i, entry in enumerate(base.entries)}

    def cosine(
        question: Question, leave_out: str | None = None, phrasing: str | None = None
    ) -> float | None:
        if question.vector is None or model is None or question.vector_model != model:
            return None
        vector = np.frombuffer(question.vector, dtype=np.float32)
        searched = index if phrasing is None else _without_phrasing(base, phrasing)
        cosines: npt.NDArray[np.float32] | None = searched.cosines("", query_vector=vector)
        if cosines is None or not len(cosines):
            return None
        if leave_out is not None and leave_out in positions:
            cosines = cosines.copy()
            cosines[positions[leave_out]] = -1.0
        return float(cosines.max())

    rated = session.execute(
        select(Question, Feedback.rating)
        .join(Message, Message.question_id == Question.id)
        .join(Feedback, Feedback.message_id == Message.id)
        .where(Message.role == MessageRole.ASSISTANT, Question.action == "answer")
    ).all()
    for question, rating in rated:
        up = rating is Rating.UP
        outcomes.add("rated up" if up else "rated down", cosine(question), answerable=up)

    learned = session.execute(
        select(Question, Suggestion)
        .join(Handoff, Handoff.question_id == Question.id)
        .join(Suggestion, Suggestion.handoff_id == Handoff.id)
        .where(Handoff.reason == HandoffReason.LOW_CONFIDENCE.value)
    ).all()
    as_phrasings = set(
        session.scalars(
            select(KnowledgeChange.suggestion_id).where(
                KnowledgeChange.suggestion_id.is_not(None),
                KnowledgeChange.action == ChangeAction.EDITED.value,
            )
        )
    )
    for question, suggestion in learned:
        if suggestion.id in as_phrasings:
            outcomes.add(
                "handed off, the base had it",
                cosine(question, phrasing=suggestion.question),
                answerable=True,
            )
        elif suggestion.duplicate_of is not None:
            outcomes.add("handed off, the base had it", cosine(question), answerable=True)
        elif suggestion.status is SuggestionStatus.APPROVED:
            outcomes.add(
                "handed off, a person taught it",
                cosine(question, leave_out=suggestion.entry_id),
                answerable=False,
            )
    return outcomes


def _without_phrasing(base: KnowledgeBase, phrasing: str) -> HybridIndex:
    """The base's index without the phrasing a suggestion taught (as it was before)."""
    vectors = base.index.vectors
    if vectors is None or vectors.phrasings is None or vectors.phrasing_entries is None:
        return base.index
    keep = np.array([text != phrasing for _, text in phrasing_rows(base.entries)], dtype=bool)
    return base.index.with_vectors(
        replace(
            vectors,
            phrasings=vectors.phrasings[keep] if keep.any() else None,
            phrasing_entries=vectors.phrasing_entries[keep],
        )
    )
