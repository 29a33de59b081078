"""Model backends behind one interface, chosen by `LLM_PROVIDER`."""

import logging

import httpx

from shared.config import ProviderName, Settings
from shared.errors import LLMError
from shared.llm.base import BackendStatus, Generation, LLMProvider
from shared.llm.extractive import ExtractiveProvider
from shared.llm.ollama import OllamaProvider

__all__ = ["BackendStatus", "Generation", "LLMProvider", "create_http_client", "create_provider"]

logger = logging.getLogger(__name__)


def create_http_client(settings: Settings) -> httpx.Client:
    """The process's HTTP client for model backends, with the configured timeouts."""
    return httpx.Client(timeout=httpx.Timeout(settings.ollama_timeout, connect=5.0))


def create_provider(settings: Settings, *, client: httpx.Client) -> LLMProvider:
    """Build the configured provider; `auto`: Ollama when it serves the model, else extractive."""
    ollama = OllamaProvider(
        client=client,
        host=settings.ollama_host,
        model=settings.ollama_model,
        temperature=settings.llm_temperature,
    )
    if settings.llm_provider is ProviderName.OLLAMA:
        return ollama
    if settings.llm_provider is ProviderName.EXTRACTIVE:
        return ExtractiveProvider()
    try:
        ollama.ensure_model(timeout=settings.ollama_probe_timeout)
    except LLMError as exc:
        logger.warning("LLM_PROVIDER=auto: Ollama not usable (%s); using extractive", exc.message)
        return ExtractiveProvider()
    logger.info("LLM_PROVIDER=auto: using Ollama at %s with %s", settings.ollama_host, ollama.model)
    return ollama
