"""Near-duplicate removal: exact (sha256), perceptual (pHash) and semantic (CLIP embeddings).

One rule for all three, as SemDeDup applies it: samples are ranked (0 = best: the highest CLIP
similarity), and a sample is a duplicate when one of its neighbours within the threshold ranks
better. So in every group the best sample is kept, whatever order the data came in, and each
sample is judged on its own neighbourhood (no chains to follow, every cluster in parallel).

pHash uses a range search, so every group is judged whole; semantic search looks at each
sample's ``neighbors`` nearest, so a group larger than that (many copies of one picture that
exact and pHash dedup did not catch) may keep more than its best sample.

Each function takes the candidates' ranks and returns ``duplicate_of``: for each candidate, the
position of the best-ranked neighbour that makes it a duplicate, or -1 when it is kept.

Semantic search uses faiss: a flat inner-product index (exact) below ``flat_below`` vectors and
IVF above it, on the GPU when faiss has one. At cluster scale, :func:`train_centroids` and
:func:`nearest_centroid` partition the embeddings by IVF coarse cluster, and
:func:`semantic_duplicates` runs within each cluster (``jobs/selection.py``).
"""

import math

import faiss
import numpy as np


def exact_duplicates(hashes: list, rank: np.ndarray) -> np.ndarray:
    """Samples with the same hash (None: never a duplicate) as a better-ranked one."""
    duplicate_of = np.full(len(hashes), -1, dtype=np.int64)
    best: dict = {}
    for i in np.argsort(rank, kind="stable"):
        h = hashes[i]
        if h is None:
            continue
        if h in best:
            duplicate_of[i] = best[h]
        else:
            best[h] = i
    return duplicate_of


def phash_bits(hashes: list[str]) -> np.ndarray:
    """Hex pHashes (64 bits) as an (n, 8) uint8 array, faiss's binary vector layout."""
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(
        len(hashes), 8
    )


def phash_duplicates(
    hashes: list[str],
    rank: np.ndarray,
    max_distance: int,
    embeddings: np.ndarray | None = None,
    min_cosine: float | None = None,
) -> np.ndarray:
    """Samples whose pHash is within ``max_distance`` bits of a better-ranked one's (and, with
    ``embeddings`` and ``min_cosine``, whose embeddings also agree). A range search finds every
    pair within the distance, so a group of any size keeps only its best sample."""
    n = len(hashes)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    bits = phash_bits(hashes)
    index = faiss.IndexBinaryFlat(64)
    index.add(bits)
    lims, _, ids = index.range_search(bits, max_distance + 1)  # distance < radius
    rows = np.repeat(np.arange(n), np.diff(lims).astype(np.int64))
    cols = ids.astype(np.int64)
    if embeddings is not None and min_cosine is not None:
        e = np.asarray(embeddings, dtype=np.float32)
        agree = np.einsum("pd,pd->p", e[rows], e[cols]) >= np.float32(min_cosine)
        rows, cols = rows[agree], cols[agree]
    return _better_in_pairs(n, rows, cols, np.asarray(rank))


def semantic_duplicates(
    embeddings: np.ndarray,
    rank: np.ndarray,
    min_cosine: float,
    neighbors: int = 32,
    index: str = "auto",
    flat_below: int = 200_000,
    nprobe: int = 16,
) -> np.ndarray:
    """Samples whose L2-normalised embedding has cosine >= ``min_cosine`` with a better-ranked
    one's, among its ``neighbors`` nearest (flat: exact; IVF: approximate)."""
    n = len(embeddings)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    faiss_index = build_index(vectors, index, flat_below, nprobe)
    similarities, ids = faiss_index.search(vectors, min(neighbors + 1, n))
    return _better_neighbour(ids, (similarities >= min_cosine) & (ids >= 0), rank)


def build_index(
    vectors: np.ndarray, kind: str = "auto", flat_below: int = 200_000, nprobe: int = 16
):
    """An inner-product index holding ``vectors``: flat, or IVF with about 4 sqrt(n) lists."""
    n, d = vectors.shape
    if kind == "flat" or (kind == "auto" and n < flat_below):
        index = faiss.IndexFlatIP(d)
    else:
        lists = ivf_lists(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(vectors, lists))
        index.nprobe = nprobe
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(vectors)
    return index


def ivf_lists(n: int) -> int:
    """About 4 sqrt(n) lists, and at least 39 training points per list (faiss's minimum)."""
    return max(1, min(65536, int(4 * math.sqrt(n)), n // 39))


def _training_sample(vectors: np.ndarray, lists: int, per_list: int = 64, seed: int = 0):
    size = min(len(vectors), lists * per_list)
    if size == len(vectors):
        return vectors
    pick = np.random.default_rng(seed).choice(len(vectors), size, replace=False)
    return vectors[np.sort(pick)]


def train_centroids(sample: np.ndarray, clusters: int, seed: int = 0) -> np.ndarray:
    """k-means centres (spherical, as for cosine) of a sample of the embeddings."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    clusters = max(1, min(clusters, len(sample)))
    kmeans = faiss.Kmeans(
        sample.shape[1],
        clusters,
        niter=20,
        seed=seed,
        spherical=True,
        gpu=faiss.get_num_gpus() > 0,
        verbose=False,
    )
    kmeans.train(sample)
    return kmeans.centroids


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return ids[:, 0]


def _better_in_pairs(n: int, rows: np.ndarray, cols: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each of ``n`` samples, the best-ranked partner among pairs ``(rows[p], cols[p])``
    that ranks better than the sample itself (-1: none)."""
    better = rank[cols] < rank[rows]
    rows, cols = rows[better], cols[better]
    out = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((rank[cols], rows))  # by sample, then best partner first
    rows, cols = rows[order], cols[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    out[rows[first]] = cols[first]
    return out


def _better_neighbour(ids: np.ndarray, close: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each row, the best-ranked neighbour among the close ones that ranks better than the
    row itself (-1: none)."""
    rank = np.asarray(rank)
    neighbour_rank = np.where(close, rank[np.where(ids >= 0, ids, 0)], np.iinfo(np.int64).max)
    best = neighbour_rank.argmin(axis=1)
    best_rank = neighbour_rank[np.arange(len(ids)), best]
    return np.where(best_rank < rank, ids[np.arange(len(ids)), best], -1)
