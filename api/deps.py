"""What routes depend on: the process's long-lived services, created in the lifespan."""

from dataclasses import dataclass
from typing import Annotated

import httpx
from celery import Celery
from fastapi import Depends, Request
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.waiter import AnswerWaiter
from shared.core.config import Settings
from shared.knowledge import KnowledgeStore


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
    waiter: AnswerWaiter


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
