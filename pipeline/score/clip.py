"""CLIP image-text similarity and embeddings with open_clip, in batches.

``model`` is an open_clip model name (``ViT-B-32``), one of the tiny configs shipped in
``model_configs/`` (``tiny-clip``, random weights, for tests and CPU work), or a path to a JSON
model config in open_clip's format. ``pretrained`` is an open_clip tag (``laion2b_s34b_b79k``,
read from the Hugging Face cache, never downloaded when ``HF_HUB_OFFLINE=1``), a local weights
file, the name of a local checkpoint (:mod:`vlcurate.pipeline.score.checkpoints`: the demo
registers the mini web's CLIP as ``miniweb``), or ``None`` for random weights (seeded: the
same in every process). Missing weights fail before any work, saying how to supply them.
"""

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch

from vlcurate.pipeline.score import checkpoints
from vlcurate.pipeline.score.pixels import square

CONFIGS = Path(__file__).resolve().parent / "model_configs"
RANDOM_WEIGHTS_SEED = 0  # pretrained=None: the one random model, everywhere


class WeightsError(RuntimeError):
    """Weights that cannot be loaded: raised before any image is read."""


def _weights(pretrained: str | None) -> str | None:
    """A local checkpoint's name -> its file; anything else as given."""
    try:
        return checkpoints.resolve(pretrained)
    except checkpoints.CheckpointError as e:
        raise WeightsError(str(e)) from e


@contextmanager
def _seeded(random_weights: bool):
    """Random weights from :data:`RANDOM_WEIGHTS_SEED`, the same in every process and on every
    resume (the model is built on the CPU, then moved); the caller's random state is kept."""
    if not random_weights:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        yield


def column_name(model: str) -> str:
    """``ViT-B-32`` -> ``clip_vit_b_32_sim``: the score column carries the model."""
    stem = Path(model).stem if model.endswith(".json") else model
    return "clip_" + re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") + "_sim"


def _register(model: str) -> str:
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
        name = _register(self.model)
        weights = _weights(self.pretrained)
        try:
            with _seeded(weights is None):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=weights, device=self.device
                )
        except Exception as e:  # a missing tag in an offline cache, a bad file, a wrong name
            raise WeightsError(
                f"cannot load CLIP {self.model!r} with pretrained={self.pretrained!r}: {e}. "
                "Put the weights in the Hugging Face cache (huggingface-cli download on a "
                "machine with network, then copy ~/.cache/huggingface), pass a local .pt/"
                ".safetensors file as pretrained, name a local checkpoint (registered: "
                f"{', '.join(checkpoints.names()) or 'none'}), or use pretrained=null for random "
                "weights."
            ) from e
        self.net = model.eval()
        self.preprocess = preprocess
        self._normalize = _normalization(preprocess)
        self._buffer = None  # _staging's
        self.image_size, self.squash = _framing(preprocess)  # the side the tower sees
        self.tokenizer = open_clip.get_tokenizer(name)
        self.column = column_name(self.model)
        self.dim = int(self.encode_texts(["a photo"]).shape[-1])  # the embedding width

    def _images_to_device(self, images: torch.Tensor) -> torch.Tensor:
        """The tower's input: float (B, 3, H, W) from :attr:`preprocess` as it is, or a batch
        of the reading path, uint8 (B, S, S, 3) channels last, brought to the tower's side when
        S differs (on a GPU an antialiased bicubic resize, clamped like an 8-bit image; on the
        CPU OpenCV's, as the workers do it, several times cheaper there), scaled and
        normalised here, on the device: a quarter of the bytes through the DataLoader."""
        images = images.to(self.device, non_blocking=True)
        if images.dtype != torch.uint8:
            return images
        mean, std = (torch.tensor(v, device=self.device) for v in self._normalize)
        scale, shift = 1 / (255 * std), -mean / std  # (x / 255 - mean) / std as one multiply-add
        if images.shape[1] != self.image_size and images.device.type == "cpu":
            images = torch.from_numpy(
                np.stack([square(i, self.image_size) for i in images.numpy()])
            )
        if images.shape[1] == self.image_size:  # normalised channels last, in a reused buffer
            x = self._staging(images.shape)
            x.copy_(images)
            shift, scale = (v.expand(images.shape[1:]).contiguous() for v in (shift, scale))
            torch.addcmul(shift, x, scale, out=x)  # a whole image's pattern: 3.5x a (3,) one
            return x.permute(0, 3, 1, 2)  # the tower reads it as NCHW, channels last in memory
        size = (self.image_size, self.image_size)
        x = torch.nn.functional.interpolate(
            images.permute(0, 3, 1, 2).float(),
            size=size,
            mode="bicubic",
            antialias=True,
            align_corners=False,
        ).clamp_(0, 255)
        return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1), out=x)

    def _staging(self, shape: torch.Size) -> torch.Tensor:
        """A float32 buffer of ``shape`` on the device, kept between batches: a new one per
        batch cost more than the conversion itself on a CPU (fresh pages, zeroed as touched).
        Reusing it is safe: work on one device runs in order."""
        if (
            self._buffer is None
            or self._buffer.shape[1:] != shape[1:]
            or len(self._buffer) < shape[0]
        ):
            self._buffer = torch.empty(shape, dtype=torch.float32, device=self.device)
        return self._buffer[: shape[0]]

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings (float32, on the device)."""
        tokens = self.tokenizer(texts).to(self.device)
        with self._autocast():
            emb = self._encode_text(tokens)
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def _encode_text(self, tokens: torch.Tensor, group: int = 64) -> torch.Tensor:
        """``net.encode_text``, but each group of ``group`` captions of similar length runs only
        up to its longest caption, not all 77 positions: CLIP's text tower is causal and pools
        at the end-of-text token, so the padding never reaches the pooled feature and the result
        is the same (tested), at a fraction of the work for alt text (a dozen tokens, a few
        long). Other text towers run whole."""
        net = self.net
        trimmable = (
            isinstance(net, open_clip.CLIP)
            and getattr(net, "text_pool_type", None) == "argmax"
            and getattr(net, "attn_mask", None) is not None
        )
        if not trimmable:
            return net.encode_text(tokens)
        lengths = (tokens != 0).sum(dim=1)
        order = torch.argsort(lengths)
        parts = [self._encode_trimmed(tokens[idx]) for idx in order.split(group)]
        out = torch.empty(
            (len(tokens), parts[0].shape[1]), dtype=parts[0].dtype, device=parts[0].device
        )
        out[order] = torch.cat(parts)
        return out

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.startswith("cuda"))

    def _encode_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        net = self.net
        n = max(1, int((tokens != 0).sum(dim=1).max()))
        tokens = tokens[:, :n]
        cast_dtype = net.transformer.get_cast_dtype()
        x = net.token_embedding(tokens).to(cast_dtype) + net.positional_embedding[:n].to(cast_dtype)
        x = net.ln_final(net.transformer(x, attn_mask=net.attn_mask[:n, :n]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        if net.text_projection is None:
            return x
        if isinstance(net.text_projection, torch.nn.Linear):
            return net.text_projection(x)
        return x @ net.text_projection

    @torch.inference_mode()
    def score_batch(self, images: torch.Tensor, texts: list[str] | torch.Tensor) -> dict:
        """``images``: uint8 (B, S, S, 3) from the reading path (:mod:`.pixels`), or float
        (B, 3, H, W) from :attr:`preprocess` (see :meth:`_images_to_device`); ``texts``: B
        captions, or their tokens from :attr:`tokenizer` (tokenised in the DataLoader
        workers). Returns the cosine similarity per pair and the
        L2-normalised embeddings, all as numpy."""
        images = self._images_to_device(images)
        tokens = texts if isinstance(texts, torch.Tensor) else self.tokenizer(texts)
        tokens = tokens.to(self.device, non_blocking=True)
        with self._autocast():
            image_emb = self.net.encode_image(images)  # (B, D)
            text_emb = self._encode_text(tokens)  # (B, D)
        image_emb = torch.nn.functional.normalize(image_emb.float(), dim=-1)
        text_emb = torch.nn.functional.normalize(text_emb.float(), dim=-1)
        similarity = (image_emb * text_emb).sum(dim=-1)  # (B,)
        return {
            self.column: similarity.cpu().numpy().astype(np.float32),
            "image_emb": image_emb.cpu().numpy(),
            "text_emb": text_emb.cpu().numpy(),
        }


def _normalization(preprocess) -> tuple[tuple, tuple]:
    """The ``(mean, std)`` of open_clip's transform (resize, crop, RGB, to-tensor, normalise),
    which :meth:`ClipScorer._images_to_device` applies on the device."""
    from torchvision import transforms as T

    normalize = preprocess.transforms[-1]
    names = [type(step).__name__ for step in preprocess.transforms]
    assert isinstance(normalize, T.Normalize), f"unexpected open_clip transform: {names}"
    return tuple(normalize.mean), tuple(normalize.std)


def _framing(preprocess) -> tuple[int, bool]:
    """``(side, squash)`` of open_clip's transform: its center crop's side and ``False``
    (``Resize(S)`` of the shorter side, then ``CenterCrop(S)``), or a square resize's side and
    ``True`` (``Resize((S, S))``, open_clip's ``squash`` mode). The reading path reproduces
    either (:func:`~vlcurate.pipeline.score.pixels.square`); any other is refused."""
    steps = {type(t).__name__: t for t in preprocess.transforms}
    resize, crop = steps.get("Resize"), steps.get("CenterCrop")
    size = getattr(resize, "size", None)
    if isinstance(size, list | tuple) and len(size) == 1:
        size = size[0]
    if isinstance(size, int) and crop is not None and crop.size[0] == crop.size[1] == size:
        return size, False
    if isinstance(size, list | tuple) and len(size) == 2 and size[0] == size[1]:
        return size[0], True
    names = [type(t).__name__ for t in preprocess.transforms]
    raise WeightsError(f"the reading path cannot reproduce open_clip's transform {names}")
