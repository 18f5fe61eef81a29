"""The batched CLIP scorer against a direct open_clip forward pass, with a tiny config."""

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from vlcurate.pipeline.score.clip import ClipScorer, WeightsError, column_name

CAPTIONS = [
    "two red circles on a blue background",
    "a green triangle",
    "a photo of a cat",
    "a yellow square above a purple circle",
    "an astronaut",
    "coffee",
    "a horse",
]


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


def test_uint8_batches_from_the_workers_equal_open_clips_own_transform(scorer):
    """The same pixels as uint8 channels last (what the workers send), normalised on the device,
    give what open_clip's float transform gives, and pre-tokenised captions what raw ones give."""
    pil = images(7)
    from_floats = scorer.score_batch(torch.stack([scorer.preprocess(im) for im in pil]), CAPTIONS)
    resize, crop = scorer.preprocess.transforms[:2]
    uint8 = torch.stack([torch.from_numpy(np.array(crop(resize(im)))) for im in pil])
    assert uint8.dtype == torch.uint8 and uint8.shape[1:] == (64, 64, 3)
    from_uint8 = scorer.score_batch(uint8, scorer.tokenizer(CAPTIONS))
    for key in ("clip_tiny_clip_sim", "image_emb", "text_emb"):
        np.testing.assert_allclose(from_uint8[key], from_floats[key], rtol=0, atol=1e-6)


def test_text_trimmed_to_the_longest_caption_equals_the_full_77_tokens(scorer):
    captions = ["", "a", "a red circle", " ".join(["word"] * 200), *CAPTIONS]
    tokens = scorer.tokenizer(captions)
    with torch.no_grad():
        full = scorer.net.encode_text(tokens)
        short = scorer.net.encode_text(scorer.tokenizer(["a cat", "a dog on a mat"]))
        trimmed = scorer._encode_text(tokens, group=3)  # groups of similar length
        trimmed_short = scorer._encode_text(scorer.tokenizer(["a cat", "a dog on a mat"]))
    np.testing.assert_allclose(trimmed.numpy(), full.numpy(), atol=1e-5)
    np.testing.assert_allclose(trimmed_short.numpy(), short.numpy(), atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_same_results_at_any_batch_size(scorer, batch_size):
    pil = images(64)
    captions = (CAPTIONS * 10)[:64]
    tensors = torch.stack([scorer.preprocess(im) for im in pil])
    whole = scorer.score_batch(tensors, captions)["clip_tiny_clip_sim"]
    parts = [
        scorer.score_batch(tensors[i : i + batch_size], captions[i : i + batch_size])[
            "clip_tiny_clip_sim"
        ]
        for i in range(0, 64, batch_size)
    ]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-5)


def test_missing_weights_fail_before_any_work(tmp_path):
    with pytest.raises(WeightsError, match="Hugging Face cache"):
        ClipScorer(model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(WeightsError, match="cannot load CLIP"):
        ClipScorer(model="tiny-clip", pretrained=str(tmp_path / "missing.pt"))
