"""DataComp's image-based filter: nearest-centre assignment and k-means training, per core.

    .venv/bin/python benchmarks/centroids.py                  # 1M x 512 on disk, 100k assigned
    .venv/bin/python benchmarks/centroids.py --full           # assign all 1M (about 2-3 min)
    .venv/bin/python benchmarks/centroids.py --quick          # smoke run: 200k rows, 20k assigned
    .venv/bin/python benchmarks/centroids.py --n 100000       # a smaller file (--rows)
    .venv/bin/python benchmarks/centroids.py --json out.json

Data: ``--rows`` (1,000,000) L2-normalised float32 embeddings of ``--dim`` (512, ViT-B/32's
width) in one ``.npy`` under ``benchmarks/_work/centroids/`` (about 2 GB, written once, kept),
drawn around 20,000 random directions so that they cluster; ``--centroids`` (10,000) k-means
centres. Every row runs on one thread (OpenMP and BLAS pinned to 1 before numpy loads), so its
rate is per core.

(a) ``dedup.nearest_centroid``, what ``select.image_filter`` runs per input shard: a flat
    inner-product faiss index of the centres, k = 1, over ``--assign-rows`` embeddings (all with
    ``--full``) in chunks of 100,000 as read from the file.
(b) baseline: numpy brute force, ``argmax(x @ centres.T)`` in chunks of 2,048 rows, on
    ``--baseline-rows``.
(c) the floor: reading the file (``np.load``, from the page cache when it is warm), and
    (c2) one pass over the array in memory (a sum): the memory bandwidth.
(d) training: faiss k-means of the ``--centroids`` centres (spherical, seeded, as
    ``dedup.train_centroids``) on a ``--train-rows`` subsample for ``--train-iters`` iterations;
    rows x iterations per second, from which a full training (256 rows a centre, 20
    iterations, faiss's defaults) is estimated.

Target (issue 20): (a) within 0.8x of (b) (faiss is no slower than the baseline's matmul), and
(a) >= 5,000 embeddings/s per core against 10,000 centres.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy and faiss load: one core per row

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from common import WORK, load_line, target_lines, write_json  # noqa: E402

from vlcurate.pipeline.select import dedup  # noqa: E402

CHUNK = 100_000  # rows per assignment call: one input shard's worth
TARGET = 5_000
DIRECTIONS = 20_000


@dataclass
class Row:
    name: str
    label: str
    rows: int
    seconds: float
    cpu_seconds: float

    @property
    def per_core(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed(name: str, label: str, rows: int, work) -> tuple[Row, object]:
    start, cpu = time.perf_counter(), time.process_time()
    out = work()
    return Row(name, label, rows, time.perf_counter() - start, time.process_time() - cpu), out


def embeddings(rows: int, dim: int, seed: int = 0) -> str:
    """The benchmark's embeddings file, written once per (rows, dim)."""
    path = WORK / "centroids" / f"emb-{rows}x{dim}.npy"
    if path.exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((DIRECTIONS, dim), dtype=np.float32)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, dim))
    for first in range(0, rows, CHUNK):
        n = min(CHUNK, rows - first)
        x = directions[rng.integers(0, DIRECTIONS, n)]
        x += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
        out[first : first + n] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out
    tmp.rename(path)
    return str(path)


def numpy_argmax(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [np.argmax(x[i : i + 2048] @ centres.T, axis=1) for i in range(0, len(x), 2048)]
    )


def train(sample: np.ndarray, k: int, iters: int, seed: int = 0) -> np.ndarray:
    """``dedup.train_centroids``'s k-means with ``iters`` iterations."""
    kmeans = faiss.Kmeans(
        sample.shape[1], k, niter=iters, seed=seed, spherical=True, min_points_per_centroid=1
    )
    kmeans.train(sample)
    return kmeans.centroids


def measure(args) -> tuple[list[Row], dict]:
    path = embeddings(args.rows, args.dim)
    c, data = timed("c", "floor: np.load of the file", args.rows, lambda: np.load(path))
    c2, _ = timed("c2", "floor: one pass in memory (sum)", args.rows, lambda: data.sum())
    rng = np.random.default_rng(1)
    sample = data[np.sort(rng.choice(args.rows, args.train_rows, replace=False))]
    d, centres = timed(
        "d",
        f"k-means train, {args.train_iters} iterations (rows x it)",
        args.train_rows * args.train_iters,
        lambda: train(sample, args.centroids, args.train_iters),
    )
    n = args.rows if args.full else min(args.assign_rows, args.rows)
    a, assigned = timed(
        "a",
        "dedup.nearest_centroid (faiss flat IP, k=1)",
        n,
        lambda: np.concatenate(
            [
                dedup.nearest_centroid(data[i : min(n, i + CHUNK)], centres)
                for i in range(0, n, CHUNK)
            ]
        ),
    )
    m = min(args.baseline_rows, n)
    b, brute = timed(
        "b", "baseline: numpy argmax(x @ C.T)", m, lambda: numpy_argmax(data[:m], centres)
    )
    info = {
        "rows": args.rows,
        "dim": args.dim,
        "centroids": args.centroids,
        "file_gb": round(os.path.getsize(path) / 1e9, 2),
        "agree_with_baseline": float(np.mean(assigned[:m] == brute)),
        "clusters_used": int(len(np.unique(assigned))),
        "threads": faiss.omp_get_max_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    return [a, b, c, c2, d], info


def report(rows: list[Row], info: dict, args) -> tuple[str, list[dict]]:
    head = f"{'row':<52} {'rows':>10} {'seconds':>8} {'cpu s':>7} {'per core/s':>12}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"({row.name}) {row.label:<47} {row.rows:>10,} {row.seconds:>8.2f} "
            f"{row.cpu_seconds:>7.2f} {row.per_core:>12,.0f}"
        )
    by = {r.name: r for r in rows}
    a, b = by["a"], by["b"]
    checks = [
        {"target": "(a) embeddings/s per core", "value": a.per_core, "goal": TARGET},
        {"target": "(a) / (b)", "value": a.per_core / b.per_core, "goal": 0.8, "format": "{:.2f}"},
    ]
    for check in checks:
        check["met"] = check["value"] >= check["goal"]
    lines += target_lines(checks, width=28, value_width=10, rule=56)
    full_train = 256 * args.centroids * 20 / by["d"].per_core
    lines += [
        "",
        f"(a) / (c): {a.per_core / by['c'].per_core:.4f} of the read floor, "
        f"{a.per_core / by['c2'].per_core:.5f} of the memory pass: assignment is compute-bound "
        f"({2 * args.dim * args.centroids * a.per_core / 1e9:.0f} GFLOP/s per core)",
        f"1M assigned in {1e6 / a.per_core:,.0f} s per core; a full training (256 rows a "
        f"centre, 20 iterations) about {full_train:,.0f} s per core",
        f"faiss and numpy agree on {info['agree_with_baseline']:.4f} of (b)'s rows; "
        f"{info['clusters_used']:,} of {args.centroids:,} clusters used; file "
        f"{info['file_gb']} GB; peak RSS {info['peak_rss_mb']:,} MB; {info['threads']} thread",
        load_line(),
    ]
    return "\n".join(lines), checks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--n", "--rows", dest="rows", type=int, default=1_000_000, help="embeddings in the file")
    add("--dim", type=int, default=512, help="embedding width")
    add("--centroids", type=int, default=10_000, help="k-means centres")
    add("--assign-rows", type=int, default=100_000, help="embeddings assigned in (a)")
    add("--full", action="store_true", help="assign every row in (a)")
    add("--baseline-rows", type=int, default=20_000, help="embeddings for (b)")
    add("--train-rows", type=int, default=40_000, help="k-means subsample for (d)")
    add("--train-iters", type=int, default=3, help="k-means iterations for (d)")
    add("--quick", action="store_true", help="200k rows, 20k assigned, 5k for (b)")
    add("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rows, args.assign_rows, args.baseline_rows = 200_000, 20_000, 5_000
        args.train_rows, args.train_iters = 20_000, 2
    rows, info = measure(args)
    text, checks = report(rows, info, args)
    print(text)
    if args.json:
        sections = {"info": info, "rows": [{**vars(r), "per_core": r.per_core} for r in rows]}
        write_json(args.json, args, {**sections, "targets": checks})
    return 0


if __name__ == "__main__":
    sys.exit(main())
