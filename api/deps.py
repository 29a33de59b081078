"""What routes depend on: the process's long-lived services, created in the lifespan, and who
is calling."""

from dataclasses import dataclass
from typing import Annotated

import httpx
from celery import Celery
from fastapi import Depends, Header, Request
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.counters import ApiCounters
from api.security import Principal, RateLimiter, Role, StreamSlots, decode_identity
from api.waiter import AnswerWaiter
from api.web.sessions import ConsoleSessions
from shared.answer_cache.service import SameWords
from shared.core.config import Settings
from shared.core.errors import Forbidden
from shared.knowledge import KnowledgeStore

# What a text in a query string may hold: no control characters (PostgreSQL refuses NUL in a
# string, and none belongs in a name or a search).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    sync_redis: SyncRedis
    producer: Celery
    http: httpx.Client
    knowledge: KnowledgeStore
    same_words: SameWords | None  # first messages answered on arrival; None: ANSWER_CACHE off
    waiter: AnswerWaiter
    limiter: RateLimiter
    streams: StreamSlots
    counters: ApiCounters
    console_sessions: ConsoleSessions


async def get_services(request: Request) -> Services:
    # Dependencies that never block are `async`: FastAPI runs a plain `def` one in the thread
    # pool, a hop per dependency per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request) -> Principal:
    """Who is calling, as the access middleware found out."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # an open path: nothing to act on behalf of
        raise Forbidden("this call needs a key")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_operator(principal: PrincipalDep) -> Principal:
    """Everything but the customer's own conversations is for the support team's keys."""
    if principal.role is not Role.OPERATOR:
        raise Forbidden("this needs an operator's key (API_KEYS); a public key cannot")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]


async def get_customer(
    services: ServicesDep,
    x_identity_token: Annotated[
        str | None,
        Header(description="A signed identity token from the company's backend (JWT, HS256)."),
    ] = None,
) -> str | None:
    """The signed-in customer's id, when the widget passes an identity token (401 if forged or
    expired)."""
    if x_identity_token is None:
        return None
    return decode_identity(x_identity_token, secret=services.settings.identity_secret)


CustomerDep = Annotated[str | None, Depends(get_customer)]
