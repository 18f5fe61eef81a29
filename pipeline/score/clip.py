"""CLIP image-text similarity and embeddings with open_clip, in batches.

``model`` is an open_clip model name (``ViT-B-32``), one of the tiny configs shipped in
``model_configs/`` (``tiny-clip``, random weights, for tests and CPU work), or a path to a JSON
model config in open_clip's format. ``pretrained`` is an open_clip tag (``laion2b_s34b_b79k``,
read from the Hugging Face cache, never downloaded when ``HF_HUB_OFFLINE=1``), a local weights
file, or ``None`` for random weights. Missing weights fail before any work, saying how to supply
them.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

CONFIGS = Path(__file__).resolve().parent / "model_configs"


class WeightsError(RuntimeError):
    """Weights that cannot be loaded: raised before any image is read."""


def column_name(model: str) -> str:
    """``ViT-B-32`` -> ``clip_vit_b_32_sim``: the score column carries the model."""
    stem = Path(model).stem if model.endswith(".json") else model
    return "clip_" + re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") + "_sim"


def _register(model: str) -> str:
    import open_clip

    open_clip.add_model_config(CONFIGS)
    if model.endswith(".json"):
        open_clip.add_model_config(model)
        return Path(model).stem
    return model


@dataclass
class ClipScorer:
    model: str = field(default="ViT-B-32", metadata={"help": "open_clip name or config JSON"})
    pretrained: str | None = field(
        default="laion2b_s34b_b79k", metadata={"help": "open_clip tag, weights file, or null"}
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda"})

    def __post_init__(self):
        import open_clip

        name = _register(self.model)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=self.pretrained, device=self.device
            )
        except Exception as e:  # a missing tag in an offline cache, a bad file, a wrong name
            raise WeightsError(
                f"cannot load CLIP {self.model!r} with pretrained={self.pretrained!r}: {e}. "
                "Put the weights in the Hugging Face cache (huggingface-cli download on a "
                "machine with network, then copy ~/.cache/huggingface), pass a local .pt/"
                ".safetensors file as pretrained, or use pretrained=null for random weights."
            ) from e
        self.net = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(name)
        self.column = column_name(self.model)

    @torch.inference_mode()
    def score_batch(self, images: torch.Tensor, texts: list[str]) -> dict:
        """``images``: (B, 3, H, W), already preprocessed; ``texts``: B captions. Returns the
        cosine similarity per pair and the L2-normalised embeddings, both as numpy."""
        images = images.to(self.device, non_blocking=True)
        tokens = self.tokenizer(texts).to(self.device)
        autocast = torch.autocast(
            "cuda", dtype=torch.float16, enabled=self.device.startswith("cuda")
        )
        with autocast:
            image_emb = self.net.encode_image(images)  # (B, D)
            text_emb = self.net.encode_text(tokens)  # (B, D)
        image_emb = torch.nn.functional.normalize(image_emb.float(), dim=-1)
        text_emb = torch.nn.functional.normalize(text_emb.float(), dim=-1)
        similarity = (image_emb * text_emb).sum(dim=-1)  # (B,)
        return {
            self.column: similarity.cpu().numpy().astype(np.float32),
            "image_emb": image_emb.cpu().numpy(),
            "text_emb": text_emb.cpu().numpy(),
        }
