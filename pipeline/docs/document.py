"""One document's mmc4-style record: its text split into sentences, its images hashed and
deduplicated, every image scored against every sentence with CLIP (or from the score stage's
image embeddings), and the images placed by :func:`vlcurate.pipeline.docs.assign.assign`."""

import numpy as np

from vlcurate.pipeline.docs.assign import (
    DUPLICATE_PHASH_IN_DOC,
    NO_PIXELS,
    TOO_MANY_IMAGES,
    TOO_MANY_SENTENCES,
    assign,
    phash_duplicates_within,
    phash_int,
)
from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.docs.sentences import split_sentences


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
    record["refused"] = _refusal(len(items), len(sentences), cfg)
    if record["refused"]:
        for i in range(len(items)):
            _drop(record, items, i, record["refused"])
        return record
    unique, hashes = _unique_images(record, items, cfg)
    if unique and all(items[i].get("embedding") is not None for i in unique):
        embeddings = np.stack([items[i]["embedding"] for i in unique]).astype(np.float32)
        sim = embedding_similarity(scorer, embeddings, sentences, cfg.batch_size)
    else:
        pixels = [items[i]["image"] for i in unique]
        sim = similarity_matrix(scorer, pixels, sentences, cfg.batch_size)  # (unique, sentences)
    _place(record, items, unique, hashes, sim, cfg)
    record["dropped"].sort(key=lambda d: d["position"])
    return record


def _drop(record: dict, items: list[dict], i: int, reason: str, **extra) -> None:
    record["dropped"].append(
        {"position": i, "raw_url": items[i].get("url"), "reason": reason, **extra}
    )


def _refusal(n_images: int, n_sentences: int, cfg: AssignConfig) -> str | None:
    """Why the whole document is refused before any image is hashed or encoded, or None."""
    if n_images > cfg.max_images:
        return TOO_MANY_IMAGES
    if n_sentences > cfg.max_sentences:
        return TOO_MANY_SENTENCES
    return None


def _unique_images(record: dict, items: list[dict], cfg: AssignConfig) -> tuple[list, dict]:
    """The positions of the images with pixels (or an embedding) that duplicate no earlier one,
    and every such image's pHash (given, or computed); the others are dropped."""
    live = []
    for i, it in enumerate(items):
        if it.get("image") is None and it.get("embedding") is None:
            _drop(record, items, i, NO_PIXELS)
        else:
            live.append(i)
    hashes = {i: _phash(items[i]) for i in live}
    dup_of = phash_duplicates_within([hashes[i] for i in live], cfg.phash_max_distance)
    unique = []
    for i, d in zip(live, dup_of, strict=True):
        if d is None:
            unique.append(i)
        else:
            _drop(record, items, i, DUPLICATE_PHASH_IN_DOC, duplicate_of=live[d])
    return unique, hashes


def _phash(item: dict):
    if item.get("phash") is not None:
        return item["phash"]
    return phash_of(item["image"]) if item.get("image") is not None else None


def _place(record, items, unique: list[int], hashes: dict, sim: np.ndarray, cfg) -> None:
    """Assign the unique images to sentences: the kept ones into ``image_info`` (in page
    order) and the similarity matrix, the others dropped with their reason."""
    kept_rows = []
    for a in assign(sim, cfg.min_sim):
        i = unique[a.image]
        if a.reason is not None:
            _drop(record, items, i, a.reason)
            continue
        kept_rows.append(a.image)
        record["image_info"].append(
            {
                "image_name": f"{len(kept_rows) - 1}.jpg",
                "raw_url": items[i].get("url"),
                "position": i,
                "matched_text_index": a.matched_text_index,
                "matched_sim": a.matched_sim,
                "matched_by": a.by,
                "face_detections": items[i].get("faces"),
                "phash": _hex(hashes[i]),
            }
        )
    record["similarity_matrix"] = sim[kept_rows].astype(float).tolist() if kept_rows else []


def _hex(h) -> str | None:
    v = phash_int(h)
    return None if v is None else f"{v:016x}"
