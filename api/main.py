"""The HTTP API: stores questions, queues them, and answers from what the workers store."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from api.counters import ApiCounters
from api.deps import Services
from api.errors import install_error_handlers
from api.metrics import HttpMetrics, QuestionCollector
from api.middleware import AccessControl, BodySizeLimit, RequestContext
from api.routes import analytics, answer_cache, conversations, inbox, knowledge, questions, system
from api.security import RateLimiter, StreamSlots
from api.waiter import AnswerWaiter
from api.web import routes as web
from api.web.sessions import ConsoleSessions, console_key_ids
from shared import __version__
from shared.answer_cache.service import CachedQuestions, SameWords
from shared.core.config import Settings, get_settings
from shared.core.db import create_db_engine, create_session_factory
from shared.core.logs import configure_logging
from shared.core.network import is_loopback
from shared.core.queue import create_producer
from shared.knowledge import KnowledgeStore
from shared.knowledge.store import knowledge_generation
from shared.llm import create_http_client

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_db_engine(
        settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    sync_redis = SyncRedis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    http = create_http_client(settings)
    # The API reports the knowledge base and forces reloads; the workers embed and search it.
    knowledge = KnowledgeStore(
        settings.knowledge_path,
        check_interval=settings.knowledge_check_interval,
        generation=lambda: knowledge_generation(sync_redis),
    )
    sessions = create_session_factory(engine)
    same_words = (
        SameWords(CachedQuestions(sessions), knowledge.current, settings.handoff_threshold)
        if settings.answer_cache
        else None
    )
    waiter = AnswerWaiter(redis, on_cached=same_words.questions.learn if same_words else None)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        sync_redis=sync_redis,
        producer=create_producer(settings),
        http=http,
        knowledge=knowledge,
        same_words=same_words,
        waiter=waiter,
        limiter=RateLimiter(redis),
        counters=app.state.api_counters,
        console_sessions=ConsoleSessions(redis, key_ids=console_key_ids(settings)),
        streams=StreamSlots(
            per_client=settings.max_streams_per_client,
            total=settings.max_streams_total,
            retry_after=settings.retry_after_seconds,
        ),
    )
    await waiter.start()
    app.state.services = services
    try:
        yield
    finally:
        await waiter.stop()
        await redis.aclose()
        sync_redis.close()
        http.close()
        services.producer.close()
        engine.dispose()


def check_exposure(settings: Settings) -> None:
    """Refuse to serve beyond loopback without keys, unless explicitly allowed."""
    keys = settings.api_key_list or settings.public_key_list
    if keys or settings.allow_unauthenticated or is_loopback(settings.api_host):
        return
    raise SystemExit(
        f"API_HOST={settings.api_host} is reachable from other machines and no keys are set: "
        "set API_KEYS (or ALLOW_UNAUTHENTICATED=true if something else guards the port)"
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    check_exposure(settings)
    app = FastAPI(
        title="Support Assistant",
        version=__version__,
        description="Answers customer questions from your knowledge base with a language model.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # One registry per app: HTTP metrics, and figures read from the database at scrape time.
    registry = CollectorRegistry()
    registry.register(QuestionCollector(lambda: app.state.services))
    app.state.metrics_registry = registry
    app.state.api_counters = ApiCounters(registry)
    install_error_handlers(app)
    app.add_middleware(
        AccessControl,
        settings=settings,
        limiter=lambda: app.state.services.limiter,
        open_paths={"/health", f"{settings.api_prefix}/health", *web.OPEN_PATHS},
        console_sessions=lambda: app.state.services.console_sessions,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetrics, registry=registry)
    app.add_middleware(RequestContext)
    if settings.cors_origin_list:  # outermost: preflight requests carry no API key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Prefer",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Conversation-Token",
                "X-Identity-Token",
            ],
            expose_headers=["Location", "Retry-After", "Preference-Applied", "X-Request-ID"],
        )
    app.include_router(web.router)  # first: `/` is the demo page for a browser
    app.include_router(system.router, include_in_schema=False)
    app.include_router(system.router, prefix=settings.api_prefix)
    app.include_router(system.operators, include_in_schema=False)
    app.include_router(system.operators, prefix=settings.api_prefix)
    app.include_router(conversations.router, prefix=settings.api_prefix)
    app.include_router(questions.router, prefix=settings.api_prefix)
    app.include_router(questions.operators, prefix=settings.api_prefix)
    app.include_router(knowledge.router, prefix=settings.api_prefix)
    app.include_router(answer_cache.router, prefix=settings.api_prefix)
    app.include_router(inbox.router, prefix=settings.api_prefix)
    app.include_router(analytics.router, prefix=settings.api_prefix)
    return app
