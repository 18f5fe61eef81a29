"""Near-duplicate removal over CLIP-sized embeddings: IVF against exact (flat) search, in seconds,
peak memory and recall.

    .venv/bin/python benchmarks/dedup.py                      # 1,000,000 x 512 (about 30 min)
    .venv/bin/python benchmarks/dedup.py --rows 100000        # quick check (about 1 min)
    .venv/bin/python benchmarks/dedup.py --nprobes 16 --json select.json

Embeddings: ``--rows`` L2-normalised float32 vectors of ``--dim``, gaussian then normalised (two
of them have a cosine of about 0 +- 1/sqrt(dim)), of which ``--copy-fraction`` (5%) are copies of
other rows at a cosine drawn uniformly from 0.96-0.98, in groups of 1 to 4 copies of one source,
at random positions. Ranks: a random permutation (0 = best). They are written once to
``benchmarks/_work/select/`` as ``.npy`` (2 GB at full size) and removed at the end unless
``--keep``. Threshold ``--min-cosine`` 0.95, ``--neighbors`` 16: what a recipe's
``dedup: {semantic_min_cosine: 0.95, neighbors: 16}`` runs.

Rows, each in its own spawned process so that memory peaks do not mix: wall seconds, and the
process's RSS high-water mark (``ru_maxrss``), total and above its RSS once the embeddings are
loaded (what the method itself adds).

(a) IVF: ``vlcurate.pipeline.select.dedup.semantic_duplicates(index="ivf")`` over every row, with
    ``ivf_lists(rows)`` lists (4,000 at 1M), one row per ``--nprobes`` value (8, 16, 32; 16 is
    the default). ``build s`` is ``build_index`` inside it (k-means on 64 points per list, then
    add), timed by wrapping it; the rest is the search and the decision.
(b) flat (exact): ``build_index(kind="flat")`` over every row, then ``--queries`` (20,000)
    random rows searched against all of them. A 1M x 1M flat search takes hours on 2 cores, so
    its time for every row is extrapolated: build + search x rows / queries.

Recall, on the ``--queries`` rows: the exact pairs are (query, neighbour) with cosine >=
``--min-cosine`` among the query's ``neighbors + 1`` nearest by flat search; pair recall is the
share of them that the IVF index (the one ``semantic_duplicates`` built, searched again for the
queries) also returns. Decisions agree when IVF's ``duplicate_of`` (from the whole run) and the
exact rule on the flat search both keep or both drop the query. "planted pairs resolved" is over
every row: the share of the planted (source, copy) pairs whose worse-ranked member IVF drops
(exact search resolves all of them: each pair is above the threshold and no group outgrows the
neighbours looked at).
"""

import argparse
import multiprocessing
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass

import faiss
import numpy as np
from common import WORK, load_line, write_json

from vlcurate.pipeline.select import dedup

FOLDER = WORK / "select"
CHUNK = 65_536  # rows generated at a time


# --- embeddings --------------------------------------------------------------------------------


def unit_rows(rng, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def at_cosine(rng, sources: np.ndarray, cosine: np.ndarray) -> np.ndarray:
    """Unit vectors at ``cosine[i]`` from each row of ``sources``."""
    v = sources.astype(np.float64)
    u = rng.standard_normal(v.shape)
    u -= (u * v).sum(axis=1, keepdims=True) * v
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    c = cosine[:, None]
    return (c * v + np.sqrt(1 - c**2) * u).astype(np.float32)


def make_embeddings(rows: int, dim: int, copy_fraction: float, seed: int) -> dict:
    """Unit vectors with planted copies, written to ``FOLDER``; the paths and the planted pairs
    (positions of source and copy)."""
    rng = np.random.default_rng(seed)
    copies = int(round(rows * copy_fraction))
    originals = rows - copies
    sizes = rng.integers(1, 5, size=max(1, copies))  # copies per source: 1 to 4
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), copies) + 1]
    sources = rng.choice(originals, len(sizes), replace=False)
    source_of = np.repeat(sources, sizes)[:copies]
    place = rng.permutation(rows)  # place[i]: the position of generated row i
    vectors = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, originals, CHUNK):
        stop = min(originals, start + CHUNK)
        vectors[place[start:stop]] = unit_rows(rng, stop - start, dim)
    for start in range(0, copies, CHUNK):
        stop = min(copies, start + CHUNK)
        cosine = rng.uniform(0.96, 0.98, stop - start)
        source_rows = vectors[place[source_of[start:stop]]]
        vectors[place[originals + start : originals + stop]] = at_cosine(rng, source_rows, cosine)
    rank = rng.permutation(rows)
    pairs = np.stack([place[source_of], place[originals:]], axis=1)
    FOLDER.mkdir(parents=True, exist_ok=True)
    stem = FOLDER / f"embeddings-{rows}-{dim}-{seed}"
    np.save(f"{stem}.npy", vectors)
    np.save(f"{stem}-rank.npy", rank)
    return {
        "vectors": f"{stem}.npy",
        "rank": f"{stem}-rank.npy",
        "pairs": pairs,
        "copies": copies,
        "groups": len(sizes),
    }


# --- measurements, each in its own process -----------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def load(data: dict, queries: np.ndarray):
    vectors, rank = np.load(data["vectors"]), np.load(data["rank"])
    return vectors, rank, np.ascontiguousarray(vectors[queries])


def measure_ivf(data: dict, queries: np.ndarray, nprobe: int, args) -> dict:
    """(a) ``semantic_duplicates(index="ivf")`` over every row; then the IVF index it built,
    searched for ``queries`` (not timed)."""
    vectors, rank, query_vectors = load(data, queries)
    loaded = rss_bytes()
    build_index, built = dedup.build_index, {}

    def timed_build(*a, **kw):
        start = time.perf_counter()
        built["index"] = build_index(*a, **kw)
        built["seconds"] = time.perf_counter() - start
        return built["index"]

    dedup.build_index = timed_build
    try:
        start = time.perf_counter()
        duplicate_of = dedup.semantic_duplicates(
            vectors, rank, args.min_cosine, args.neighbors, index="ivf", nprobe=nprobe
        )
        seconds = time.perf_counter() - start
    finally:
        dedup.build_index = build_index
    peak = peak_rss_bytes()
    similarities, ids = built["index"].search(query_vectors, args.neighbors + 1)
    return {
        "seconds": seconds,
        "build_seconds": built["seconds"],
        "peak": peak,
        "loaded": loaded,
        "duplicate_of": duplicate_of,
        "similarities": similarities,
        "ids": ids,
        "lists": built["index"].nlist,
    }


def measure_flat(data: dict, queries: np.ndarray, args) -> dict:
    """(b) a flat index over every row, searched for ``queries``."""
    vectors, _, query_vectors = load(data, queries)
    loaded = rss_bytes()
    start = time.perf_counter()
    index = dedup.build_index(vectors, "flat")
    build = time.perf_counter() - start
    start = time.perf_counter()
    similarities, ids = index.search(query_vectors, args.neighbors + 1)
    search = time.perf_counter() - start
    return {
        "build_seconds": build,
        "search_seconds": search,
        "peak": peak_rss_bytes(),
        "loaded": loaded,
        "similarities": similarities,
        "ids": ids,
    }


def in_own_process(fn, *fn_args):
    """``fn(*fn_args)`` in a fresh spawned process: its ``ru_maxrss`` is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, fn_args)


# --- recall ------------------------------------------------------------------------------------


def close_pairs(queries, similarities, ids, min_cosine: float, rows: int) -> np.ndarray:
    """(query, neighbour) pairs above the threshold, neighbour not the query, as query * rows +
    neighbour."""
    close = (similarities >= min_cosine) & (ids >= 0) & (ids != queries[:, None])
    return np.unique(np.repeat(queries, close.sum(axis=1)) * rows + ids[close])


def dropped(queries, similarities, ids, rank, min_cosine: float) -> np.ndarray:
    """The rule of ``semantic_duplicates`` for ``queries`` alone: a close neighbour ranks
    better."""
    close = (similarities >= min_cosine) & (ids >= 0)
    neighbour_rank = np.where(close, rank[np.maximum(ids, 0)], np.iinfo(np.int64).max)
    return neighbour_rank.min(axis=1) < rank[queries]


@dataclass
class Row:
    name: str
    label: str
    rows: int
    queries: int  # 0: every row
    seconds: float
    build_seconds: float
    peak_gb: float
    added_gb: float
    extrapolated: bool = False
    pair_recall: float | None = None
    agreement: float | None = None
    planted_resolved: float | None = None
    dropped: int | None = None
    nprobe: int | None = None


def gb(n_bytes: int) -> float:
    return n_bytes / 2**30


def measure_all(args) -> tuple[list[Row], dict]:
    data = make_embeddings(args.rows, args.dim, args.copy_fraction, args.seed)
    rows = args.rows
    rng = np.random.default_rng(args.seed + 1)
    queries = np.sort(rng.choice(rows, min(args.queries, rows), replace=False))
    rank = np.load(data["rank"])
    print(
        f"{rows:,} x {args.dim} embeddings, {data['copies']:,} planted copies of "
        f"{data['groups']:,} sources; {len(queries):,} queries; faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} threads",
        file=sys.stderr,
        flush=True,
    )

    flat = in_own_process(measure_flat, data, queries, args)
    exact_pairs = close_pairs(queries, flat["similarities"], flat["ids"], args.min_cosine, rows)
    exact_drop = dropped(queries, flat["similarities"], flat["ids"], rank, args.min_cosine)
    scale = rows / len(queries)
    table = [
        Row(
            "b",
            f"flat, exact: build + {len(queries):,} queries measured",
            rows,
            len(queries),
            flat["build_seconds"] + flat["search_seconds"],
            flat["build_seconds"],
            gb(flat["peak"]),
            gb(flat["peak"] - flat["loaded"]),
            dropped=int(exact_drop.sum()),
        ),
        Row(
            "b",
            f"flat, exact: extrapolated from {len(queries):,} queries",
            rows,
            0,
            flat["build_seconds"] + flat["search_seconds"] * scale,
            flat["build_seconds"],
            gb(flat["peak"]),
            gb(flat["peak"] - flat["loaded"]),
            extrapolated=True,
        ),
    ]
    print(f"flat done: {table[-1].seconds:,.0f} s extrapolated", file=sys.stderr, flush=True)
    worse = np.where(rank[data["pairs"][:, 0]] > rank[data["pairs"][:, 1]], 0, 1)
    worse_of_pair = data["pairs"][np.arange(len(worse)), worse]
    for nprobe in args.nprobes:
        ivf = in_own_process(measure_ivf, data, queries, nprobe, args)
        ivf_pairs = close_pairs(queries, ivf["similarities"], ivf["ids"], args.min_cosine, rows)
        ivf_drop = ivf["duplicate_of"][queries] >= 0
        row = Row(
            "a",
            f"IVF {ivf['lists']:,} lists, nprobe {nprobe}",
            rows,
            0,
            ivf["seconds"],
            ivf["build_seconds"],
            gb(ivf["peak"]),
            gb(ivf["peak"] - ivf["loaded"]),
            pair_recall=float(np.isin(exact_pairs, ivf_pairs).mean()),
            agreement=float((ivf_drop == exact_drop).mean()),
            planted_resolved=float((ivf["duplicate_of"][worse_of_pair] >= 0).mean()),
            dropped=int((ivf["duplicate_of"] >= 0).sum()),
            nprobe=nprobe,
        )
        table.append(row)
        print(f"IVF nprobe {nprobe} done: {row.seconds:,.0f} s", file=sys.stderr, flush=True)
    facts = {
        "copies": data["copies"],
        "groups": data["groups"],
        "queries": len(queries),
        "exact_pairs": len(exact_pairs),
        "exact_dropped": int(exact_drop.sum()),
        "faiss": faiss.__version__,
        "threads": faiss.omp_get_max_threads(),
    }
    if not args.keep:
        os.remove(data["vectors"])
        os.remove(data["rank"])
    return table, facts


# --- report ------------------------------------------------------------------------------------


def format_table(table: list[Row], facts: dict) -> str:
    head = (
        f"{'row':<56} {'queries':>9} {'seconds':>8} {'build s':>8} {'peak GB':>8} "
        f"{'+GB':>6} {'pair recall':>11} {'agree':>7} {'planted':>8}"
    )
    lines = [head, "-" * len(head)]
    for row in table:
        queries = "all" if row.queries == 0 else f"{row.queries:,}"
        seconds = f"~{row.seconds:,.0f}" if row.extrapolated else f"{row.seconds:,.1f}"
        cells = [row.pair_recall, row.agreement, row.planted_resolved]
        recall, agree, planted = ("-" if x is None else f"{x:.4f}" for x in cells)
        lines.append(
            f"({row.name}) {row.label:<52} {queries:>9} {seconds:>8} {row.build_seconds:>8.1f} "
            f"{row.peak_gb:>8.2f} {row.added_gb:>6.2f} {recall:>11} {agree:>7} {planted:>8}"
        )
    lines += [
        "",
        f"queries: {facts['queries']:,} random rows; exact pairs among them: "
        f"{facts['exact_pairs']:,}; exact drops among them: {facts['exact_dropped']:,}",
        f"planted: {facts['copies']:,} copies of {facts['groups']:,} sources; IVF drops over "
        "every row: " + "; ".join(f"nprobe {r.nprobe} {r.dropped:,}" for r in table if r.nprobe),
        "seconds marked ~ are extrapolated: flat build + measured search x rows / queries",
        "peak GB: the process's RSS high-water mark; +GB: above its RSS with the embeddings loaded",
        load_line(),
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="embeddings")
    parser.add_argument("--dim", type=int, default=512, help="dimension (ViT-B-32: 512)")
    parser.add_argument("--queries", type=int, default=20_000, help="rows searched flat")
    parser.add_argument("--copy-fraction", type=float, default=0.05, help="planted copies")
    parser.add_argument("--min-cosine", type=float, default=0.95, help="duplicate threshold")
    parser.add_argument("--neighbors", type=int, default=16, help="neighbours per sample")
    parser.add_argument(
        "--nprobes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[8, 16, 32],
        help='IVF rows, comma-separated ("": flat only)',
    )
    parser.add_argument("--seed", type=int, default=0, help="embeddings, ranks, queries")
    parser.add_argument("--keep", action="store_true", help="keep the .npy files")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = load_line()
    table, facts = measure_all(args)
    print(f"at the start: {start}")
    print(format_table(table, facts))
    if args.json:
        write_json(args.json, args, {"facts": facts, "rows": [asdict(row) for row in table]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
