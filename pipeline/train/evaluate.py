"""Evaluate a CLIP: image-text retrieval recall@k and zero-shot classification accuracy.

``scorer`` is a :class:`vlcurate.pipeline.score.clip.ClipScorer` (an open_clip model in eval mode,
its eval transform and tokenizer). Images are encoded by :mod:`vlcurate.pipeline.train.encode`
(re-exported here) from img2dataset-style WebDataset shards or, for zero-shot, from a folder
with one subfolder per class; embeddings are L2-normalised, so a dot product is a cosine.

- :func:`retrieval`: each image against every caption of the set and back (recall@1/5/10,
  as in CLIP's and open_clip's COCO/Flickr retrieval evaluation, one caption per image).
- :func:`zeroshot`: CLIP's zero-shot classifier, the mean of each class's normalised prompt
  embeddings (``"a photo of a {}."``, ...), renormalised; top-1/top-5 accuracy, per-class
  accuracy and the confusion matrix.

Ties are never counted in the model's favour (see :func:`recall_at_k`), so a model that maps
everything to one point (a broken checkpoint) scores 0, not chance.
"""

from pathlib import Path

import numpy as np

from vlcurate.pipeline.train.encode import encode_folder, encode_shards, folder_source

__all__ = [
    "KS",
    "TEMPLATES",
    "caption_match_at_1",
    "classifier",
    "encode_folder",
    "encode_shards",
    "folder_source",
    "load_templates",
    "recall_at_k",
    "retrieval",
    "zeroshot",
    "zeroshot_shards",
]

TEMPLATES = ["a photo of a {}.", "a picture of a {}.", "a {}."]
KS = (1, 5, 10)


# --- retrieval ------------------------------------------------------------------------------


def recall_at_k(similarity: np.ndarray, ks=KS) -> dict:
    """Recall@k of a square (N, N) similarity whose true pairs are on the diagonal, row-wise
    (image->text for image x text scores; pass ``similarity.T`` for text->image).

    Rule for ties (conservative): the true item's rank is the number of *other* items scoring
    at least as high (``>=``) as it; a hit at k is rank < k. A tie with a wrong item is a miss
    at k=1, so a constant matrix scores 0 at every k < N, not chance."""
    s = np.asarray(similarity)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"need a square similarity matrix, got shape {s.shape}")
    n = s.shape[0]
    true = np.diagonal(s)[:, None]  # (N, 1)
    rank = (s >= true).sum(axis=1) - 1  # (N,) others at least as high; the -1 is itself
    return {f"R@{k}": float((rank < k).mean()) if n else 0.0 for k in ks}


def caption_match_at_1(similarity: np.ndarray, captions: list[str]) -> float:
    """Image->text R@1 where any text identical to the true caption counts as the true one:
    a hit when the best text carrying the true caption string scores strictly higher than
    every text with another string (ties again count against the model)."""
    s = np.asarray(similarity)  # (N, N) image x text
    _, ids = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    same = ids[:, None] == ids[None, :]  # (N, N) text j has image i's caption
    best_same = np.where(same, s, -np.inf).max(axis=1)  # (N,)
    best_other = np.where(same, -np.inf, s).max(axis=1)  # (N,); -inf when all identical
    return float((best_same > best_other).mean())


def retrieval(scorer, shards, batch_size: int = 256, progress: bool = False) -> dict:
    """Image<->text retrieval among the N samples of ``shards`` (one caption per image).

    Returns ``n``, ``image_to_text`` and ``text_to_image`` (``R@1``, ``R@5``, ``R@10``),
    ``chance`` (k / N), ``caption_match_R@1``, ``skipped``, ``model``, ``pretrained``.

    Identical captions among the samples (alt text repeats; the mini web's scenes share
    captions) make some misses ambiguous: the model may rank another image's identical
    caption first, which strict recall counts as a miss. ``caption_match_R@1`` counts a
    hit whenever the top text is the true caption string; ``duplicate_captions`` says how
    many samples share their caption with another. The (N, N) matrix is held in memory:
    fine for the usual 1k-25k evaluation sets."""
    enc = encode_shards(scorer, shards, batch_size=batch_size, progress=progress)
    sim = enc["image_emb"] @ enc["text_emb"].T  # (N images, N texts)
    n = enc["n"]
    _, counts = np.unique(np.asarray(enc["captions"], dtype=object), return_counts=True)
    return {
        "n": n,
        "image_to_text": recall_at_k(sim),
        "text_to_image": recall_at_k(sim.T),
        "chance": {f"R@{k}": min(1.0, k / n) for k in KS},
        "caption_match_R@1": caption_match_at_1(sim, enc["captions"]),
        "duplicate_captions": int(counts[counts > 1].sum()),
        "skipped": enc["skipped"],
        "model": scorer.model,
        "pretrained": scorer.pretrained,
    }


# --- zero-shot ------------------------------------------------------------------------------


def load_templates(path) -> list[str]:
    """Prompt templates from a text file, one per line, each with ``{}`` for the class name;
    blank lines and ``#`` comments are skipped."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    templates = [ln for ln in lines if ln and not ln.startswith("#")]
    bad = [t for t in templates if "{}" not in t]
    if bad or not templates:
        raise ValueError(f"{path}: need templates with '{{}}' for the class name; bad: {bad}")
    return templates


def classifier(scorer, classnames: list[str], templates: list[str]) -> np.ndarray:
    """CLIP's zero-shot weights: per class, the mean of its normalised prompt embeddings,
    renormalised. Returns (C, D) float32."""
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"every template needs '{{}}' for the class name: {templates}")
    prompts = [t.format(c) for c in classnames for t in templates]  # class-major
    emb = scorer.encode_texts(prompts).cpu().numpy()  # (C * T, D), normalised
    emb = emb.reshape(len(classnames), len(templates), -1).mean(axis=1)  # (C, D)
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def zeroshot(
    scorer, classnames, templates, images, batch_size: int = 256, progress: bool = False
) -> dict:
    """Zero-shot classification of ``images``: :func:`folder_source`'s (file, class) pairs
    (encoded here), or :func:`encode_shards`'s result with ``label_field`` (already encoded).
    ``classnames`` default to the sorted distinct labels; samples whose label is not among
    them are left out and counted (``excluded``).

    Returns ``n``, ``classes``, ``top1``, ``top5`` (top-k with k = min(5, classes), given as
    ``top5_k``), ``chance`` (1 / classes), ``per_class`` ({class: {"n", "accuracy"}}),
    ``confusion`` (rows: true class, columns: predicted, in ``classes`` order), ``skipped``,
    ``excluded``, ``templates``."""
    enc = (
        images
        if isinstance(images, dict)
        else encode_folder(scorer, images, batch_size=batch_size, progress=progress)
    )
    if any(label is None for label in enc["labels"]):
        raise ValueError("the images carry no labels: encode shards with label_field")
    classnames = list(classnames) if classnames else sorted(set(enc["labels"]))
    if len(set(classnames)) != len(classnames) or not classnames:
        raise ValueError(f"need distinct class names, got {classnames}")
    index = {c: i for i, c in enumerate(classnames)}
    keep = np.array([label in index for label in enc["labels"]], dtype=bool)  # (N,)
    if not keep.any():
        seen = sorted(set(enc["labels"]))[:10]
        raise ValueError(f"no sample's label is among the classes {classnames}; labels: {seen}")
    truth = np.array([index[label] for label in np.asarray(enc["labels"])[keep]])  # (N,)
    logits = enc["image_emb"][keep] @ classifier(scorer, classnames, templates).T  # (N, C)
    return {
        **_accuracies(logits, truth, classnames),
        "skipped": enc["skipped"],
        "excluded": int((~keep).sum()),
        "templates": list(templates),
        "model": scorer.model,
        "pretrained": scorer.pretrained,
    }


def _accuracies(logits: np.ndarray, truth: np.ndarray, classnames: list[str]) -> dict:
    """(N, C) logits and (N,) true class -> accuracy, per class, confusion. Ties count
    against the model: the true class's rank is the number of others scoring >= it."""
    n, c = logits.shape
    rank = (logits >= logits[np.arange(n), truth][:, None]).sum(axis=1) - 1  # (N,)
    predicted = logits.argmax(axis=1)  # (N,) first of the top classes
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {}
    for i, name in enumerate(classnames):
        mine = truth == i
        per_class[name] = {
            "n": int(mine.sum()),
            "accuracy": float((rank[mine] == 0).mean()) if mine.any() else None,
        }
    k = min(5, c)
    return {
        "n": int(n),
        "classes": list(classnames),
        "top1": float((rank < 1).mean()),
        "top5": float((rank < k).mean()),
        "top5_k": k,
        "chance": 1.0 / c,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def zeroshot_shards(
    scorer,
    shards,
    label_field: str,
    classnames=None,
    templates=None,
    batch_size: int = 256,
    progress: bool = False,
) -> dict:
    """:func:`zeroshot` over labelled shards: each sample's class is its json's
    ``label_field``; classes default to the sorted distinct labels, templates to
    :data:`TEMPLATES`."""
    enc = encode_shards(scorer, shards, batch_size, label_field, progress, with_text=False)
    return zeroshot(scorer, classnames, templates or TEMPLATES, enc)
