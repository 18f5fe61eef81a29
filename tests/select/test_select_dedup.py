"""Near-duplicate removal (``vlcurate.pipeline.select.dedup``) on real faiss indexes, small.

One rule for every kind: the best-ranked sample (rank 0 = best) of a group is kept and every other
member points at a better-ranked neighbour within the threshold. The vectors are random unit
vectors (far apart: in 64 dimensions two of them have a cosine of about 0 +- 0.13) with planted
copies at a chosen cosine; the pHashes are random 64-bit numbers with planted copies at a chosen
Hamming distance.
"""

import numpy as np
import pytest

from vlcurate.pipeline.select.dedup import (
    build_index,
    exact_duplicates,
    ivf_lists,
    nearest_centroid,
    phash_bits,
    phash_duplicates,
    semantic_duplicates,
    train_centroids,
)

DIM = 64


def unit_vectors(rng, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def at_cosine(rng, vectors: np.ndarray, cosine: float) -> np.ndarray:
    """Unit vectors at ``cosine`` from each row of ``vectors`` (up to float32 rounding)."""
    v = vectors.astype(np.float64)
    u = rng.standard_normal(v.shape)
    u -= (u * v).sum(axis=1, keepdims=True) * v  # orthogonal to v
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return (cosine * v + np.sqrt(1 - cosine**2) * u).astype(np.float32)


def with_copies(rng, n: int, copies: int, cosine: float):
    """``n`` unit vectors, the last ``copies`` of them copies (at ``cosine``) of distinct earlier
    ones, shuffled; and the (source, copy) position pairs."""
    originals = unit_vectors(rng, n - copies)
    sources = rng.choice(n - copies, copies, replace=False)
    vectors = np.concatenate([originals, at_cosine(rng, originals[sources], cosine)])
    order = rng.permutation(n)  # order[new position] = old position
    where = np.argsort(order)  # where[old position] = new position
    pairs = np.stack([where[sources], where[np.arange(n - copies, n)]], axis=1)
    return vectors[order], pairs


def expected_for_pairs(n: int, pairs: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Isolated pairs: the worse-ranked member points at the better-ranked one."""
    expected = np.full(n, -1, dtype=np.int64)
    for a, b in pairs:
        better, worse = (a, b) if rank[a] < rank[b] else (b, a)
        expected[worse] = better
    return expected


def flip(hex_hash: str, bits) -> str:
    x = int(hex_hash, 16)
    for bit in bits:
        x ^= 1 << int(bit)
    return f"{x:016x}"


def random_hashes(rng, n: int) -> list[str]:
    return [f"{int(x):016x}" for x in rng.integers(0, 2**64, n, dtype=np.uint64)]


# --- exact -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_exact_keeps_the_best_ranked_of_each_group_whatever_the_order(seed):
    hashes = ["a", "b", "a", None, "c", "b", "a", None, "a", "d", "c"]
    rank = np.random.default_rng(seed).permutation(len(hashes))
    duplicate_of = exact_duplicates(hashes, rank)
    assert duplicate_of.dtype == np.int64
    for h in ("a", "b", "c", "d"):
        members = [i for i, x in enumerate(hashes) if x == h]
        best = min(members, key=lambda i: rank[i])
        assert duplicate_of[best] == -1
        assert all(duplicate_of[i] == best for i in members if i != best)
    assert duplicate_of[3] == -1 and duplicate_of[7] == -1  # None: never a duplicate


def test_exact_none_only_and_empty():
    assert exact_duplicates([None, None], np.array([1, 0])).tolist() == [-1, -1]
    assert exact_duplicates([], np.array([], dtype=np.int64)).tolist() == []


# --- pHash -------------------------------------------------------------------------------------


def test_phash_bits_is_the_hex_bytes_in_order():
    bits = phash_bits(["0123456789abcdef", "ffffffffffffffff"])
    assert bits.shape == (2, 8) and bits.dtype == np.uint8
    assert bits[0].tolist() == [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
    assert bits[1].tolist() == [0xFF] * 8


@pytest.mark.parametrize("max_distance", [0, 1, 2, 5, 10])
def test_phash_distance_max_is_a_duplicate_and_one_more_is_not(max_distance):
    rng = np.random.default_rng(max_distance)
    base = random_hashes(rng, 1)[0]
    bits = rng.choice(64, max_distance + 1, replace=False)
    at, beyond = flip(base, bits[:max_distance]), flip(base, bits)
    assert phash_duplicates([base, at], np.array([0, 1]), max_distance).tolist() == [-1, 0]
    assert phash_duplicates([base, at], np.array([1, 0]), max_distance).tolist() == [1, -1]
    assert phash_duplicates([base, beyond], np.array([0, 1]), max_distance).tolist() == [-1, -1]


def test_phash_among_distractors_finds_exactly_the_planted_pairs():
    rng = np.random.default_rng(7)
    hashes = random_hashes(rng, 300)  # random 64-bit hashes: about 32 bits apart, never 4
    near = [flip(hashes[i], rng.choice(64, 3, replace=False)) for i in range(20)]
    far = [flip(hashes[i], rng.choice(64, 4, replace=False)) for i in range(20, 40)]
    hashes += near + far
    rank = rng.permutation(len(hashes))
    expected = expected_for_pairs(len(hashes), np.array([(i, 300 + i) for i in range(20)]), rank)
    assert phash_duplicates(hashes, rank, 3).tolist() == expected.tolist()


def test_phash_group_larger_than_any_neighbour_list_keeps_only_its_best():
    """1,000 copies of one hash (placeholder images): all but the best-ranked go."""
    rank = np.random.default_rng(3).permutation(1000)
    found = phash_duplicates(["00ff00ff00ff00ff"] * 1000, rank, 0)
    best = int(np.argmin(rank))
    assert (found == -1).sum() == 1 and found[best] == -1
    assert set(found[found >= 0].tolist()) == {best}


def test_phash_group_keeps_its_best_ranked():
    rng = np.random.default_rng(3)
    base = random_hashes(rng, 1)[0]
    hashes = random_hashes(rng, 50) + [base] + [flip(base, [b]) for b in (0, 17, 40, 63)]
    for _ in range(5):
        rank = rng.permutation(len(hashes))
        group = list(range(50, 55))
        best = min(group, key=lambda i: rank[i])
        duplicate_of = phash_duplicates(hashes, rank, 2)
        assert duplicate_of[best] == -1
        assert [duplicate_of[i] for i in group if i != best] == [best] * 4
        assert (duplicate_of[:50] == -1).all()


def test_phash_same_hash_needs_agreeing_embeddings():
    hashes = ["00ff00ff00ff00ff"] * 2
    orthogonal = np.eye(2, 8, dtype=np.float32)
    same = np.repeat(orthogonal[:1], 2, axis=0)
    rank = np.array([0, 1])
    assert phash_duplicates(hashes, rank, 0, embeddings=orthogonal, min_cosine=0.9).tolist() == [
        -1,
        -1,
    ]
    assert phash_duplicates(hashes, rank, 0, embeddings=same, min_cosine=0.9).tolist() == [-1, 0]
    # embeddings without min_cosine: the hash alone decides
    assert phash_duplicates(hashes, rank, 0, embeddings=orthogonal).tolist() == [-1, 0]


def test_phash_embedding_threshold_is_inclusive():
    hashes = ["1234123412341234"] * 2
    pair = np.zeros((2, 8), dtype=np.float32)
    pair[0, 0], pair[1, 0], pair[1, 1] = 1.0, 0.875, np.sqrt(1 - 0.875**2)  # cosine 0.875 exactly
    rank = np.array([0, 1])
    assert phash_duplicates(hashes, rank, 0, embeddings=pair, min_cosine=0.875).tolist() == [-1, 0]
    above = float(np.nextafter(np.float32(0.875), np.float32(1)))
    assert phash_duplicates(hashes, rank, 0, embeddings=pair, min_cosine=above).tolist() == [-1, -1]


def test_phash_one_hash_and_none():
    one = phash_duplicates(["0123456789abcdef"], np.array([0]), 4)
    assert one.tolist() == [-1] and one.dtype == np.int64
    assert phash_duplicates([], np.array([], dtype=np.int64), 4).tolist() == []


# --- semantic ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    """5,000 unit vectors of dimension 64; 200 are copies at cosine 0.99 of distinct others."""
    rng = np.random.default_rng(0)
    vectors, pairs = with_copies(rng, 5000, 200, 0.99)
    rank = rng.permutation(len(vectors))
    return vectors, pairs, rank, expected_for_pairs(len(vectors), pairs, rank)


def test_semantic_flat_finds_every_planted_pair(planted):
    vectors, _, rank, expected = planted
    duplicate_of = semantic_duplicates(vectors, rank, 0.95, index="flat")
    assert duplicate_of.tolist() == expected.tolist()
    assert (duplicate_of >= 0).sum() == 200


def test_semantic_auto_is_flat_below_flat_below(planted):
    vectors, _, rank, expected = planted
    assert type(build_index(vectors, "auto", flat_below=len(vectors) + 1)).__name__ == "IndexFlatIP"
    ivf = build_index(vectors, "auto", flat_below=len(vectors), nprobe=8)
    assert type(ivf).__name__ == "IndexIVFFlat"
    assert ivf.nlist == ivf_lists(len(vectors)) and ivf.nprobe == 8 and ivf.ntotal == len(vectors)
    assert semantic_duplicates(vectors, rank, 0.95).tolist() == expected.tolist()


def test_semantic_ivf_finds_the_planted_pairs_and_nothing_else(planted):
    vectors, _, rank, expected = planted
    duplicate_of = semantic_duplicates(vectors, rank, 0.95, index="ivf")
    dropped = duplicate_of >= 0
    assert (duplicate_of[dropped] == expected[dropped]).all()  # every drop is a planted pair
    assert dropped.sum() >= 0.98 * 200  # approximate: a pair split across lists can be missed


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_semantic_distinct_vectors_all_survive(index):
    vectors = unit_vectors(np.random.default_rng(1), 2000)
    rank = np.arange(len(vectors))
    assert (semantic_duplicates(vectors, rank, 0.8, index=index) == -1).all()


@pytest.mark.parametrize("cosine", [0.875, 0.96875, 0.5])
def test_semantic_threshold_is_inclusive_exactly(cosine):
    """On axes, the inner product of e0 and (c, s, 0, ...) is c with no rounding at all."""
    rng = np.random.default_rng(2)
    vectors = np.concatenate([np.zeros((2, DIM), np.float32), unit_vectors(rng, 50)])
    vectors[0, 0] = 1.0
    vectors[1, 0], vectors[1, 1] = cosine, np.sqrt(1 - cosine**2)
    rank = np.arange(len(vectors))
    at = semantic_duplicates(vectors, rank, cosine, index="flat")
    above = semantic_duplicates(
        vectors, rank, float(np.nextafter(np.float32(cosine), np.float32(1))), index="flat"
    )
    assert at[:2].tolist() == [-1, 0]
    assert above[:2].tolist() == [-1, -1]


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_semantic_threshold_just_below_and_just_above(index):
    """A rotated pair at cosine 0.9: float32 rounding moves it by about 1e-7, not 1e-4."""
    rng = np.random.default_rng(4)
    rotation, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    pair = np.zeros((2, DIM))
    pair[0, 0], pair[1, 0], pair[1, 1] = 1.0, 0.9, np.sqrt(1 - 0.81)
    vectors = np.concatenate([(pair @ rotation.T).astype(np.float32), unit_vectors(rng, 2000)])
    assert abs(float(vectors[0] @ vectors[1]) - 0.9) < 1e-6
    rank = np.arange(len(vectors))
    below = semantic_duplicates(vectors, rank, 0.9 - 1e-4, index=index)
    above = semantic_duplicates(vectors, rank, 0.9 + 1e-4, index=index)
    assert below[:2].tolist() == [-1, 0] and (below[2:] == -1).all()
    assert (above == -1).all()


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_semantic_group_of_five_keeps_its_best_ranked(index):
    rng = np.random.default_rng(5)
    centre = unit_vectors(rng, 1)
    group = at_cosine(rng, np.repeat(centre, 5, axis=0), 0.995)  # each pair at about 0.99
    vectors = np.concatenate([unit_vectors(rng, 1500), group])
    members = np.arange(1500, 1505)
    for _ in range(4):
        rank = rng.permutation(len(vectors))
        best = members[np.argmin(rank[members])]
        duplicate_of = semantic_duplicates(vectors, rank, 0.95, index=index)
        assert duplicate_of[best] == -1
        assert duplicate_of[members[members != best]].tolist() == [best] * 4
        assert (duplicate_of[:1500] == -1).all()


def test_semantic_fewer_than_two():
    one = semantic_duplicates(unit_vectors(np.random.default_rng(6), 1), np.array([0]), 0.9)
    assert one.tolist() == [-1] and one.dtype == np.int64
    empty = np.zeros((0, DIM), np.float32)
    assert semantic_duplicates(empty, np.array([], dtype=np.int64), 0.9).tolist() == []


def test_ivf_lists_is_about_four_square_roots_capped():
    """4 sqrt(n), at most 65536, and never fewer than 39 training points per list."""
    assert [ivf_lists(n) for n in (0, 1, 100, 1_000_000, 10**12)] == [1, 1, 2, 4000, 65536]


def test_semantic_ivf_on_a_handful_of_vectors():
    """Fewer vectors than IVF lists would want: one list, still exact."""
    vectors = unit_vectors(np.random.default_rng(8), 10)
    vectors[3] = vectors[1]
    found = semantic_duplicates(vectors, np.arange(10), 0.9, index="ivf")
    assert list(found) == [-1, -1, -1, 1, -1, -1, -1, -1, -1, -1]


# --- partitioning by cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def groups():
    """20 tight, well-separated groups of 10 near-copies (cosine 0.99 from the group's centre,
    about 0.98 from each other) among 300 distinct vectors."""
    rng = np.random.default_rng(9)
    centres = unit_vectors(rng, 20)
    vectors = np.concatenate(
        [at_cosine(rng, np.repeat(centres, 10, axis=0), 0.99), unit_vectors(rng, 300)]
    )
    group = np.concatenate([np.repeat(np.arange(20), 10), np.full(300, -1)])
    rank = rng.permutation(len(vectors))
    expected = np.full(len(vectors), -1, dtype=np.int64)
    for g in range(20):
        members = np.flatnonzero(group == g)
        best = members[np.argmin(rank[members])]
        expected[members[members != best]] = best
    return vectors, group, rank, expected


@pytest.mark.parametrize("step", [1, 2])
def test_centroids_put_each_group_of_duplicates_in_one_cluster(groups, step):
    vectors, group, _, _ = groups
    centroids = train_centroids(vectors[::step], 20)
    assert centroids.shape == (20, DIM)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-5)  # spherical
    cluster = nearest_centroid(vectors, centroids)
    assert cluster.shape == (len(vectors),) and cluster.min() >= 0 and cluster.max() < 20
    for g in range(20):
        assert len(set(cluster[group == g].tolist())) == 1, f"group {g} split"


@pytest.mark.parametrize("step", [1, 2])
def test_semantic_within_each_cluster_equals_over_everything(groups, step):
    vectors, _, rank, expected = groups
    cluster = nearest_centroid(vectors, train_centroids(vectors[::step], 20))
    partitioned = np.full(len(vectors), -1, dtype=np.int64)
    for c in np.unique(cluster):
        members = np.flatnonzero(cluster == c)
        local = semantic_duplicates(vectors[members], rank[members], 0.95)
        partitioned[members] = np.where(local >= 0, members[np.maximum(local, 0)], -1)
    whole = semantic_duplicates(vectors, rank, 0.95)
    assert whole.tolist() == expected.tolist()  # each group's best kept, 9 point at it
    assert partitioned.tolist() == whole.tolist()


def test_train_centroids_clamps_clusters_to_the_sample():
    sample = unit_vectors(np.random.default_rng(10), 5)
    centroids = train_centroids(sample, 50)
    assert centroids.shape == (5, DIM)
    assert (nearest_centroid(sample, centroids) >= 0).all()
