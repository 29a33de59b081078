"""Model backends behind one interface, chosen by `LLM_PROVIDER`."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from shared.core.config import ProviderName, Settings
from shared.core.errors import LLMError, ModelCannotRun
from shared.llm.base import (
    BackendStatus,
    Generation,
    LLMProvider,
    ModelBackend,
    Passage,
    StopGeneration,
    TokenSink,
    Turn,
)
from shared.llm.embedded import (
    EmbeddedProvider,
    default_model_path,
    embedded_available,
    model_name,
    pool_threads,
)
from shared.llm.extractive import ExtractiveProvider
from shared.llm.ollama import OllamaProvider
from shared.llm.openai import OpenAIProvider
from shared.llm.probe import ProbeResult, probe_embedded

__all__ = [
    "BackendStatus",
    "Generation",
    "LLMProvider",
    "ModelBackend",
    "Passage",
    "ProviderChoice",
    "StopGeneration",
    "TokenSink",
    "Turn",
    "choose_provider",
    "create_http_client",
    "create_provider",
    "describe_backend",
]

logger = logging.getLogger(__name__)


def create_http_client(settings: Settings) -> httpx.Client:
    """The process's HTTP client for model backends, with the configured timeouts."""
    timeout = max(settings.ollama_timeout, settings.openai_timeout)
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))


@dataclass(frozen=True)
class ProviderChoice:
    """What a worker answers with, decided once before its pool processes start."""

    name: ProviderName
    model: str
    ok: bool = True
    detail: str = ""


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


def _probe_embedded(settings: Settings, *, pool_size: int) -> ProbeResult:
    try:
        path = settings.embedded_model_path or default_model_path()
    except LLMError as exc:
        return ProbeResult(ok=False, detail=exc.message, seconds=0.0)
    if not path.exists():
        return ProbeResult(ok=False, detail=f"no model file at {path}", seconds=0.0)
    return probe_embedded(
        model_path=path,
        threads=settings.embedded_threads or pool_threads(pool_size),
        timeout=settings.embedded_probe_timeout,
    )


def choose_provider(settings: Settings, *, client: httpx.Client, pool_size: int) -> ProviderChoice:
    """Decide the provider: `auto` is Ollama with its model, else the embedded model if it passes
    its start-up probe, else extractive. An explicit `embedded` that fails its probe is chosen
    all the same, marked not ok: its questions fail with `llm_unavailable`."""
    requested = settings.llm_provider
    embedded_model = model_name(settings.embedded_model_path)
    if requested is ProviderName.AUTO:
        try:
            _ollama(settings, client).ensure_model(timeout=settings.ollama_probe_timeout)
        except LLMError as exc:
            logger.info("LLM_PROVIDER=auto: Ollama not usable (%s)", exc.message)
        else:
            return ProviderChoice(
                ProviderName.OLLAMA,
                settings.ollama_model,
                detail=f"Ollama has {settings.ollama_model}",
            )
        if not embedded_available():
            return ProviderChoice(
                ProviderName.EXTRACTIVE,
                ExtractiveProvider.model,
                detail="no Ollama, and llama.cpp is not installed",
            )
        probe = _probe_embedded(settings, pool_size=pool_size)
        if probe.ok:
            return ProviderChoice(ProviderName.EMBEDDED, embedded_model, detail=probe.detail)
        logger.error(
            "the embedded model cannot run here (%s); answering extractively", probe.detail
        )
        return ProviderChoice(
            ProviderName.EXTRACTIVE,
            ExtractiveProvider.model,
            detail=f"embedded model unusable ({probe.detail}); answering with the entries' text",
        )
    if requested is ProviderName.EMBEDDED:
        if not embedded_available():
            return ProviderChoice(
                requested, embedded_model, ok=False, detail="llama-cpp-python is not installed"
            )
        probe = _probe_embedded(settings, pool_size=pool_size)
        if not probe.ok:
            logger.error("LLM_PROVIDER=embedded cannot run here: %s", probe.detail)
        return ProviderChoice(requested, embedded_model, ok=probe.ok, detail=probe.detail)
    if requested is ProviderName.OLLAMA:
        return ProviderChoice(requested, settings.ollama_model)
    if requested is ProviderName.OPENAI:
        return ProviderChoice(requested, settings.openai_model)
    return ProviderChoice(requested, ExtractiveProvider.model)


class UnavailableProvider:
    """Stands in for a configured model that cannot run here: every answer fails, saying why."""

    generative = True
    rewrites = False

    def __init__(self, choice: ProviderChoice) -> None:
        self.name = choice.name.value
        self.model = choice.model
        self.reason = choice.detail

    def generate(
        self,
        *,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenSink | None = None,
    ) -> Generation:
        raise ModelCannotRun(f"the {self.name} model cannot run on this worker: {self.reason}")

    def rewrite(self, *, history: Sequence[Turn], message: str) -> str:
        raise ModelCannotRun(f"the {self.name} model cannot run on this worker: {self.reason}")

    def status(self) -> BackendStatus:
        return BackendStatus(ok=False, detail=self.reason)


def create_provider(
    settings: Settings,
    *,
    client: httpx.Client,
    choice: ProviderChoice | None = None,
    pool_size: int = 1,
) -> LLMProvider:
    """Build the provider this process generates with (loading an embedded model here)."""
    choice = choice or choose_provider(settings, client=client, pool_size=pool_size)
    if not choice.ok:
        return UnavailableProvider(choice)
    if choice.name is ProviderName.EMBEDDED:
        return EmbeddedProvider(
            model_path=settings.embedded_model_path,
            n_ctx=settings.embedded_n_ctx,
            threads=settings.embedded_threads or pool_threads(pool_size),
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    return _http_provider(choice.name, settings, client) or ExtractiveProvider()


def _http_provider(
    name: ProviderName, settings: Settings, client: httpx.Client
) -> LLMProvider | None:
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
    return None


def describe_backend(
    name: ProviderName, settings: Settings, *, client: httpx.Client
) -> ModelBackend | None:
    """A backend the API can check without loading a model: Ollama or an OpenAI-compatible
    server (None for the embedded and extractive providers, which only workers can judge)."""
    return _http_provider(name, settings, client)
