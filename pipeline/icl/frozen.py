"""A Frozen-style vision-language model (Tsimpoukelli et al., 2021), and the blind baseline.

A vision encoder (the open_clip visual tower: the mini web's CLIP, a checkpoint of ``curate train
clip``, or any open_clip model) gives one feature per image; a linear map turns it into ``k``
*prefix* embeddings, vectors the size of the language model's word embeddings, which stand in the
prompt where the image stands. The language model is frozen: it is trained by no one here, its
parameters never change; gradients flow *through* it to the prefix, the map and the encoder
(:func:`vlcurate.pipeline.train.frozen.train`). Frozen used an NF-ResNet-50 and a 7B LM with ``k =
2``; the shipped defaults are the mini web's tiny CLIP and SmolLM2-135M
(:mod:`vlcurate.pipeline.icl.lm`).

Everything is a *sequence of parts*: strings, and images as prefix tensors ``(k, H)``. A caption
sample is ``[image, caption]``; an interleaved document is its sentences and images in order; a
few-shot episode is :func:`~vlcurate.pipeline.icl.episodes.prompt_sequence`. :class:`PrefixLM`
embeds such sequences, computes the loss on their text, generates after them and scores completions.

:class:`FrozenICL` and :class:`BlindICL` are the two
:class:`~vlcurate.pipeline.icl.models.ICLModel`\\ s: the model with its images, and the same LM
with the images removed from the prompt (Frozen's blind row: what the text of the prompt alone
gives).
"""

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.icl.episodes import Episode, prompt_sequence
from vlcurate.pipeline.icl.lm import SMOLLM2, load_causal_lm
from vlcurate.pipeline.icl.sources import load_image

Part = str | torch.Tensor  # text, or one image's prefix embeddings (k, H)


@dataclass
class FrozenConfig(Config):
    """What a Frozen-style model is made of (saved with its weights)."""

    section: ClassVar[str] = "frozen"
    clip_model: str = field(
        default="ViT-B-32", metadata={"help": "open_clip model name or config JSON (vision side)"}
    )
    clip_pretrained: str | None = field(
        default="laion2b_s34b_b79k",
        metadata={
            "help": "vision weights: an open_clip tag, a .pt file, a local checkpoint's "
            "name (the demo's: miniweb), or none for random",
            "weights": True,
        },
    )
    lm: str = field(
        default=SMOLLM2, metadata={"help": "frozen causal LM: smollm2, a HF name, or a folder"}
    )
    prefix_tokens: int = field(
        default=2, metadata={"help": "prefix embeddings per image (k)", "min": 1}
    )
    train_vision: bool = field(
        default=True, metadata={"help": "train the vision tower too (Frozen); else only the map"}
    )


class PrefixLM:
    """A frozen causal LM over sequences of text and prefix embeddings."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.embedding = model.get_input_embeddings()
        self.hidden = self.embedding.embedding_dim

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _pieces(self, parts: list[Part]) -> list[tuple[torch.Tensor, list[int] | None]]:
        """Each part as (embeddings (n, H), token ids or None for a prefix). Text after another
        part starts with a space, as it would in running text."""
        out = []
        for i, part in enumerate(parts):
            if isinstance(part, str):
                ids = self.tokens(part if i == 0 else " " + part)
                if ids:
                    t = torch.tensor(ids, device=self.device)
                    out.append((self.embedding(t), ids))
            else:
                out.append((part.to(self.device, self.embedding.weight.dtype), None))
        return out

    def batch(self, sequences: list[list[Part]], max_tokens: int | None = None):
        """Right-padded ``(embeddings (B, T, H), attention (B, T), labels (B, T))``; labels are
        the text's token ids and -100 on prefixes and padding. Sequences are cut at
        ``max_tokens``."""
        rows = []
        for parts in sequences:
            pieces = self._pieces(parts)
            if not pieces:
                raise ValueError("an empty sequence")
            emb = torch.cat([e for e, _ in pieces])
            labels = [x for e, ids in pieces for x in (ids if ids else [-100] * len(e))]
            if max_tokens:
                emb, labels = emb[:max_tokens], labels[:max_tokens]
            rows.append((emb, labels))
        width = max(len(labels) for _, labels in rows)
        emb = torch.zeros(len(rows), width, self.hidden, device=self.device, dtype=rows[0][0].dtype)
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=self.device)
        labels = torch.full((len(rows), width), -100, dtype=torch.long, device=self.device)
        for b, (e, ids) in enumerate(rows):
            emb[b, : len(ids)] = e
            mask[b, : len(ids)] = 1
            labels[b, : len(ids)] = torch.tensor(ids, device=self.device)
        return emb, mask, labels

    def loss(self, sequences: list[list[Part]], max_tokens: int | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over the text tokens (each text token predicted from
        everything before it: images, and the text so far)."""
        emb, mask, labels = self.batch(sequences, max_tokens)
        if not (labels[:, 1:] != -100).any():
            raise ValueError("no text token to predict after the first position")
        return self.model(inputs_embeds=emb, attention_mask=mask, labels=labels).loss

    @torch.inference_mode()
    def generate(self, parts: list[Part], max_new_tokens: int = 5) -> str:
        """Greedy continuation of the sequence, decoded."""
        emb, mask, _ = self.batch([parts])
        out = self.model.generate(
            inputs_embeds=emb,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return self.tokenizer.decode(out[0], skip_special_tokens=True)

    @torch.inference_mode()
    def log_likelihoods(self, parts: list[Part], completions: list[str]) -> list[float]:
        """Sum of the log-probabilities of each completion's tokens after the sequence."""
        out = []
        prompt, _, _ = self.batch([parts])
        for completion in completions:
            ids = self.tokens(" " + completion)
            if not ids:
                out.append(float("-inf"))
                continue
            target = torch.tensor(ids, device=self.device)
            emb = torch.cat([prompt[0], self.embedding(target)])[None]
            logits = self.model(inputs_embeds=emb).logits[0, prompt.shape[1] - 1 : -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            out.append(float(logp[torch.arange(len(ids)), target].sum()))
        return out


class FrozenModel(torch.nn.Module):
    """Vision tower -> linear map -> ``k`` prefix embeddings -> frozen LM (see the module doc).

    ``state_dict`` holds only what trains (``visual.*``, ``project.*``); the LM comes from
    ``config.lm`` every time."""

    def __init__(self, config: FrozenConfig, device: str = "cpu"):
        super().__init__()
        import open_clip

        from vlcurate.pipeline.score.clip import WeightsError, _register, _weights

        self.config = config
        name = _register(config.clip_model)
        weights = _weights(config.clip_pretrained)
        try:
            clip, _, self.preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, device=device
            )
        except Exception as e:
            raise WeightsError(
                f"cannot load the vision tower {config.clip_model!r} with "
                f"pretrained={config.clip_pretrained!r}: {e}"
            ) from e
        self.visual = clip.visual
        self.visual.requires_grad_(config.train_vision)
        lm, tokenizer = load_causal_lm(config.lm, device=device)
        self.lm = PrefixLM(lm, tokenizer)  # not a submodule: never in state_dict or optimizer
        width = int(self.visual.output_dim)
        k, hidden = config.prefix_tokens, self.lm.hidden
        self.project = torch.nn.Linear(width, k * hidden, device=device)
        # Features are L2-normalised and scaled to unit variance per component; the map starts
        # with outputs as spread as the LM's own word embeddings.
        token_std = float(lm.get_input_embeddings().weight.float().std())
        torch.nn.init.normal_(self.project.weight, std=token_std / math.sqrt(width))
        torch.nn.init.zeros_(self.project.bias)

    @property
    def device(self) -> torch.device:
        return self.project.weight.device

    def prefix(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) preprocessed images -> (N, k, H) prefix embeddings."""
        features = self.visual(images.to(self.device))
        features = torch.nn.functional.normalize(features.float(), dim=-1)
        features = features * math.sqrt(features.shape[-1])
        return self.project(features).view(len(images), self.config.prefix_tokens, -1)

    def embed_images(self, sequences: list[list]) -> list[list[Part]]:
        """Sequences of strings and image tensors (3, S, S) -> strings and prefixes; all the
        images of the batch go through the vision tower at once."""
        images = [p for seq in sequences for p in seq if not isinstance(p, str)]
        prefixes = iter(self.prefix(torch.stack(images)) if images else [])
        return [[p if isinstance(p, str) else next(prefixes) for p in seq] for seq in sequences]

    def loss(self, sequences: list[list], max_tokens: int | None = None) -> torch.Tensor:
        """The text's loss given the images before it; see :meth:`PrefixLM.loss`."""
        return self.lm.loss(self.embed_images(sequences), max_tokens)

    def save(self, path) -> None:
        from vlcurate.pipeline.storage import atomic_open

        with atomic_open(str(path), "wb") as f:
            torch.save({"config": asdict(self.config), "state": self.state_dict()}, f)

    @classmethod
    def load(cls, path, device: str = "cpu") -> "FrozenModel":
        """A model saved by :meth:`save` (``final.pt`` of ``curate train frozen``)."""
        saved = torch.load(path, map_location=device, weights_only=False)
        model = cls(FrozenConfig(**saved["config"]), device=device)
        model.load_state_dict(saved["state"])
        return model.eval()


def answer_text(generated: str) -> str:
    """The answer in a generation: up to the first full stop, question mark or line break."""
    for stop in (".", "?", "!", "\n"):
        generated = generated.split(stop, 1)[0]
    return generated.strip()


class _EpisodeLM:
    """Shared by the two ICL models: the prompt as parts, generation and scoring."""

    name = "frozen-lm"
    max_new_tokens = 5

    def parts(self, episode: Episode) -> list[Part]:
        raise NotImplementedError

    def answer(self, episode: Episode) -> str:
        return answer_text(self.lm.generate(self.parts(episode), self.max_new_tokens))

    def score(self, episode: Episode, candidates: list[str]) -> list[float]:
        return self.lm.log_likelihoods(self.parts(episode), candidates)


class FrozenICL(_EpisodeLM):
    """The Frozen-style model on episodes: every image of the prompt becomes its prefix (encoded
    once per ref and cached)."""

    def __init__(self, model: FrozenModel, name: str = "frozen", max_new_tokens: int = 5):
        self.model, self.lm, self.name = model.eval(), model.lm, name
        self.max_new_tokens = max_new_tokens
        self._cache: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def _prefix(self, ref: str) -> torch.Tensor:
        if ref not in self._cache:
            image = self.model.preprocess(load_image(ref))[None]
            self._cache[ref] = self.model.prefix(image)[0]
        return self._cache[ref]

    def parts(self, episode: Episode) -> list[Part]:
        return [
            p if isinstance(p, str) else self._prefix(p["image"]) for p in prompt_sequence(episode)
        ]


class BlindICL(_EpisodeLM):
    """The same language model with the images taken out of the prompt: only the names, the
    instruction and the question are left (Frozen's blind baseline)."""

    def __init__(self, lm: PrefixLM, name: str = "blind", max_new_tokens: int = 5):
        self.lm, self.name, self.max_new_tokens = lm, name, max_new_tokens

    def parts(self, episode: Episode) -> list[Part]:
        return [p for p in prompt_sequence(episode) if isinstance(p, str)]
