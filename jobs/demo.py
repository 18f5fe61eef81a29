"""``curate demo``: the pipeline on bundled data, offline.

1. extract the real Common Crawl WARC files bundled in tests/data/warc, and filter their pairs
   with every recipe;
2. train the mini web's CLIP: no pretrained CLIP can be fetched offline, so ``tiny-clip`` is
   trained by ``curate train``'s loop on 8000 mini-web scenes (about two minutes on two cores;
   kept in ``$CURATE_CACHE/miniweb-clip``, default ``~/.cache/curate``, and reused), then
   evaluated on 500 held-out scenes;
3. build the mini web (a synthetic crawl with known truth), serve it on 127.0.0.1, and run the
   whole road on it with the ``demo`` recipe (``curate run demo``): extract -> filter ->
   download -> score (that CLIP; NSFW, OCR watermark and faces with the weights their packages
   ship) -> select, writing final shards and ``OUTPUT/report.html``; then the scorers against
   the mini web's truth.
"""

import argparse
import sys
from pathlib import Path

from vlcurate import miniweb
from vlcurate.jobs import extract, run
from vlcurate.jobs import filter as filter_job
from vlcurate.miniweb.clip import miniweb_home, trained_miniweb_clip
from vlcurate.miniweb.truth import against_truth
from vlcurate.pipeline.extract.stage import sample_text
from vlcurate.pipeline.recipe import load_recipe

# The mini web is our own loopback server: no per-host limits toward it.
DOWNLOAD = "--timeout 3 --processes 2 --threads 32 --samples-per-shard 100 --host-delay 0"
DOWNLOAD += " --host-concurrency 32"
BUNDLED_WARCS = Path(__file__).resolve().parent.parent / "tests" / "data" / "warc"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="demo", description=__doc__)
    parser.add_argument(
        "--output", "-o", default="out/demo", help="output folder (default: out/demo)"
    )
    parser.add_argument("--master", default="local[*]", help="Spark master URL (default: local[*])")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--recipes",
        nargs="*",
        default=["laion", "datacomp-basic", "cc3m"],
        help="filter recipes to run on the bundled WARC files (default: all three)",
    )
    parser.add_argument(
        "--skip-miniweb", action="store_true", help="only the bundled WARC files, no mini web"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output)
    code = bundled_warcs(out / "commoncrawl", args)
    if code == 0 and not args.skip_miniweb:
        print(
            f"\ndemo: the mini web's CLIP, in {miniweb_home()} (about two minutes on two cores "
            "the first time; reused after)"
        )
        print("demo: " + trained_miniweb_clip(progress=not args.no_progress))
        code = mini_web(out, args)
    return code


def bundled_warcs(out: Path, args) -> int:
    warcs = sorted(str(p) for p in BUNDLED_WARCS.glob("*.warc*"))
    if not warcs:
        print(f"error: no bundled WARC files in {BUNDLED_WARCS}", file=sys.stderr)
        return 2
    print(f"demo: extracting {len(warcs)} bundled Common Crawl WARC files from {BUNDLED_WARCS}")
    flags = ["--no-progress"] if args.no_progress else []
    code = extract.main(["--input", *warcs, "--output", str(out / "extract"), *flags], args.master)
    if code != 0:
        return code
    print(sample_text(out / "extract"))
    for recipe in args.recipes:
        print(f"\ndemo: filtering the pairs with the {recipe} recipe")
        argv = ["--input", str(out / "extract"), "--recipe", recipe]
        code = filter_job.main([*argv, "--output", str(out / f"filter-{recipe}")], args.master)
        if code != 0:
            return code
    return 0


def mini_web(out: Path, args) -> int:
    """The whole road (`curate run demo`) on the mini web, served on 127.0.0.1."""
    port = miniweb.free_port()
    manifest = miniweb.build(out / "web", seed=0, port=port)
    counts = manifest.counts()
    print(
        f"\ndemo: built the mini web in {out / 'web'}: {len(manifest.samples)} image references, "
        f"{counts}"
    )
    recipe = load_recipe("demo")
    print(
        f"demo: models: CLIP {recipe.score.model} trained above on mini-web scenes (not "
        "pretrained on the web: it knows coloured shapes, not photos, and the report says "
        "so); NSFW open_nsfw, watermark PP-OCRv4, faces Haar: real weights shipped in their "
        "packages"
    )
    with miniweb.serve(out / "web", port=port, slow_seconds=5) as server:
        print(f"demo: serving it at {server.url}; running `curate run demo` on its crawl")
        crawl = str(out / "web" / miniweb.WARC_FILE)
        argv = ["demo", "--input", crawl, "--output", str(out), "--master", args.master]
        argv += ["--allow-private-network", f"127.0.0.1:{port}", "--download-args", DOWNLOAD]
        code = run.main(argv + (["--no-progress"] if args.no_progress else []))
    if code == 0:
        print(against_truth(out / "scores", manifest))
        print(f"\ndemo: open {out / 'report.html'} to see what the recipe did")
        heldout = miniweb_home() / "scenes" / "heldout" / "00000.tar"
        print(
            f"demo: to see what the recipe buys a CLIP trained on its output (DataComp's "
            f"loop): curate compare demo demo-nofilter --shards {out / 'shards'} --scores "
            f"{out / 'scores'} --eval-shards {heldout} --label-field color --samples 4000 "
            f"--output {out / 'compare'}"
        )
    return code
