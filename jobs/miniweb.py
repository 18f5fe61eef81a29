"""Build the mini web, a deterministic synthetic crawl with ground truth, and optionally serve it.

    curate miniweb --output build/miniweb                     # build for port 8765
    curate miniweb --output build/miniweb --port 0 --serve    # a free port, then serve it

Writes OUT/site/ (pages and images), OUT/crawl.warc.gz (the pages as WARC records, for
`curate extract`), OUT/manifest.jsonl (the truth about every image reference) and
OUT/miniweb.json. The crawl's URLs carry the port, so serve on the port it was built for.

    curate miniweb --output build/scenes --scenes 8000 --seed 1   # CLIP training shards
    curate miniweb --output build/pool --pool 6000 --seed 1       # a noisy downloaded pool

``--scenes N`` writes no web: N shape scenes straight into img2dataset-style shards
OUT/NNNNN.tar (jpg, exact caption txt, json with the scene's truth and ``kind``/``color``
labels), to train and evaluate a CLIP on. ``--pool N`` writes N samples of a noisy pool as
img2dataset would have downloaded them (tar, parquet sidecar, NNNNN_stats.json; a third of the
captions mismatched, duplicates, watermarks, junk, Zipf-skewed concepts; each sample's
``noise`` says which), for ``curate score`` and ``curate compare``.
"""

import argparse
import sys
import threading

from vlcurate.miniweb import DEFAULT_PORT, DEFAULT_SLOW_SECONDS, WARC_FILE, build, free_port, serve
from vlcurate.miniweb.pool import write_pool
from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.storage import brace_pattern


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="miniweb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", "-o", required=True, help="folder to build into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of http://127.0.0.1:PORT in the crawl's URLs; 0 picks a free one "
        f"(default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--n-shapes", type=int, default=200, metavar="N", help="drawn shape scenes (default: 200)"
    )
    parser.add_argument(
        "--serve", action="store_true", help="after building, serve on 127.0.0.1 until Ctrl-C"
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=DEFAULT_SLOW_SECONDS,
        metavar="S",
        help="how long slow URLs sleep before answering (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request when serving")
    for flag, what in (
        ("--scenes", "N shape scenes as WebDataset shards for CLIP training"),
        ("--pool", "a noisy pool of N downloaded samples (img2dataset shards)"),
    ):
        parser.add_argument(
            flag, type=int, default=0, metavar="N", help=f"instead of a web, {what}"
        )
    return parser


def format_summary(manifest, output: str) -> str:
    counts = manifest.counts()
    lines = [
        f"miniweb: {len(manifest.samples)} image references on {len(manifest.pages)} pages "
        f"(seed {manifest.seed}) -> {output}",
        f"  crawl: {output}/{WARC_FILE}   truth: {output}/manifest.jsonl",
    ]
    for title, key in (("by kind", "kind"), ("expected download", "expected_download")):
        counter = counts[key]
        lines.append(f"  {title}:")
        lines += [f"    {name:<18} {n:>5}" for name, n in counter.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenes or args.pool:
        write, n = (write_scene_shards, args.scenes) if args.scenes else (write_pool, args.pool)
        shards = write(args.output, n, seed=args.seed)
        what = "scenes" if args.scenes else "samples of a noisy pool"
        print(f"miniweb: {n} {what} (seed {args.seed}) -> {brace_pattern(shards)}")
        return 0
    port = args.port or free_port()
    try:
        manifest = build(args.output, seed=args.seed, port=port, n_shapes=args.n_shapes)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(manifest, args.output))
    if not args.serve:
        return 0
    try:
        server = serve(args.output, port=port, slow_seconds=args.slow_seconds, verbose=args.verbose)
    except OSError as e:
        print(f"error: cannot serve on 127.0.0.1:{port}: {e} (try --port 0)", file=sys.stderr)
        return 2
    with server:
        print(f"serving {server.url}/ (index: {server.url}/index.html); Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
