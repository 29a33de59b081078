"""Model backends behind one interface, chosen by `LLM_PROVIDER`."""

import logging
import os

import httpx

from shared.core.config import ProviderName, Settings
from shared.core.errors import LLMError
from shared.llm.base import (
    BackendStatus,
    Generation,
    LLMProvider,
    ModelBackend,
    StopGeneration,
    TokenSink,
)
from shared.llm.embedded import EmbeddedProvider, embedded_available
from shared.llm.extractive import ExtractiveProvider
from shared.llm.ollama import OllamaProvider
from shared.llm.openai import OpenAIProvider

__all__ = [
    "BackendStatus",
    "Generation",
    "LLMProvider",
    "ModelBackend",
    "StopGeneration",
    "TokenSink",
    "create_http_client",
    "create_provider",
    "describe_backend",
    "resolve_provider",
]

logger = logging.getLogger(__name__)


def create_http_client(settings: Settings) -> httpx.Client:
    """The process's HTTP client for model backends, with the configured timeouts."""
    timeout = max(settings.ollama_timeout, settings.openai_timeout)
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))


def _ollama(settings: Settings, client: httpx.Client) -> OllamaProvider:
    return OllamaProvider(
        client=client,
        host=settings.ollama_host,
        model=settings.ollama_model,
        temperature=settings.llm_temperature,
        num_ctx=settings.ollama_num_ctx,
        max_tokens=settings.llm_max_tokens,
        keep_alive=settings.ollama_keep_alive,
    )


def resolve_provider(settings: Settings, *, client: httpx.Client) -> ProviderName:
    """The provider to use; `auto` is Ollama with its model, else embedded if installed, else
    extractive."""
    if settings.llm_provider is not ProviderName.AUTO:
        return settings.llm_provider
    try:
        _ollama(settings, client).ensure_model(timeout=settings.ollama_probe_timeout)
    except LLMError as exc:
        fallback = ProviderName.EMBEDDED if embedded_available() else ProviderName.EXTRACTIVE
        logger.info("LLM_PROVIDER=auto: Ollama not usable (%s); using %s", exc.message, fallback)
        return fallback
    logger.info("LLM_PROVIDER=auto: using Ollama at %s with %s", settings.ollama_host,
                settings.ollama_model)  # fmt: skip
    return ProviderName.OLLAMA


def create_provider(settings: Settings, *, client: httpx.Client) -> LLMProvider:
    """Build the provider this process generates with (loading an embedded model here)."""
    return _build(resolve_provider(settings, client=client), settings, client)


def _build(name: ProviderName, settings: Settings, client: httpx.Client) -> LLMProvider:
    if name is ProviderName.OLLAMA:
        return _ollama(settings, client)
    if name is ProviderName.OPENAI:
        return OpenAIProvider(
            client=client,
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    if name is ProviderName.EMBEDDED:
        threads = settings.embedded_threads or max(
            1, (os.cpu_count() or 1) // settings.worker_concurrency
        )
        return EmbeddedProvider(
            model_path=settings.embedded_model_path,
            n_ctx=settings.embedded_n_ctx,
            threads=threads,
        )
    return ExtractiveProvider()


class EmbeddedBackend:
    """What the API knows of the embedded model: the workers load it, the API does not."""

    name = "embedded"

    def __init__(self, settings: Settings) -> None:
        path = settings.embedded_model_path
        self.model = path.stem if path else "gemma-3-270m-q4_k_m"
        self.path = path

    def status(self) -> BackendStatus:
        if not embedded_available():
            return BackendStatus(ok=False, detail="llama-cpp-python is not installed")
        if self.path is not None and not self.path.exists():
            return BackendStatus(ok=False, detail=f"EMBEDDED_MODEL_PATH {self.path} is missing")
        return BackendStatus(ok=True, detail=f"llama.cpp runs {self.model} in each worker")


def describe_backend(settings: Settings, *, client: httpx.Client) -> ModelBackend:
    """The configured backend as the API sees it: name, model and a status check, no model load."""
    name = resolve_provider(settings, client=client)
    if name is ProviderName.EMBEDDED:
        return EmbeddedBackend(settings)
    return _build(name, settings, client)
