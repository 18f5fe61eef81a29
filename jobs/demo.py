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
from vlcurate.miniweb.clip import miniweb_home
from vlcurate.pipeline.recipe import load_recipe

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
        "--skip-miniweb",
        action="store_true",
        help="only the bundled WARC files: no mini web, no download",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output)
    code = bundled_warcs(out / "commoncrawl", args)
    if code == 0 and not args.skip_miniweb:
        miniweb_clip(args)
        code = mini_web(out, args)
    return code


def miniweb_clip(args) -> None:
    """Train (or reuse) the mini web's CLIP and say how good it is on held-out scenes."""
    from vlcurate.miniweb.clip import train_miniweb_clip
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.train.evaluate import retrieval

    print(
        f"\ndemo: the mini web's CLIP: tiny-clip trained on mini-web scenes in {miniweb_home()}"
        " (about two minutes on two cores the first time; reused after)"
    )
    summary = train_miniweb_clip(progress=not args.no_progress)
    scorer = ClipScorer(model=summary["model"], pretrained=summary["final"], device="cpu")
    found = retrieval(scorer, summary["heldout_shards"])
    i2t, t2i = found["image_to_text"], found["text_to_image"]
    print(
        f"demo: trained {summary['steps']} steps (last loss {summary['loss']:.3f}); on "
        f"{found['n']} held-out scenes, image->text R@1 {i2t['R@1']:.3f}, R@5 {i2t['R@5']:.3f},"
        f" text->image R@1 {t2i['R@1']:.3f} (chance {found['chance']['R@1']:.3f})"
    )


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
    print(samples(out / "extract"))
    for recipe in args.recipes:
        print(f"\ndemo: filtering the pairs with the {recipe} recipe")
        argv = [
            "--input",
            str(out / "extract"),
            "--recipe",
            recipe,
            "--output",
            str(out / f"filter-{recipe}"),
        ]
        code = filter_job.main(argv, args.master)
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
        f"demo: models: CLIP {recipe.score['model']} trained above on mini-web scenes (not "
        "pretrained on the web: it knows coloured shapes, not photos, and the report says "
        "so); NSFW open_nsfw, watermark PP-OCRv4, faces Haar: real weights shipped in their "
        "packages"
    )
    with miniweb.serve(out / "web", port=port, slow_seconds=5) as server:
        print(f"demo: serving it at {server.url}; running `curate run demo` on its crawl")
        argv = [
            "demo",
            "--input",
            str(out / "web" / miniweb.WARC_FILE),
            "--output",
            str(out),
            "--master",
            args.master,
            "--allow-private-network",
            f"127.0.0.1:{port}",
            "--download-args",
            "--timeout 3 --processes 2 --threads 32 --samples-per-shard 100",
        ]
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


def against_truth(scores: Path, manifest) -> str:
    """The scorers against what the mini web knows is in each image."""
    import pyarrow.parquet as pq

    truth = {s.image_url: s for s in manifest.samples}
    rows = [r for r in pq.read_table(scores / "scores").to_pylist() if r["status"] == "ok"]
    known = [(r, truth[r["url"]]) for r in rows if r["url"] in truth]
    marked = [r for r, s in known if s.watermark]
    flagged = [r for r, s in known if not s.watermark and (r["watermark_p"] or 0) >= 0.5]
    with_faces = [(r, s) for r, s in known if s.faces]
    lines = [
        f"demo: {len(rows)} images scored; against the mini web's truth:",
        f"  watermarked: {sum((r['watermark_p'] or 0) >= 0.5 for r in marked)} of {len(marked)} "
        f"flagged (watermark_p >= 0.5); clean images flagged: {len(flagged)} of "
        f"{len(known) - len(marked)}",
        f"  faces: {sum(bool(r['face_count']) for r, _ in with_faces)} of {len(with_faces)} "
        f"images with faces found; nsfw_p max {max((r['nsfw_p'] for r in rows), default=0):.3f}",
    ]
    return "\n".join(lines)


def samples(output: Path, n: int = 5) -> str:
    """A few extracted pairs and the start of one document, to see what the job produced."""
    import pyarrow.parquet as pq

    pairs = pq.read_table(output / "pairs", columns=["caption", "url"]).to_pylist()
    docs = pq.read_table(output / "docs", columns=["page_url", "nodes"]).to_pylist()
    lines = [f"\nsample pairs ({len(pairs)} in {output / 'pairs'}):"]
    step = max(1, len(pairs) // n)
    lines += [f"  {p['caption'][:50]!r:54} {p['url'][:70]}" for p in pairs[::step][:n]]
    doc = max(docs, key=lambda d: sum(node["type"] == "image" for node in d["nodes"]))
    lines.append(f"sample document ({doc['page_url']}, first nodes of {len(doc['nodes'])}):")
    for node in doc["nodes"][:8]:
        shown = node["text"] if node["type"] == "text" else f"<image {node['url']}>"
        lines.append(f"  [{node['type']}] {shown[:90]}")
    return "\n".join(lines)
