"""Models for few-shot episodes: one interface for interleaved prompts, and baselines.

A model is anything with a ``name`` and two methods (:class:`ICLModel`):

- ``answer(episode) -> str``: generate the answer to the episode's query (scored by
  :func:`~vlcurate.pipeline.icl.episodes.exact_match`, as Frozen scores it);
- ``score(episode, candidates) -> list[float]``: one score per candidate answer, higher is
  better (e.g. the log-likelihood of each completion), for ranked / multiple-choice evaluation.

A vision-language model (Frozen, Flamingo/OpenFlamingo, IDEFICS, ...) plugs in through a small
adapter that turns :func:`~vlcurate.pipeline.icl.episodes.prompt_sequence` (images opened
with :func:`~vlcurate.pipeline.icl.sources.load_image`) into the model's own
interleaved input::

    class MyVLM:
        name = "my-vlm"

        def __init__(self, model, processor):
            self.model, self.processor = model, processor

        def _inputs(self, episode, completion=""):
            images, text = [], []
            for part in prompt_sequence(episode):
                if isinstance(part, dict):          # {"image": ref}
                    images.append(load_image(part["image"]))
                    text.append("<image>")
                else:
                    text.append(part)
            return self.processor(images=images, text=" ".join(text) + completion)

        def answer(self, episode):
            return self.model.generate(**self._inputs(episode), max_new_tokens=5)

        def score(self, episode, candidates):
            return [self.model.log_likelihood(**self._inputs(episode, " " + c))
                    for c in candidates]

Baselines here: :class:`Oracle` (checks the harness), :class:`Chance` (a random candidate) and
:class:`ClipPrototype` (nearest class prototype in CLIP's image space: what a metric-learning
few-shot learner does without any language model).
"""

import random
from typing import Protocol, runtime_checkable

from vlcurate.pipeline.icl.episodes import Episode, exact_match
from vlcurate.pipeline.icl.sources import load_image


@runtime_checkable
class ICLModel(Protocol):
    """An in-context learner over interleaved image-text prompts (see the module doc)."""

    name: str

    def answer(self, episode: Episode) -> str:
        """The generated answer to the episode's query."""
        ...

    def score(self, episode: Episode, candidates: list[str]) -> list[float]:
        """One score per candidate answer, higher is better."""
        ...


class Oracle:
    """Knows ``episode.answer``: answers it, and scores it 1 (every other candidate 0). Only for
    checking the harness (it must reach 100%)."""

    name = "oracle"

    def answer(self, episode: Episode) -> str:
        return episode.answer

    def score(self, episode: Episode, candidates: list[str]) -> list[float]:
        return [1.0 if exact_match(c, episode.answer) else 0.0 for c in candidates]


class Chance:
    """A uniformly random candidate; the same episode id and seed give the same answer.

    ``answer`` draws among ``episode.candidates`` (the bound names), so it is at ``1 / ways`` on
    open-ended episodes; on fast-VQA episodes (whose answers are attribute values, not names) it
    never matches. ``score`` gives uniform random scores, the answer's the highest."""

    name = "chance"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _rng(self, episode: Episode) -> random.Random:
        return random.Random(f"chance-{self.seed}-{episode.id}")  # str seeds are stable

    def score(self, episode: Episode, candidates: list[str]) -> list[float]:
        rng = self._rng(episode)
        return [rng.random() for _ in candidates]

    def answer(self, episode: Episode) -> str:
        if not episode.candidates:
            return ""
        scores = self.score(episode, episode.candidates)
        return episode.candidates[max(range(len(scores)), key=scores.__getitem__)]


class ClipPrototype:
    """Nearest prototype in CLIP's image space (a prototypical-network baseline, no language).

    The support images and the query are embedded with ``scorer.net.encode_image`` (L2-normalised;
    embeddings are cached by ref, so an image shared by episodes is encoded once); the support
    embeddings of each name are averaged (the prototype, re-normalised) and the answer is the
    name whose prototype has the highest cosine similarity to the query. ``score`` returns those
    similarities (``-inf`` for a candidate with no support image).

    Fast-VQA episodes (``episode.question`` set) ask about an attribute of the named object, which
    a prototype cannot answer: ``answer`` returns ``""`` (always wrong) and ``score`` zeros.
    Frozen reports a blind (language-only) baseline there instead; that one comes with the
    language model.
    """

    name = "clip-prototype"

    def __init__(self, scorer, batch_size: int = 64):
        self.scorer = scorer
        self.batch_size = batch_size
        self._cache: dict[str, object] = {}  # ref -> (D,) normalised embedding (torch, CPU)

    def embed(self, refs: list[str]):
        """(len(refs), D) L2-normalised image embeddings (torch float32, CPU)."""
        import torch

        missing = list(dict.fromkeys(r for r in refs if r not in self._cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            batch = torch.stack([self.scorer.preprocess(load_image(r)) for r in chunk])
            with torch.inference_mode():
                emb = self.scorer.net.encode_image(batch.to(self.scorer.device))
                emb = torch.nn.functional.normalize(emb.float(), dim=-1).cpu()
            self._cache.update(zip(chunk, emb, strict=True))
        return torch.stack([self._cache[r] for r in refs])

    def score(self, episode: Episode, candidates: list[str]) -> list[float]:
        import torch

        if episode.question is not None:
            return [0.0 for _ in candidates]
        refs = [s["ref"] for s in episode.support]
        emb = self.embed([*refs, episode.query])
        support, query = emb[:-1], emb[-1]
        out = []
        for name in candidates:
            rows = [i for i, s in enumerate(episode.support) if s["name"] == name]
            if not rows:
                out.append(float("-inf"))
                continue
            prototype = torch.nn.functional.normalize(support[rows].mean(dim=0), dim=-1)
            out.append(float(prototype @ query))
        return out

    def answer(self, episode: Episode) -> str:
        if episode.question is not None or not episode.candidates:
            return ""
        scores = self.score(episode, episode.candidates)
        return episode.candidates[max(range(len(scores)), key=scores.__getitem__)]
