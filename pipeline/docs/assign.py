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
One document's record is built by :func:`vlcurate.pipeline.docs.document.assign_document`.
"""

from dataclasses import dataclass

import numpy as np

from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.verdict import Verdict

__all__ = [
    "AssignConfig",
    "Assignment",
    "MMC4Core",
    "assign",
    "is_core",
    "phash_duplicates_within",
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


def phash_int(h) -> int | None:
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
        h = phash_int(raw)
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
    """The mmc4-core document rule over mmc4-style records (``text_list``,
    ``image_info[].matched_sim``), with the filter protocol: a batch of records in, a reason
    per record (``None``: core) out."""

    min_sentences: int = 4
    max_sentences: int = 40
    min_images: int = 2
    max_images: int = 15
    sim: float = 0.25
    share: float = 0.75

    reasons = CORE_REASONS

    def judge(self, records: list[dict]) -> Verdict:
        return Verdict.of(self._one(record) for record in records)

    def _one(self, record: dict) -> str | None:
        info = record.get("image_info") or []
        return is_core(
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
