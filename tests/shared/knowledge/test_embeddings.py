import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared.core.errors import LLMError, LLMUnavailable
from shared.knowledge.embeddings import (
    EmbeddingCache,
    OllamaEmbedder,
    minilm_embedder,
    mpnet_embedder,
)


def _ollama(handler) -> OllamaEmbedder:  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OllamaEmbedder(client=client, host="http://ollama.test", model="nomic-embed-text")


def test_ollama_embed_batches_and_normalises() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        vectors = [[3.0, 4.0] for _ in body["input"]]
        return httpx.Response(200, json={"model": body["model"], "embeddings": vectors})

    embedder = _ollama(handler)
    embedder.batch_size = 2
    vectors = embedder.embed(["a", "b", "c"])
    assert [b["input"] for b in seen] == [["a", "b"], ["c"]]
    assert str(seen[0]["model"]) == "nomic-embed-text"
    np.testing.assert_allclose(vectors, [[0.6, 0.8]] * 3, rtol=1e-6)


def test_ollama_embed_errors_are_app_errors() -> None:
    missing = _ollama(lambda r: httpx.Response(404, json={"error": "model not found"}))
    with pytest.raises(LLMError, match="ollama pull nomic-embed-text"):
        missing.embed(["a"])

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LLMUnavailable):
        _ollama(refuse).embed(["a"])


@pytest.mark.parametrize("make", [minilm_embedder, lambda: mpnet_embedder(cache_dir=None)])
def test_embedders_put_paraphrases_closer_than_unrelated_text(make) -> None:  # type: ignore[no-untyped-def]
    embedder = make()
    refund, money_back, weather = embedder.embed(
        ["What is your refund policy?", "Can I get my money back?", "Will it rain tomorrow?"]
    )
    assert np.linalg.norm(refund) == pytest.approx(1.0, abs=1e-4)
    assert refund @ money_back > refund @ weather + 0.2


def test_batches_come_back_in_the_order_asked() -> None:
    embedder = mpnet_embedder(cache_dir=None)
    texts = ["a much longer sentence about returning an item for a refund", "hi", "shipping"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-3)


def test_cache_embeds_each_text_once(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    class Counting:
        name = "counting"

        def embed(self, texts, *, progress=None):  # type: ignore[no-untyped-def]
            calls.append(list(texts))
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    cache = EmbeddingCache(tmp_path)
    cache.embed(Counting(), ["a", "b"])
    again = EmbeddingCache(tmp_path).embed(Counting(), ["b", "a", "c"])
    assert calls == [["a", "b"], ["c"]]
    assert again.shape == (3, 4)
    assert EmbeddingCache(tmp_path).missing(Counting(), ["a", "d"]) == 1
