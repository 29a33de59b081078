"""The answer cache, for operators: what is cached, how often each answer was given again, and
removing answers (one, those citing an entry, or all). Operators' keys only."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import PRINTABLE, ServicesDep, require_operator
from shared.answer_cache.models import CachedAnswerRow
from shared.answer_cache.schemas import CachedAnswerList, CachedAnswerView, Purged
from shared.answer_cache.service import list_cached, purge
from shared.core.db import read_scope, session_scope
from shared.core.errors import AppError
from shared.core.schemas import ErrorResponse

router = APIRouter(
    prefix="/answer-cache",
    tags=["answer cache"],
    dependencies=[Depends(require_operator)],
    responses={403: {"model": ErrorResponse, "description": "Not an operator's key."}},
)


MAX_ID = 2**31 - 1  # the largest id the column holds (a 32-bit integer on PostgreSQL)


class CachedAnswerNotFound(AppError):
    status_code = 404
    code = "cached_answer_not_found"


@router.get("", response_model=CachedAnswerList)
def list_answers(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CachedAnswerList:
    """Cached answers, newest first."""
    with read_scope(services.sessions) as session:
        listing = list_cached(session=session, limit=limit, offset=offset)
        views = [CachedAnswerView.from_row(*row) for row in listing.rows]
    return CachedAnswerList(answers=views, total=listing.total)


@router.delete("", response_model=Purged)
def purge_answers(
    services: ServicesDep,
    entry_id: Annotated[
        str | None,
        Query(pattern=PRINTABLE, max_length=300, description="Only answers citing this entry."),
    ] = None,
) -> Purged:
    """Remove every cached answer, or those citing `entry_id`."""
    with session_scope(services.sessions) as session:
        return Purged(removed=purge(session=session, entry_id=entry_id))


@router.delete("/{cache_id}", response_model=Purged, responses={404: {"model": ErrorResponse}})
def remove_answer(cache_id: Annotated[int, Path(ge=1, le=MAX_ID)], services: ServicesDep) -> Purged:
    """Remove one cached answer."""
    with session_scope(services.sessions) as session:
        if session.get(CachedAnswerRow, cache_id) is None:
            raise CachedAnswerNotFound(f"no cached answer {cache_id}")
        return Purged(removed=purge(session=session, cache_id=cache_id))
