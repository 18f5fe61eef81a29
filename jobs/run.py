"""The whole road in one command: extract -> filter -> download -> score -> select.

    curate run laion --input CC-MAIN-*.warc.gz --output out/laion
    curate run demo --input crawl.warc.gz --output out/demo --allow-private-network 127.0.0.1:8765
    curate run laion --input ... --output out/laion --from score --to select
    curate run laion ... --score-args "--device cuda --batch-size 512"

Folders under ``--output``: ``extract/`` (pairs and documents), ``candidates/`` (the recipe's
text rules), ``shards/`` (downloaded), ``scores/`` (CLIP, NSFW, watermark, faces, embeddings),
``final/`` (the selected shards, manifest.json, uids.npy), and ``report.html``.

A recipe with a ``docs:`` section (mmc4, mmc4-core, mmc4-ff, obelics) runs the interleaved road
instead: extract -> filter (``curate docs filter``, then ``docs images``) -> download (the
documents' images) -> score -> select (``curate docs assign``), into ``extract/``, ``docs/``,
``shards/``, ``scores/``, ``interleaved/`` and ``report.html``:

    curate run mmc4 --input crawl.warc.gz --output out/mmc4 \
        --score-args "--model tiny-clip --pretrained miniweb"

Every stage resumes: a rerun after a kill skips the files, shards and URLs already done, and
``--from``/``--to`` run part of the road. The recipe's ``download:``, ``score:`` and
``select:`` sections set each stage; ``--STAGE-args`` adds flags to one stage (they win).
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

from vlcurate.jobs import docs as docs_job
from vlcurate.jobs import download, extract, score
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs import selection as select_job
from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe

STAGES = ("extract", "filter", "download", "score", "select")
FOLDERS = {
    "extract": "extract",
    "filter": "candidates",
    "download": "shards",
    "score": "scores",
    "select": "final",
}
DOC_FOLDERS = {**FOLDERS, "filter": "docs", "select": "interleaved"}


def folders_of(recipe) -> dict[str, str]:
    """The road's folders: the pair road's, or the interleaved road's for a docs recipe."""
    return DOC_FOLDERS if recipe.docs is not None else FOLDERS


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "recipe", help=f"bundled recipe ({', '.join(bundled_recipes())}) or a YAML file"
    )
    parser.add_argument(
        "--input",
        "-i",
        nargs="+",
        default=[],
        help="WARC files, folders or globs (local paths or URLs); needed when "
        "the road starts at extract",
    )
    parser.add_argument("--output", "-o", required=True, help="folder for every stage's output")
    parser.add_argument(
        "--from",
        dest="start",
        choices=STAGES,
        default="extract",
        help="first stage to run (default: extract)",
    )
    parser.add_argument(
        "--to",
        dest="stop",
        choices=STAGES,
        default="select",
        help="last stage to run (default: select)",
    )
    parser.add_argument(
        "--master",
        default="local[*]",
        help="Spark master for extract and filter (default: local[*])",
    )
    parser.add_argument(
        "--allow-private-network",
        nargs="*",
        metavar="CIDR",
        default=None,
        help="passed to download: for tests and the demo, fetch from these "
        "private networks or ADDRESS:PORT pairs",
    )
    for stage in STAGES:
        parser.add_argument(
            f"--{stage}-args",
            default="",
            metavar="FLAGS",
            help=f"extra flags for `curate {stage}`, quoted as one string "
            f"(see `curate {stage} --help`)",
        )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def score_flags(settings: dict) -> list[str]:
    """A recipe's ``score:`` section as `curate score` flags."""
    flags = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            flags += [flag, "none" if value is None else str(value)]
    return flags


def stage_argv(stage: str, args, out: Path) -> list[str]:
    recipe = load_recipe(args.recipe)
    folder = {name: str(out / f) for name, f in folders_of(recipe).items()}
    quiet = ["--no-progress"] if args.no_progress else []
    if recipe.docs is not None and stage != "extract":
        argv = doc_stage_argv(stage, args, recipe, folder, out, quiet)
    else:
        argv = pair_stage_argv(stage, args, recipe, folder, out, quiet)
    if stage == "download" and args.allow_private_network is not None:
        argv += ["--allow-private-network", *args.allow_private_network]
    return argv + shlex.split(getattr(args, f"{stage}_args"))


def doc_stage_argv(stage, args, recipe, folder, out, quiet) -> list[str]:
    images = str(Path(folder["filter"]) / "images.parquet")
    return {
        "filter": [
            "filter",
            "--input",
            folder["extract"],
            "--recipe",
            args.recipe,
            "--output",
            folder["filter"],
            *quiet,
        ],
        "download": ["--input", images, "--output", folder["download"], "--recipe", args.recipe],
        "score": [
            "--input",
            folder["download"],
            "--output",
            folder["score"],
            *score_flags(recipe.score),
            *quiet,
        ],
        "select": [
            "assign",
            "--docs",
            folder["filter"],
            "--shards",
            folder["download"],
            "--scores",
            folder["score"],
            "--recipe",
            args.recipe,
            "--output",
            folder["select"],
            "--report",
            str(out / "report.html"),
        ],
    }[stage]


def pair_stage_argv(stage, args, recipe, folder, out, quiet) -> list[str]:
    argv = {
        "extract": ["--input", *args.input, "--output", folder["extract"], *quiet],
        "filter": [
            "--input",
            folder["extract"],
            "--recipe",
            args.recipe,
            "--output",
            folder["filter"],
        ],
        "download": [
            "--input",
            folder["filter"],
            "--output",
            folder["download"],
            "--recipe",
            args.recipe,
        ],
        "score": [
            "--input",
            folder["download"],
            "--output",
            folder["score"],
            *score_flags(recipe.score),
            *quiet,
        ],
        "select": [
            "--shards",
            folder["download"],
            "--scores",
            folder["score"],
            "--recipe",
            args.recipe,
            "--output",
            folder["select"],
            "--report",
            str(out / "report.html"),
            *quiet,
        ],
    }[stage]
    return argv


def docs_filter(argv: list[str], master: str) -> int:
    """``curate docs filter``, then ``docs images`` (the download stage's input)."""
    code = docs_job.main(argv, master)
    folder = argv[argv.index("--output") + 1]
    if code == 0:
        code = docs_job.main(
            ["images", "--input", folder, "--output", str(Path(folder) / "images.parquet")]
        )
    return code


DOC_RUNNERS = {
    "filter": docs_filter,
    "select": lambda argv, master: docs_job.main(argv, master),
}

RUNNERS = {
    "extract": lambda argv, master: extract.main(argv, master),
    "filter": lambda argv, master: filter_job.main(argv, master),
    "download": lambda argv, master: download.main(argv),
    "score": lambda argv, master: score.main(argv, "local[*]"),
    "select": lambda argv, master: select_job.main(argv, "local[*]"),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)  # an unknown key fails here, before any work
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stages = STAGES[STAGES.index(args.start) : STAGES.index(args.stop) + 1]
    if not stages:
        print("error: --from comes after --to", file=sys.stderr)
        return 2
    if stages[0] == "extract" and not args.input:
        print("error: --input is needed when the road starts at extract", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    folders = folders_of(recipe)
    runners = {**RUNNERS, **DOC_RUNNERS} if recipe.docs is not None else RUNNERS
    done_marker = "images.parquet" if recipe.docs is not None else "stats.json"
    timings = []
    for n, stage in enumerate(stages, 1):
        print(f"\n=== run [{n}/{len(stages)}] {stage} -> {out / folders[stage]}", flush=True)
        started = time.monotonic()
        if stage == "filter" and storage.exists(str(out / folders[stage] / done_marker)):
            print(f"filter: done before ({done_marker} exists); skipped")
            code = 0
        else:
            code = runners[stage](stage_argv(stage, args, out), args.master)
        timings.append((stage, time.monotonic() - started))
        if code != 0:
            print(
                f"\nrun: {stage} failed (exit {code}); fix it and rerun the same command: the "
                "stages done so far are kept",
                file=sys.stderr,
            )
            return code
    print(summary(out, timings, "select" in stages, folders))
    return 0


def summary(
    out: Path, timings: list[tuple[str, float]], report: bool, folders: dict[str, str] = FOLDERS
) -> str:
    import json

    lines = ["", f"run: done in {sum(t for _, t in timings):.0f} s", ""]
    lines.append(f"  {'stage':<9} {'in':>8} {'kept':>8} {'seconds':>8}  folder")
    for stage, seconds in timings:
        stats_file = out / folders[stage] / "stats.json"
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        lines.append(
            f"  {stage:<9} {stats.get('in', ''):>8} {stats.get('kept', ''):>8} "
            f"{seconds:>8.1f}  {out / folders[stage]}"
        )
    if report:
        lines.append(f"\n  report: {out / 'report.html'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
