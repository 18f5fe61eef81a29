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
        self.prepare, self._normalize = _split_preprocess(preprocess)
        self.tokenizer = open_clip.get_tokenizer(name)
        self.column = column_name(self.model)
        self.dim = int(self.encode_texts(["a photo"]).shape[-1])  # the embedding width

    def _images_to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if images.dtype == torch.uint8:  # from ``prepare``: scale and normalise on the device
            mean, std = (torch.tensor(v, device=self.device).view(1, -1, 1, 1)
                         for v in self._normalize)  # fmt: skip
            images = (images.float() / 255 - mean) / std
        return images

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings (float32, on the device)."""
        tokens = self.tokenizer(texts).to(self.device)
        with self._autocast():
            emb = self.net.encode_text(tokens)
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.startswith("cuda"))

    @torch.inference_mode()
    def score_batch(self, images: torch.Tensor, texts: list[str] | torch.Tensor) -> dict:
        """``images``: (B, 3, H, W), either uint8 from :attr:`prepare` (scaled and normalised
        here, on the device: a quarter of the bytes through the DataLoader) or float from
        :attr:`preprocess`; ``texts``: B captions, or their tokens from :attr:`tokenizer`
        (tokenised in the DataLoader workers). Returns the cosine similarity per pair and the
        L2-normalised embeddings, all as numpy."""
        images = self._images_to_device(images)
        tokens = texts if isinstance(texts, torch.Tensor) else self.tokenizer(texts)
        tokens = tokens.to(self.device, non_blocking=True)
        with self._autocast():
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


def _split_preprocess(preprocess):
    """open_clip's transform is resize, crop, RGB, to-tensor, normalise. Returns ``prepare``
    (the PIL steps, then a uint8 CHW tensor; runs in DataLoader workers) and the normalisation's
    ``(mean, std)``, which :meth:`ClipScorer.score_batch` applies on the device."""
    from torchvision import transforms as T

    steps = list(preprocess.transforms)
    names = [type(step).__name__ for step in steps]
    tensor_at = next(i for i, n in enumerate(names) if n.endswith("ToTensor"))
    (normalize,) = steps[tensor_at + 1 :]
    assert isinstance(normalize, T.Normalize), f"unexpected open_clip transform: {names}"
    return T.Compose([*steps[:tensor_at], T.PILToTensor()]), (
        tuple(normalize.mean),
        tuple(normalize.std),
    )
