"""The whole road in one command: extract -> filter -> download -> score -> select.

    curate run laion --input CC-MAIN-*.warc.gz --output out/laion
    curate run demo --input crawl.warc.gz --output out/demo --allow-private-network 127.0.0.1:8765
    curate run laion --input ... --output out/laion --from score --to select
    curate run laion ... --score-args "--device cuda --batch-size 512"

Folders under ``--output``: ``extract/`` (pairs and documents), ``candidates/`` (the recipe's
text rules), ``shards/`` (downloaded), ``scores/`` (CLIP, NSFW, watermark, faces, embeddings),
``final/`` (the selected shards, manifest.json, uids.npy), and ``report.html``.

Every stage resumes: a rerun after a kill skips the files, shards and URLs already done, and
``--from``/``--to`` run part of the road. The recipe's ``download:``, ``score:`` and
``select:`` sections set each stage; ``--STAGE-args`` adds flags to one stage (they win).
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

from jobs import download, extract, score
from jobs import filter as filter_job
from jobs import selection as select_job
from pipeline import storage
from pipeline.recipe import RecipeError, bundled_recipes, load_recipe

STAGES = ("extract", "filter", "download", "score", "select")
FOLDERS = {"extract": "extract", "filter": "candidates", "download": "shards",
           "score": "scores", "select": "final"}  # fmt: skip


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", help=f"bundled recipe ({', '.join(bundled_recipes())}) or a "
                        "YAML file")  # fmt: skip
    parser.add_argument("--input", "-i", nargs="+", default=[],
                        help="WARC files, folders or globs (local paths or URLs); needed when "
                        "the road starts at extract")  # fmt: skip
    parser.add_argument("--output", "-o", required=True, help="folder for every stage's output")
    parser.add_argument("--from", dest="start", choices=STAGES, default="extract",
                        help="first stage to run (default: extract)")  # fmt: skip
    parser.add_argument("--to", dest="stop", choices=STAGES, default="select",
                        help="last stage to run (default: select)")  # fmt: skip
    parser.add_argument("--master", default="local[*]",
                        help="Spark master for extract and filter (default: local[*])")  # fmt: skip
    parser.add_argument("--allow-private-network", nargs="*", metavar="CIDR", default=None,
                        help="passed to download: for tests and the demo, fetch from these "
                        "private networks or ADDRESS:PORT pairs")  # fmt: skip
    for stage in STAGES:
        parser.add_argument(f"--{stage}-args", default="", metavar="FLAGS",
                            help=f"extra flags for `curate {stage}`, quoted as one string "
                            f"(see `curate {stage} --help`)")  # fmt: skip
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
    folder = {name: str(out / f) for name, f in FOLDERS.items()}
    quiet = ["--no-progress"] if args.no_progress else []
    recipe = load_recipe(args.recipe)
    argv = {
        "extract": ["--input", *args.input, "--output", folder["extract"], *quiet],
        "filter": ["--input", folder["extract"], "--recipe", args.recipe,
                   "--output", folder["filter"]],
        "download": ["--input", folder["filter"], "--output", folder["download"],
                     "--recipe", args.recipe],
        "score": ["--input", folder["download"], "--output", folder["score"],
                  *score_flags(recipe.score), *quiet],
        "select": ["--shards", folder["download"], "--scores", folder["score"],
                   "--recipe", args.recipe, "--output", folder["select"],
                   "--report", str(out / "report.html"), *quiet],
    }[stage]  # fmt: skip
    if stage == "download" and args.allow_private_network is not None:
        argv += ["--allow-private-network", *args.allow_private_network]
    return argv + shlex.split(getattr(args, f"{stage}_args"))


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
        load_recipe(args.recipe)  # an unknown key fails here, before any work
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
    timings = []
    for n, stage in enumerate(stages, 1):
        print(f"\n=== run [{n}/{len(stages)}] {stage} -> {out / FOLDERS[stage]}", flush=True)
        started = time.monotonic()
        if stage == "filter" and storage.exists(str(out / FOLDERS[stage] / "stats.json")):
            print("filter: done before (its stats.json exists); skipped")
            code = 0
        else:
            code = RUNNERS[stage](stage_argv(stage, args, out), args.master)
        timings.append((stage, time.monotonic() - started))
        if code != 0:
            print(f"\nrun: {stage} failed (exit {code}); fix it and rerun the same command: the "
                  "stages done so far are kept", file=sys.stderr)  # fmt: skip
            return code
    print(summary(out, timings, "select" in stages))
    return 0


def summary(out: Path, timings: list[tuple[str, float]], report: bool) -> str:
    import json

    lines = ["", f"run: done in {sum(t for _, t in timings):.0f} s", ""]
    lines.append(f"  {'stage':<9} {'in':>8} {'kept':>8} {'seconds':>8}  folder")
    for stage, seconds in timings:
        stats_file = out / FOLDERS[stage] / "stats.json"
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        lines.append(f"  {stage:<9} {stats.get('in', ''):>8} {stats.get('kept', ''):>8} "
                     f"{seconds:>8.1f}  {out / FOLDERS[stage]}")  # fmt: skip
    if report:
        lines.append(f"\n  report: {out / 'report.html'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
