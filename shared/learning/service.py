"""Learning from what people answered: a resolved handoff's question and the person's reply
become a knowledge suggestion; an operator approves it (into the knowledge files) or rejects it.
Callers own the transaction."""

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.conversations.models import Message, MessageRole
from shared.core.db import utcnow
from shared.core.errors import InvalidState, NotFound
from shared.inbox.models import Handoff
from shared.inbox.schemas import Packet
from shared.knowledge.editing import EntryText, InvalidEntry, KnowledgeFiles
from shared.knowledge.models import KnowledgeChange
from shared.knowledge.service import add_entry, add_phrasing
from shared.knowledge.store import KnowledgeBase
from shared.learning.models import Suggestion, SuggestionStatus

SIMILAR_SHOWN = 3
NOT_COMPARED = "none"  # vector_model of a suggestion compared without embeddings


class SuggestionNotFound(NotFound):
    code = "suggestion_not_found"


def draft_suggestion(*, session: Session, handoff: Handoff) -> Suggestion | None:
    """The suggestion a resolved handoff teaches: the customer's standalone question and what
    the support team replied after the handoff; None when no person replied."""
    replies = session.scalars(
        select(Message.text)
        .where(
            Message.conversation_id == handoff.conversation_id,
            Message.role == MessageRole.AGENT,
            Message.created_at >= handoff.created_at,
        )
        .order_by(Message.created_at)
    ).all()
    if not replies:
        return None
    packet = Packet.model_validate(handoff.packet)
    asked, standalone = packet.customer_message.strip(), (packet.standalone_question or "").strip()
    # A standalone question that reads as one is the question: a model's rewrite, or a bare
    # follow-up asked of what the earlier turn named ("How long does ship internationally
    # take?" says more than "How long does it take?"); the earlier turns joined to the message
    # (or the message alone) do not: then the message is the question.
    question = standalone if standalone and not standalone.endswith(asked) else asked
    if not question:
        return None
    suggestion = Suggestion(
        conversation_id=handoff.conversation_id,
        handoff_id=handoff.id,
        question=" ".join(question.split())[:300],
        answer="\n\n".join(text.strip() for text in replies),
        created_at=utcnow(),
        similar=[],
    )
    session.add(suggestion)
    session.flush()
    return suggestion


def compare(*, suggestion: Suggestion, knowledge: KnowledgeBase, duplicate_cosine: float) -> bool:
    """Fill in the entries the suggestion resembles (cosine of its question to each entry's
    question, or the closest of its phrasings) and flag a near-duplicate; False when the base has
    no vectors to compare with."""
    index = knowledge.index
    vector = knowledge.embed_query(suggestion.question)
    if vector is None or index.vectors is None or index.embedder is None:
        suggestion.vector_model = NOT_COMPARED  # no embeddings: not asked again
        return False
    cosines = index.vectors.question_cosines(vector)
    best = np.argsort(-cosines, kind="stable")[:SIMILAR_SHOWN]
    suggestion.similar = [
        {
            "id": knowledge.entries[i].id,
            "question": knowledge.entries[i].question,
            "answer": knowledge.entries[i].answer,
            "score": round(float(cosines[i]), 4),
            "kind": knowledge.entries[i].kind.value,
        }
        for i in best
    ]
    top = suggestion.similar[0] if suggestion.similar else None
    suggestion.duplicate_of = (
        top["id"] if top is not None and top["score"] >= duplicate_cosine else None
    )
    suggestion.vector = np.asarray(vector, dtype=np.float32).tobytes()
    suggestion.vector_model = index.embedder.name
    return True


def uncompared(*, session: Session, limit: int = 50) -> list[str]:
    """Pending suggestions whose similar entries were never computed (their task was lost)."""
    query = select(Suggestion.id).where(
        Suggestion.status == SuggestionStatus.PENDING, Suggestion.vector_model.is_(None)
    )
    return list(session.scalars(query.order_by(Suggestion.created_at).limit(limit)))


def get_suggestion(*, session: Session, suggestion_id: str) -> Suggestion:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    return suggestion


def list_suggestions(
    *,
    session: Session,
    status: SuggestionStatus | None = SuggestionStatus.PENDING,
    limit: int = 100,
) -> list[Suggestion]:
    query = select(Suggestion)
    if status is not None:
        query = query.where(Suggestion.status == status)
    return list(session.scalars(query.order_by(Suggestion.created_at.desc()).limit(limit)))


@dataclass(frozen=True)
class Approval:
    suggestion: Suggestion
    change: KnowledgeChange


def approve(
    *,
    session: Session,
    files: KnowledgeFiles,
    suggestion_id: str,
    actor: str,
    question: str | None = None,
    answer: str | None = None,
    phrasing_of: str | None = None,
) -> Approval:
    """Write the suggestion (with the operator's edits) as a new entry of the knowledge files,
    or its question as one more phrasing of the entry `phrasing_of`."""
    suggestion = _pending(session, suggestion_id)
    if phrasing_of is not None:
        if answer is not None:
            raise InvalidEntry("a phrasing keeps the entry's answer: send no answer with it")
        change = add_phrasing(
            session=session, files=files, entry_id=phrasing_of,
            phrasing=question or suggestion.question, actor=actor, suggestion_id=suggestion.id,
        )  # fmt: skip
        suggestion.question = " ".join((question or suggestion.question).split())
    else:
        text = EntryText.checked(question or suggestion.question, answer or suggestion.answer)
        change = add_entry(
            session=session, files=files, text=text, actor=actor, suggestion_id=suggestion.id
        )
        suggestion.question, suggestion.answer = text.question, text.answer
    suggestion.status, suggestion.entry_id = SuggestionStatus.APPROVED, change.entry_id
    suggestion.decided_at, suggestion.decided_by = utcnow(), actor
    session.flush()
    return Approval(suggestion, change)


def reject(*, session: Session, suggestion_id: str, actor: str) -> Suggestion:
    suggestion = _pending(session, suggestion_id)
    suggestion.status = SuggestionStatus.REJECTED
    suggestion.decided_at, suggestion.decided_by = utcnow(), actor
    session.flush()
    return suggestion


def _pending(session: Session, suggestion_id: str) -> Suggestion:
    # Locked (on PostgreSQL) until the decision commits: two operators cannot both approve it.
    suggestion = session.get(Suggestion, suggestion_id, with_for_update=True)
    if suggestion is None:
        raise SuggestionNotFound(f"no suggestion {suggestion_id}")
    if suggestion.status is not SuggestionStatus.PENDING:
        raise InvalidState(f"the suggestion is {suggestion.status.value} already")
    return suggestion
