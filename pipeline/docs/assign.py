"""Placing a document's images among its sentences, as mmc4 does, and mmc4's *core* rule.

mmc4 (Zhu et al. 2023, allenai/mmc4) splits each document into sentences, computes the CLIP
cosine similarity of every image with every sentence, drops images whose best similarity to any
sentence is below 0.15, removes within-document duplicates by pHash, and assigns images to
sentences by linear assignment on the similarity matrix (lapjv), maximising the total
similarity. Each image is placed before the sentence it is assigned to.

What mmc4 did with more images than sentences (checked in its ``scripts/compute_assignments.py``
``get_image_assignments``): the assignment matches as many images as there are sentences, and
then, "we dont want to discard images", each unmatched image is put with its own most similar
sentence (``argmax`` of its row). So no image is lost to the matching, and then, and only then,
several images can share a sentence. We do the same: :func:`assign` runs
``scipy.optimize.linear_sum_assignment(..., maximize=True)`` (the same optimum as lapjv, exact
ties aside) on the images that pass ``min_sim`` and gives each image left over its best
sentence, marked ``by="best_sentence"`` (``by="matching"`` for the others). The similarity
filter comes first, so a dropped image never takes a sentence from a kept one. An image matched
to a sentence it is not closest to keeps that placement, with ``matched_sim`` telling its
similarity there, as in mmc4.

Within-document pHash dedup: mmc4 removes images with the same pHash within a document, an
exact match, so :func:`phash_duplicates_within` defaults to ``max_distance=0``; a larger
distance (Hamming, 64-bit pHash) is available. The earliest image of a group is kept. The pHash is
``imagehash.phash`` of the RGB image, as :func:`vlcurate.pipeline.score.images.decode` computes it,
as hex.

Every image not in ``image_info`` has a row in ``dropped`` with one reason (a module constant).
"""

from dataclasses import dataclass, field

import numpy as np

from vlcurate.pipeline.docs.sentences import split_sentences

__all__ = [
    "AssignConfig",
    "Assignment",
    "MMC4Core",
    "assign",
    "assign_document",
    "is_core",
    "phash_duplicates_within",
    "similarity_matrix",
]

# --- image drop reasons (unit: image of a document) -----------------------------------------
LOW_SIMILARITY = "low_similarity"  # best similarity to any sentence < min_sim
DUPLICATE_PHASH_IN_DOC = "duplicate_phash_in_doc"  # same pHash as an earlier image of the doc
NO_SENTENCES = "no_sentences"  # the document has no sentence to place the image at
NO_PIXELS = "no_pixels"  # no decoded image was given
TOO_MANY_IMAGES = "too_many_images"  # the document was refused (also the document's reason)
TOO_MANY_SENTENCES = "too_many_sentences"  # the document was refused (idem)
IMAGE_REASONS = (
    LOW_SIMILARITY,
    DUPLICATE_PHASH_IN_DOC,
    NO_SENTENCES,
    NO_PIXELS,
    TOO_MANY_IMAGES,
    TOO_MANY_SENTENCES,
)

# --- mmc4-core reasons (unit: document) -----------------------------------------------------
CORE_TOO_FEW_SENTENCES = "core_too_few_sentences"
CORE_TOO_MANY_SENTENCES = "core_too_many_sentences"
CORE_TOO_FEW_IMAGES = "core_too_few_images"
CORE_TOO_MANY_IMAGES = "core_too_many_images"
CORE_LOW_SIMILARITY_SHARE = "core_low_similarity_share"
CORE_REASONS = (
    CORE_TOO_FEW_SENTENCES,
    CORE_TOO_MANY_SENTENCES,
    CORE_TOO_FEW_IMAGES,
    CORE_TOO_MANY_IMAGES,
    CORE_LOW_SIMILARITY_SHARE,
)

MATCHING = "matching"  # placed by the linear assignment
BEST_SENTENCE = "best_sentence"  # more images than sentences: placed at its most similar one


@dataclass(slots=True)
class Assignment:
    """One image's outcome: placed (``matched_text_index``, ``matched_sim``, ``by``) or dropped
    (``reason``)."""

    image: int
    matched_text_index: int | None = None
    matched_sim: float | None = None
    by: str | None = None
    reason: str | None = None


def assign(similarity: np.ndarray, min_sim: float = 0.15) -> list[Assignment]:
    """Images (rows) to sentences (columns) of a similarity matrix, one result per image in row
    order. Images whose best similarity is below ``min_sim`` (compared in the matrix's dtype:
    exactly ``min_sim`` is kept) are dropped first; the rest are matched one to one, maximising
    the total similarity, and any left over (more images than sentences) go to their most
    similar sentence, as mmc4 does. NaN counts as no similarity."""
    sim = np.asarray(similarity)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be (images, sentences), got shape {sim.shape}")
    n_images, n_sentences = sim.shape
    if n_sentences == 0:
        return [Assignment(i, reason=NO_SENTENCES) for i in range(n_images)]
    if not np.issubdtype(sim.dtype, np.floating):
        sim = sim.astype(np.float64)
    sim = np.nan_to_num(sim, nan=-np.inf)
    best = sim.max(axis=1)
    kept = np.flatnonzero(best >= np.asarray(min_sim, dtype=sim.dtype))
    out = [Assignment(i, reason=LOW_SIMILARITY) for i in range(n_images)]
    if not len(kept):
        return out
    from scipy.optimize import linear_sum_assignment

    sub = np.clip(sim[kept], -2.0, 2.0)  # -inf (was NaN) as a finite "never"; cosines in [-1, 1]
    rows, cols = linear_sum_assignment(sub, maximize=True)
    placed = np.zeros(len(kept), dtype=bool)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        i = int(kept[r])
        out[i] = Assignment(i, c, float(sim[i, c]), MATCHING)
        placed[r] = True
    for r in np.flatnonzero(~placed).tolist():  # only when there are more images than sentences
        i = int(kept[r])
        c = int(np.argmax(sim[i]))
        out[i] = Assignment(i, c, float(sim[i, c]), BEST_SENTENCE)
    return out


def similarity_matrix(
    scorer, images: list, sentences: list[str], batch_size: int = 64
) -> np.ndarray:
    """CLIP cosine similarities, (len(images), len(sentences)) float32, with ``scorer`` a
    :class:`vlcurate.pipeline.score.clip.ClipScorer`. Images (PIL, any mode) and sentences are
    encoded in batches of ``batch_size``, so memory is bounded by the batch and the two embedding
    tables, whatever the document's size."""
    import torch

    from vlcurate.pipeline.score.images import to_rgb

    if not images or not sentences:
        return np.zeros((len(images), len(sentences)), dtype=np.float32)
    text = torch.cat(
        [
            scorer.encode_texts(list(sentences[i : i + batch_size]))
            for i in range(0, len(sentences), batch_size)
        ]
    )  # (S, D)
    rows = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            batch = torch.stack(
                [scorer.preprocess(to_rgb(im)) for im in images[i : i + batch_size]]
            )
            emb = scorer.net.encode_image(batch.to(scorer.device)).float()  # (B, D)
            emb = torch.nn.functional.normalize(emb, dim=-1)
            rows.append((emb @ text.T).cpu().numpy())  # (B, S)
    return np.concatenate(rows).astype(np.float32)


def embedding_similarity(
    scorer, embeddings: np.ndarray, sentences: list[str], batch_size: int = 64
) -> np.ndarray:
    """Like :func:`similarity_matrix`, from image embeddings the score stage already computed
    (L2-normalised, (images, D)): only the sentences are encoded."""
    import torch

    if not len(embeddings) or not sentences:
        return np.zeros((len(embeddings), len(sentences)), dtype=np.float32)
    text = torch.cat(
        [
            scorer.encode_texts(list(sentences[i : i + batch_size]))
            for i in range(0, len(sentences), batch_size)
        ]
    )  # (S, D)
    return (embeddings @ text.cpu().numpy().T).astype(np.float32)  # (images, S)


def phash_of(image) -> str:
    """The pHash as the score stage computes it (``imagehash.phash`` of the RGB image, hex)."""
    import imagehash

    from vlcurate.pipeline.score.images import to_rgb

    return str(imagehash.phash(to_rgb(image)))


def _phash_int(h) -> int | None:
    if h is None:
        return None
    if isinstance(h, (int, np.integer)):
        return int(h)
    try:
        return int(str(h), 16)
    except ValueError:
        return None


def phash_duplicates_within(phashes: list, max_distance: int = 0) -> list[int | None]:
    """For each image of a document, the index of the earlier kept image it duplicates (pHash
    within ``max_distance`` bits; 0, mmc4's rule, means the same hash), or None when it is
    kept. Hashes are ints or hex strings; None (or an unreadable string) is never a duplicate.
    An image is compared only with kept images, so a chain a~b~c keeps a and c when c is
    farther than ``max_distance`` from a."""
    out: list[int | None] = [None] * len(phashes)
    kept: list[tuple[int, int]] = []  # (hash, index)
    exact: dict[int, int] = {}
    for i, raw in enumerate(phashes):
        h = _phash_int(raw)
        if h is None:
            continue
        if max_distance <= 0:
            if h in exact:
                out[i] = exact[h]
            else:
                exact[h] = i
            continue
        dup = next((j for k, j in kept if (k ^ h).bit_count() <= max_distance), None)
        if dup is None:
            kept.append((h, i))
        else:
            out[i] = dup
    return out


def is_core(
    n_sentences: int,
    n_images: int,
    matched_sims,
    min_sentences: int = 4,
    max_sentences: int = 40,
    min_images: int = 2,
    max_images: int = 15,
    sim: float = 0.25,
    share: float = 0.75,
) -> str | None:
    """mmc4-core: None when the document passes, else the first failing reason. Passing means
    ``min_sentences <= n_sentences <= max_sentences``, ``min_images <= n_images <=
    max_images`` and at least ``share`` of the assignments with similarity strictly above
    ``sim`` (all bounds inclusive but the similarity, as published: "4-40 sentences, 2-15
    images, >= 75% of assignments with similarity > 0.25"). No assignment at all passes the
    share test (only possible with ``min_images=0``)."""
    if n_sentences < min_sentences:
        return CORE_TOO_FEW_SENTENCES
    if n_sentences > max_sentences:
        return CORE_TOO_MANY_SENTENCES
    if n_images < min_images:
        return CORE_TOO_FEW_IMAGES
    if n_images > max_images:
        return CORE_TOO_MANY_IMAGES
    sims = np.asarray(list(matched_sims), dtype=np.float64)
    if len(sims) and int((sims > sim).sum()) < share * len(sims) - 1e-9:
        return CORE_LOW_SIMILARITY_SHARE
    return None


@dataclass
class MMC4Core:
    """The mmc4-core document rule as a filter over an mmc4-style record (``text_list``,
    ``image_info[].matched_sim``)."""

    min_sentences: int = 4
    max_sentences: int = 40
    min_images: int = 2
    max_images: int = 15
    sim: float = 0.25
    share: float = 0.75

    def filter(self, record: dict) -> tuple[bool, str | None]:
        info = record.get("image_info") or []
        reason = is_core(
            len(record.get("text_list") or []),
            len(info),
            [im["matched_sim"] for im in info],
            self.min_sentences,
            self.max_sentences,
            self.min_images,
            self.max_images,
            self.sim,
            self.share,
        )
        return reason is None, reason


@dataclass
class AssignConfig:
    min_sim: float = field(
        default=0.15,
        metadata={"help": "drop images whose best sentence similarity is below this (mmc4: 0.15)"},
    )
    phash_max_distance: int = field(
        default=0, metadata={"help": "within-document pHash dedup, Hamming bits (mmc4: 0, exact)"}
    )
    max_images: int = field(
        default=1000,
        metadata={"help": "refuse documents with more images, before any similarity is computed"},
    )
    max_sentences: int = field(
        default=5000, metadata={"help": "refuse documents with more sentences, likewise"}
    )
    max_sentence_chars: int = field(default=1000, metadata={"help": "longer sentences are cut"})
    batch_size: int = field(default=64, metadata={"help": "CLIP batch size"})
    min_side: int | None = field(
        default=150, metadata={"help": "drop images with a shorter side (mmc4: 150 px)"}
    )
    max_aspect_ratio: float | None = field(
        default=2.0, metadata={"help": "drop images with long/short side above (mmc4: 2)"}
    )
    nsfw_max: float | None = field(
        default=0.1, metadata={"help": "drop images with nsfw_p above this (mmc4: 0.1)"}
    )
    faces: str = field(
        default="keep",
        metadata={"help": "keep, or drop_doc: drop documents with a face (mmc4 fewer-faces)"},
    )
    core: bool = field(
        default=False,
        metadata={
            "help": "keep only mmc4-core documents: 4-40 sentences, 2-15 images, >= 75% "
            "of assignments with similarity > 0.25"
        },
    )

    def __post_init__(self):
        if self.faces not in ("keep", "drop_doc"):
            raise ValueError(f"faces must be keep or drop_doc, not {self.faces!r}")


def _image_fields(item) -> dict:
    return item if isinstance(item, dict) else {"image": item}


def assign_document(
    doc_text_nodes: list[str],
    images: list,
    scorer,
    config: AssignConfig | None = None,
    url: str | None = None,
) -> dict:
    """An mmc4-style record for one document.

    ``doc_text_nodes``: the document's text, in page order (each split into sentences);
    ``images``: in page order, each a dict with ``image`` (PIL, or None when undecoded) or
    ``embedding`` (its CLIP image embedding from the score stage, L2-normalised), ``url``
    and optionally ``phash`` (hex or int; computed when missing) and ``faces`` (face boxes,
    copied to ``face_detections``), or a bare PIL image.

    Returns ``{"url", "text_list", "image_info", "similarity_matrix", "dropped", "refused"}``:
    ``image_info`` holds the kept images in page order, each ``{image_name, raw_url, position,
    matched_text_index, matched_sim, matched_by, face_detections, phash}`` (``position``: index
    in ``images``; ``image_name``: ``"{j}.jpg"``, its member name in the shard, j its index in
    ``image_info``); ``similarity_matrix`` is (kept images x sentences), rows in ``image_info``
    order; ``dropped`` has one ``{position, raw_url, reason}`` per other image (with
    ``duplicate_of``, a position, for duplicates); ``refused`` is None or the reason the whole
    document was refused (more than ``max_images`` images or ``max_sentences`` sentences),
    decided before any image is hashed or encoded. mmc4's ``could_have_url_duplicate`` needs the
    whole corpus: ``vlcurate.pipeline.docs.interleave.assign_documents`` sets it."""
    cfg = config or AssignConfig()
    items = [_image_fields(it) for it in images]
    sentences = [
        s for node in doc_text_nodes or [] for s in split_sentences(node, cfg.max_sentence_chars)
    ]
    record = {
        "url": url,
        "text_list": sentences,
        "image_info": [],
        "similarity_matrix": [],
        "dropped": [],
        "refused": None,
    }

    def drop(i: int, reason: str, **extra) -> None:
        record["dropped"].append(
            {"position": i, "raw_url": items[i].get("url"), "reason": reason, **extra}
        )

    refused = (
        TOO_MANY_IMAGES
        if len(items) > cfg.max_images
        else TOO_MANY_SENTENCES
        if len(sentences) > cfg.max_sentences
        else None
    )
    if refused:
        record["refused"] = refused
        for i in range(len(items)):
            drop(i, refused)
        return record

    live = []
    for i, it in enumerate(items):
        if it.get("image") is None and it.get("embedding") is None:
            drop(i, NO_PIXELS)
        else:
            live.append(i)
    hashes = {
        i: items[i]["phash"]
        if items[i].get("phash") is not None
        else phash_of(items[i]["image"])
        if items[i].get("image") is not None
        else None
        for i in live
    }
    dup_of = phash_duplicates_within([hashes[i] for i in live], cfg.phash_max_distance)
    unique = []
    for i, d in zip(live, dup_of, strict=True):
        if d is None:
            unique.append(i)
        else:
            drop(i, DUPLICATE_PHASH_IN_DOC, duplicate_of=live[d])

    if unique and all(items[i].get("embedding") is not None for i in unique):
        embeddings = np.stack([items[i]["embedding"] for i in unique]).astype(np.float32)
        sim = embedding_similarity(scorer, embeddings, sentences, cfg.batch_size)
    else:
        pixels = [items[i]["image"] for i in unique]
        sim = similarity_matrix(scorer, pixels, sentences, cfg.batch_size)  # (unique, sentences)
    kept_rows = []
    for a in assign(sim, cfg.min_sim):
        i = unique[a.image]
        if a.reason is not None:
            drop(i, a.reason)
            continue
        kept_rows.append(a.image)
        record["image_info"].append(
            {
                "image_name": None,
                "raw_url": items[i].get("url"),
                "position": i,
                "matched_text_index": a.matched_text_index,
                "matched_sim": a.matched_sim,
                "matched_by": a.by,
                "face_detections": items[i].get("faces"),
                "phash": _hex(hashes[i]),
            }
        )
    for j, info in enumerate(record["image_info"]):
        info["image_name"] = f"{j}.jpg"
    record["similarity_matrix"] = sim[kept_rows].astype(float).tolist() if kept_rows else []
    record["dropped"].sort(key=lambda d: d["position"])
    return record


def _hex(h) -> str | None:
    v = _phash_int(h)
    return None if v is None else f"{v:016x}"
