"""The knowledge base the service answers from."""

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import Services, ServicesDep, require_operator
from shared.knowledge.schemas import KnowledgeInfo
from shared.knowledge.store import force_knowledge_reload

router = APIRouter(
    prefix="/knowledge", tags=["knowledge"], dependencies=[Depends(require_operator)]
)


def _info(services: Services) -> KnowledgeInfo:
    base = services.knowledge.current()
    path = str(services.settings.knowledge_path)
    return KnowledgeInfo(version=base.version, entries=len(base.entries), path=path)


@router.get("", response_model=KnowledgeInfo)
async def knowledge_info(services: ServicesDep) -> KnowledgeInfo:
    """The loaded knowledge base: its content version and size."""
    return await run_in_threadpool(_info, services)


def _reload(services: Services) -> KnowledgeInfo:
    force_knowledge_reload(services.sync_redis)
    services.knowledge.reload()
    return _info(services)


@router.post("/reload", response_model=KnowledgeInfo)
async def reload_knowledge(services: ServicesDep) -> KnowledgeInfo:
    """Re-read the knowledge files now, here and in every worker (edits are also picked up
    by themselves within seconds)."""
    return await run_in_threadpool(_reload, services)
