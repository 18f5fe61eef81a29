"""The batched CLIP scorer against a direct open_clip forward pass, with a tiny config."""

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from pipeline.score.clip import ClipScorer, WeightsError, column_name

CAPTIONS = ["two red circles on a blue background", "a green triangle", "a photo of a cat",
            "a yellow square above a purple circle", "an astronaut", "coffee", "a horse"]  # fmt: skip


@pytest.fixture(scope="module")
def scorer():
    torch.manual_seed(0)
    return ClipScorer(model="tiny-clip", pretrained=None)


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (80 + i, 96, 3), dtype=np.uint8)) for i in range(n)
    ]


def test_column_name_carries_the_model():
    assert column_name("ViT-B-32") == "clip_vit_b_32_sim"
    assert column_name("ViT-L-14") == "clip_vit_l_14_sim"
    assert column_name("/models/tiny-clip.json") == "clip_tiny_clip_sim"


def test_scores_equal_a_direct_open_clip_forward_pass(scorer):
    pil = images(7)
    batch = torch.stack([scorer.preprocess(im) for im in pil])
    out = scorer.score_batch(batch, CAPTIONS)
    with torch.no_grad():
        image_features = scorer.net.encode_image(batch)
        text_features = scorer.net.encode_text(open_clip.get_tokenizer("tiny-clip")(CAPTIONS))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    expected = (image_features * text_features).sum(-1).numpy()
    np.testing.assert_allclose(out["clip_tiny_clip_sim"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out["image_emb"], axis=1), 1.0, atol=1e-5)
    assert out["image_emb"].shape == out["text_emb"].shape == (7, 64)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_same_results_at_any_batch_size(scorer, batch_size):
    pil = images(64)
    captions = (CAPTIONS * 10)[:64]
    tensors = torch.stack([scorer.preprocess(im) for im in pil])
    whole = scorer.score_batch(tensors, captions)["clip_tiny_clip_sim"]
    parts = [scorer.score_batch(tensors[i : i + batch_size], captions[i : i + batch_size])["clip_tiny_clip_sim"]
             for i in range(0, 64, batch_size)]  # fmt: skip
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-5)


def test_missing_weights_fail_before_any_work(tmp_path):
    with pytest.raises(WeightsError, match="Hugging Face cache"):
        ClipScorer(model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(WeightsError, match="cannot load CLIP"):
        ClipScorer(model="tiny-clip", pretrained=str(tmp_path / "missing.pt"))
