"""The knowledge base the service answers from: its entries, changes to them (recorded, and
reloaded by every process at once), and the suggestions learned from resolved conversations."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from redis.exceptions import RedisError

from api.deps import PRINTABLE, OperatorDep, Services, ServicesDep, require_operator
from shared.answer_cache.service import forget_entries
from shared.core.db import read_scope, session_scope
from shared.core.schemas import ErrorResponse
from shared.knowledge import RetrievalMethod
from shared.knowledge.editing import EntryNotFound, EntryText, KnowledgeFiles
from shared.knowledge.models import KnowledgeChange
from shared.knowledge.schemas import (
    ChangeList,
    ChangeView,
    EntryList,
    EntryRequest,
    EntryView,
    KnowledgeInfo,
    KnowledgeUpdate,
    NewEntryRequest,
)
from shared.knowledge.service import add_entry, changes, edit_entry, remove_entry
from shared.knowledge.store import force_knowledge_reload
from shared.learning import service as learning
from shared.learning.models import SuggestionStatus
from shared.learning.schemas import (
    Approved,
    ApproveRequest,
    RejectRequest,
    SuggestionList,
    SuggestionView,
)

logger = logging.getLogger(__name__)
router = APIRouter(
    prefix="/knowledge",
    tags=["knowledge"],
    dependencies=[Depends(require_operator)],
    responses={
        403: {"model": ErrorResponse, "description": "Not an operator's key."},
        404: {"model": ErrorResponse, "description": "No such entry or suggestion."},
        409: {"model": ErrorResponse, "description": "The suggestion is decided already."},
        422: {"model": ErrorResponse, "description": "Not an entry that reads back the same."},
    },
)


def _info(services: Services) -> KnowledgeInfo:
    base = services.knowledge.current()
    path = str(services.settings.knowledge_path)
    return KnowledgeInfo(version=base.version, entries=len(base.entries), path=path)


@router.get("", response_model=KnowledgeInfo)
async def knowledge_info(services: ServicesDep) -> KnowledgeInfo:
    """The loaded knowledge base: its content version and size."""
    return await run_in_threadpool(_info, services)


def _reload(services: Services) -> str:
    """Re-read the files here, and tell every worker to; the new version. With Redis down the
    change stands all the same: the workers see the files change within
    KNOWLEDGE_CHECK_INTERVAL."""
    try:
        force_knowledge_reload(services.sync_redis)
    except RedisError as exc:
        logger.warning("could not tell the workers to reload the knowledge base: %s", exc)
    return services.knowledge.reload().version


@router.post("/reload", response_model=KnowledgeInfo)
def reload_knowledge(services: ServicesDep) -> KnowledgeInfo:
    """Re-read the knowledge files now, here and in every worker (edits are also picked up
    by themselves within seconds)."""
    _reload(services)
    return _info(services)


# --- entries ------------------------------------------------------------------------------


@router.get("/entries", response_model=EntryList)
def list_entries(
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=300, description="Words to search for.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EntryList:
    """The entries, in file order; with `q`, those that share its words, best first."""
    base = services.knowledge.current()
    if q and q.strip():
        hits = base.search(q, k=limit, method=RetrievalMethod.KEYWORD)
        entries = [hit.entry for hit in hits]
    else:
        entries = base.entries[:limit]
    views = [EntryView.from_entry(entry) for entry in entries]
    return EntryList(version=base.version, entries=views, count=len(views))


@router.get("/entries/{entry_id:path}", response_model=EntryView)
def get_entry(entry_id: str, services: ServicesDep) -> EntryView:
    for entry in services.knowledge.current().entries:
        if entry.id == entry_id:
            return EntryView.from_entry(entry)
    raise EntryNotFound(f"no entry {entry_id}")


def _applied(services: Services, change: KnowledgeChange) -> KnowledgeUpdate:
    view = ChangeView.from_change(change)
    services.counters.knowledge_changes.labels(view.action).inc()
    return KnowledgeUpdate(version=_reload(services), change=view)


def _files(services: Services) -> KnowledgeFiles:
    return KnowledgeFiles(services.settings.knowledge_path)


@router.post("/entries", response_model=KnowledgeUpdate, status_code=201)
def create_entry(
    body: NewEntryRequest, services: ServicesDep, operator: OperatorDep
) -> KnowledgeUpdate:
    """Write a new `Q:`/`A:` entry (into `learned.md` unless `file` says otherwise)."""
    text = EntryText.checked(body.question, body.answer, body.phrasings)
    with session_scope(services.sessions) as session:
        change = add_entry(
            session=session,
            files=_files(services),
            text=text,
            actor=body.agent or operator.identity,
            file=body.file,
        )
    return _applied(services, change)


@router.put("/entries/{entry_id:path}", response_model=KnowledgeUpdate)
def update_entry(
    entry_id: str, body: EntryRequest, services: ServicesDep, operator: OperatorDep
) -> KnowledgeUpdate:
    """Rewrite an entry in place (a new question gives it a new id)."""
    text = EntryText.checked(body.question, body.answer, body.phrasings)
    with session_scope(services.sessions) as session:
        change = edit_entry(
            session=session,
            files=_files(services),
            entry_id=entry_id,
            text=text,
            actor=body.agent or operator.identity,
        )
        forget_entries(session=session, entry_ids=[entry_id])
    return _applied(services, change)


@router.delete("/entries/{entry_id:path}", response_model=KnowledgeUpdate)
def delete_entry(
    entry_id: str,
    services: ServicesDep,
    operator: OperatorDep,
    agent: Annotated[str | None, Query(pattern=PRINTABLE, max_length=200)] = None,
) -> KnowledgeUpdate:
    """Remove an entry from its file."""
    with session_scope(services.sessions) as session:
        change = remove_entry(
            session=session,
            files=_files(services),
            entry_id=entry_id,
            actor=agent or operator.identity,
        )
        forget_entries(session=session, entry_ids=[entry_id])
    return _applied(services, change)


@router.get("/changes", response_model=ChangeList)
def list_changes(
    services: ServicesDep,
    entry_id: Annotated[str | None, Query(pattern=PRINTABLE, max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangeList:
    """Every change made through the service, newest first: who, when, before and after."""
    with read_scope(services.sessions) as session:
        found = changes(session=session, entry_id=entry_id, limit=limit)
        return ChangeList(changes=[ChangeView.from_change(c) for c in found])


# --- suggestions --------------------------------------------------------------------------


@router.get("/suggestions", response_model=SuggestionList)
def list_suggestions(
    services: ServicesDep,
    status: Annotated[SuggestionStatus | None, Query()] = SuggestionStatus.PENDING,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SuggestionList:
    """Answers people gave, proposed as entries, newest first, each with the entries it
    resembles (and the one it nearly repeats)."""
    with read_scope(services.sessions) as session:
        found = learning.list_suggestions(session=session, status=status, limit=limit)
        views = [SuggestionView.from_suggestion(s) for s in found]
    return SuggestionList(suggestions=views, count=len(views))


@router.get("/suggestions/{suggestion_id}", response_model=SuggestionView)
def get_suggestion(suggestion_id: str, services: ServicesDep) -> SuggestionView:
    with read_scope(services.sessions) as session:
        suggestion = learning.get_suggestion(session=session, suggestion_id=suggestion_id)
        return SuggestionView.from_suggestion(suggestion)


@router.post("/suggestions/{suggestion_id}/approve", response_model=Approved)
def approve_suggestion(
    suggestion_id: str,
    services: ServicesDep,
    operator: OperatorDep,
    body: ApproveRequest | None = None,
) -> Approved:
    """Write the suggestion (with the edits sent, if any) into the knowledge files, as a new
    entry or, with `phrasing_of`, as one more phrasing of an entry; every process reloads, and
    the next customer who asks is answered from it."""
    body = body or ApproveRequest()
    with session_scope(services.sessions) as session:
        approval = learning.approve(
            session=session,
            files=_files(services),
            suggestion_id=suggestion_id,
            actor=body.agent or operator.identity,
            question=body.question,
            answer=body.answer,
            phrasing_of=body.phrasing_of,
        )
        view = SuggestionView.from_suggestion(approval.suggestion)
    services.counters.suggestions.labels("approved").inc()
    services.counters.knowledge_changes.labels(approval.change.action).inc()
    return Approved(suggestion=view, version=_reload(services))


@router.post("/suggestions/{suggestion_id}/reject", response_model=SuggestionView)
def reject_suggestion(
    suggestion_id: str,
    services: ServicesDep,
    operator: OperatorDep,
    body: RejectRequest | None = None,
) -> SuggestionView:
    with session_scope(services.sessions) as session:
        suggestion = learning.reject(
            session=session,
            suggestion_id=suggestion_id,
            actor=(body.agent if body else None) or operator.identity,
        )
        view = SuggestionView.from_suggestion(suggestion)
    services.counters.suggestions.labels("rejected").inc()
    return view
