"""What routes depend on: the process's long-lived services, created in the lifespan."""

from dataclasses import dataclass
from typing import Annotated

import httpx
from celery import Celery
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.question_events import QuestionEvents
from shared.config import Settings
from shared.llm import LLMProvider


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    producer: Celery
    http: httpx.Client
    provider: LLMProvider
    events: QuestionEvents


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
