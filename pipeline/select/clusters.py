"""Semantic deduplication per k-means cluster, the way it is done at scale (SemDeDup): centres
from a sample of the embeddings, each embedding sent to its nearest centre, and each cluster
deduplicated on its own. These are the pure steps; ``jobs/selection.py`` maps them over Spark
(one task per input shard to assign clusters, a shuffle, one task per cluster).

Within a cluster a sample sees only the neighbours in its cluster, so it never drops more than
the in-memory dedup does; with one cluster it drops exactly the same."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select import dedup
from vlcurate.pipeline.select.inputs import load_embeddings

SAMPLE_PER_CLUSTER = 256  # embeddings sampled per centre to train the k-means
DEFAULT_CLUSTER_SIZE = 5000  # default clusters: about n / this


@dataclass
class ClusterPlan:
    """The candidates of semantic dedup, grouped by input shard: ``members`` is ``[(shard name,
    [(position, emb_row, rank), ...]), ...]``; ``centroids`` the k-means centres."""

    scores: str
    size: int
    members: list
    centroids: np.ndarray

    @property
    def clusters(self) -> int:
        return len(self.centroids)


def plan_clusters(rows: pa.Table, rank: np.ndarray, scores: str, clusters: int | None):
    """Train ``clusters`` centres (default: about n / 5000) on a fixed-seed sample of the
    candidates' embeddings, and group the candidates by input shard."""
    names = np.array(rows["shard"].to_pylist(), dtype=object)
    emb_rows = rows["emb_row"].to_numpy()
    n = len(names)
    k = clusters or max(1, n // DEFAULT_CLUSTER_SIZE)
    pick = np.random.default_rng(0).choice(n, min(n, SAMPLE_PER_CLUSTER * k), replace=False)
    centroids = dedup.train_centroids(load_embeddings(scores, names[pick], emb_rows[pick]), k)
    by_shard: dict = {}
    for position, name in enumerate(names):
        member = (position, int(emb_rows[position]), int(rank[position]))
        by_shard.setdefault(name, []).append(member)
    return ClusterPlan(scores, n, sorted(by_shard.items()), centroids)


def assign_clusters(item, scores: str, centroids: np.ndarray):
    """One input shard's candidates -> ``(cluster, (position, rank, float16 vector bytes))``."""
    name, members = item
    emb = load_embeddings(
        scores, np.array([name] * len(members), dtype=object), np.array([m[1] for m in members])
    )
    for (position, _, rank), cluster, vector in zip(
        members, dedup.nearest_centroid(emb, centroids), emb.astype(np.float16), strict=True
    ):
        yield int(cluster), (position, rank, vector.tobytes())


def duplicates_within(item, min_cosine: float, neighbors: int) -> list[tuple[int, int]]:
    """One cluster's members -> ``(position, position of the better sample)`` per duplicate
    (an exact search: a cluster is small)."""
    _, members = item
    members = list(members)
    vectors = np.stack([np.frombuffer(m[2], dtype=np.float16) for m in members])
    ranks = np.array([m[1] for m in members])
    found = dedup.semantic_duplicates(vectors, ranks, min_cosine, neighbors, "flat")
    return [(members[i][0], members[j][0]) for i, j in enumerate(found) if j >= 0]


def duplicate_of(size: int, pairs) -> np.ndarray:
    """``duplicate_of`` for ``size`` candidates from the ``(position, better)`` pairs."""
    out = np.full(size, -1, dtype=np.int64)
    for position, better in pairs:
        out[position] = better
    return out
