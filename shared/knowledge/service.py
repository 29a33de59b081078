"""Changing the knowledge base on behalf of a person: the files change, the change is recorded
(who, when, before and after), and every process is told to reload. Callers own the
transaction; the file is written first, so a failed commit leaves a change without its record,
never a record of a change that did not happen."""

from dataclasses import asdict
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.core.db import utcnow
from shared.knowledge.editing import EntryChange, EntryText, KnowledgeFiles
from shared.knowledge.models import KnowledgeChange


class ChangeAction(StrEnum):
    ADDED = "added"
    EDITED = "edited"
    REMOVED = "removed"


def _record(
    session: Session,
    change: EntryChange,
    *,
    action: str,
    actor: str,
    suggestion_id: str | None = None,
) -> KnowledgeChange:
    record = KnowledgeChange(
        entry_id=change.entry_id,
        action=action,
        file=change.file,
        actor=actor,
        created_at=utcnow(),
        before=asdict(change.before) if change.before else None,
        after=asdict(change.after) if change.after else None,
        suggestion_id=suggestion_id,
    )
    session.add(record)
    session.flush()
    return record


def add_entry(
    *,
    session: Session,
    files: KnowledgeFiles,
    text: EntryText,
    actor: str,
    file: str | None = None,
    suggestion_id: str | None = None,
) -> KnowledgeChange:
    change = files.add(text, file=file)
    return _record(
        session, change, action=ChangeAction.ADDED, actor=actor, suggestion_id=suggestion_id
    )


def edit_entry(
    *, session: Session, files: KnowledgeFiles, entry_id: str, text: EntryText, actor: str
) -> KnowledgeChange:
    change = files.update(entry_id, text)
    return _record(session, change, action=ChangeAction.EDITED, actor=actor)


def add_phrasing(
    *,
    session: Session,
    files: KnowledgeFiles,
    entry_id: str,
    phrasing: str,
    actor: str,
    suggestion_id: str | None = None,
) -> KnowledgeChange:
    change = files.add_phrasing(entry_id, phrasing)
    return _record(
        session, change, action=ChangeAction.EDITED, actor=actor, suggestion_id=suggestion_id
    )


def remove_entry(
    *, session: Session, files: KnowledgeFiles, entry_id: str, actor: str
) -> KnowledgeChange:
    change = files.remove(entry_id)
    return _record(session, change, action=ChangeAction.REMOVED, actor=actor)


def changes(
    *,
    session: Session,
    entry_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[KnowledgeChange]:
    """The change log, newest first."""
    query = select(KnowledgeChange)
    if entry_id is not None:
        query = query.where(KnowledgeChange.entry_id == entry_id)
    if since is not None:
        query = query.where(KnowledgeChange.created_at >= since)
    query = query.order_by(KnowledgeChange.created_at.desc()).limit(limit)
    return list(session.scalars(query))
