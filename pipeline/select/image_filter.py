"""DataComp's image-based filter (``select.image_filter``; Gadre et al., 2023, baselines):
k-means over the pool's CLIP image embeddings, each reference image (DataComp: ImageNet-1k's
training set) sent to its nearest centre, and a pool sample kept only when its own nearest centre
is one of those (``image_cluster_unmatched`` otherwise). With ``clip_top_fraction`` in the same
section the two intersect, DataComp's best baseline (``recipes/datacomp-image-clip.yaml``): both
are decided over the whole pool and a sample must pass both.

The centres are trained (faiss, spherical, as for cosine: :func:`~vlcurate.pipeline.select.
dedup.train_centroids`) on a seeded sample of at most 256 embeddings per centre, over every
decoded sample, before any rule: the pool's clusters do not depend on the recipe's other rules.
A pool with fewer than ``centroids * points_per_centroid`` samples gets ``pool //
points_per_centroid`` centres (at least one); stats.json says how many
(``image_filter_centroids``). The same seed gives the same centres, so a rerun keeps the same
samples. The pool is assigned one input shard at a time.
"""

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select import dedup, inputs, references
from vlcurate.pipeline.select.clusters import SAMPLE_PER_CLUSTER
from vlcurate.pipeline.select.config import ImageFilter
from vlcurate.pipeline.storage import InputError
from vlcurate.schemas import score as score_schema
from vlcurate.schemas.select import IMAGE_CLUSTER_COLUMN, IMAGE_CLUSTER_UNMATCHED


def centroids_for(pool: int, rule: ImageFilter) -> int:
    """The centres a pool of ``pool`` samples gets: the rule's, capped at ``pool //
    points_per_centroid`` (at least one)."""
    return max(1, min(rule.centroids, pool // rule.points_per_centroid))


def train(table: pa.Table, scores: str, rows: np.ndarray, rule: ImageFilter) -> np.ndarray:
    """The k-means centres of the embeddings of ``rows`` (a seeded sample of them)."""
    k = centroids_for(len(rows), rule)
    rng = np.random.default_rng(rule.seed)
    size = min(len(rows), SAMPLE_PER_CLUSTER * k)
    pick = np.sort(rng.choice(rows, size, replace=False))
    shard = np.array(table["shard"].to_pylist(), dtype=object)
    sample = inputs.load_embeddings(scores, shard[pick], table["emb_row"].to_numpy()[pick])
    return dedup.train_centroids(sample, k, seed=rule.seed)


def assign(table: pa.Table, scores: str, rows: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The nearest centre of each row of ``rows``, one input shard at a time."""
    shard = np.array(table["shard"].to_pylist(), dtype=object)
    emb_row = table["emb_row"].to_numpy()
    out = np.empty(len(rows), dtype=np.int64)
    for name in np.unique(shard[rows]):
        here = np.flatnonzero(shard[rows] == name)
        emb = inputs.load_embeddings(scores, shard[rows[here]], emb_row[rows[here]])
        out[here] = dedup.nearest_centroid(emb, centres)
    return out


def filter_by_clusters(
    table: pa.Table,
    scores: str,
    settings: dict,
    reason: np.ndarray,
    rule: ImageFilter,
    framing: dict | None = None,
) -> tuple[dict, dict]:
    """Mark (in ``reason``, in place) the samples still kept whose cluster no reference image
    falls in; returns the ``image_cluster`` column and the facts for stats.json."""
    status = np.array(table["status"].to_pylist(), dtype=object)
    emb_row = table["emb_row"].to_numpy()
    pool = np.flatnonzero((status == score_schema.DECODED) & (emb_row >= 0))
    cluster = np.full(table.num_rows, -1, dtype=np.int64)
    facts = {"image_filter_centroids": 0, "image_filter_clusters_matched": 0}
    if len(pool):
        centres = train(table, scores, pool, rule)
        cluster[pool] = assign(table, scores, pool, centres)
        found = references.load(
            rule.reference, settings, centres.shape[1], framing, "select.image_filter.reference"
        )
        if not len(found):  # every sample would go: a wrong reference set, not a filter
            raise InputError(
                f"select.image_filter.reference: no reference image ({found.undecoded} did not "
                f"decode) in {', '.join(rule.reference)}"
            )
        matched = np.zeros(len(centres), dtype=bool)
        matched[dedup.nearest_centroid(found.embeddings, centres)] = True
        facts = {
            "image_filter_centroids": len(centres),
            "image_filter_clusters_matched": int(matched.sum()),
            "image_filter_reference_images": len(found),
            "image_filter_reference_undecoded": found.undecoded,
        }
    else:
        matched = np.zeros(1, dtype=bool)
    unmatched = (cluster < 0) | ~matched[np.maximum(cluster, 0)]
    reason[(reason == None) & unmatched] = IMAGE_CLUSTER_UNMATCHED  # noqa: E711 (elementwise)
    name, kind = IMAGE_CLUSTER_COLUMN
    column = pa.array([int(c) if c >= 0 else None for c in cluster], kind)
    return {name: column}, {"image_filter_centroids_asked": rule.centroids, **facts}
