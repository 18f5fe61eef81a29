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
import sys
import time

from vlcurate.jobs.road import STAGES, Road
from vlcurate.jobs.steps import described
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe
from vlcurate.pipeline.stage import OutputError, SettingsMismatch
from vlcurate.pipeline.stats import stage_table

# Refusals of bad input or settings (exit code 2); anything else is a failure (exit code 1).
REFUSALS = (RecipeError, ConfigError, storage.InputError, OutputError, SettingsMismatch)

HELP = {
    "--output": "folder for every stage's output",
    "--master": "Spark master (default: local[*])",
    "--allow-private-network": "for download: fetch from these private networks or ADDRESS:PORT "
    "pairs (tests and the demo)",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = parser or argparse.ArgumentParser(prog="run", description=__doc__, formatter_class=raw)
    add = parser.add_argument
    add("recipe", help=f"bundled recipe ({', '.join(bundled_recipes())}) or a YAML file")
    add("--input", "-i", nargs="+", default=[], help="WARC files, globs or listings; for extract")
    add("--output", "-o", required=True, help=HELP["--output"])
    for flag, dest, default in (("--from", "start", "extract"), ("--to", "stop", "select")):
        add(flag, dest=dest, choices=STAGES, default=default, help=f"default: {default}")
    add("--master", default="local[*]", help=HELP["--master"])
    add("--allow-private-network", nargs="*", metavar="CIDR", help=HELP["--allow-private-network"])
    for stage in STAGES:
        help_text = f"flags of `curate {stage}`, as one string; they win over the recipe"
        add(f"--{stage}-args", default="", metavar="FLAGS", help=help_text)
    add("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = list(STAGES[STAGES.index(args.start) : STAGES.index(args.stop) + 1])
    try:
        if not stages:
            raise ConfigError("--from comes after --to")
        if stages[0] == "extract" and not args.input:
            raise ConfigError("--input is needed when the road starts at extract")
        extra = {stage: getattr(args, f"{stage}_args") for stage in STAGES}
        where = (args.output, args.input, args.master, args.allow_private_network)
        road = Road(load_recipe(args.recipe), *where, extra, not args.no_progress)
        plan = road.plan(stages)  # every setting checked here, before any work
    except REFUSALS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    timings = []
    for n, (stage, run) in enumerate(plan, 1):
        print(f"\n=== run [{n}/{len(plan)}] {stage} -> {road.folder(stage)}", flush=True)
        started = time.monotonic()
        try:
            stats = run()
        except Exception as e:  # the stages done so far are kept; a rerun resumes
            refused = isinstance(e, REFUSALS)
            print(f"error: {e}" if refused else f"error: {type(e).__name__}: {e}", file=sys.stderr)
            print(
                f"\nrun: {stage} failed; fix it and rerun the same command: what is done is kept",
                file=sys.stderr,
            )
            return 2 if refused else 1
        timings.append((stage, road.folder(stage), time.monotonic() - started))
        print(described(road, stage, stats))
        units = stats.get("units", {})
        if units.get("in") and stats.get("units_resumed") == units["in"]:
            print(f"{stage}: done before ({units['in']} units); nothing redone")
    print(f"\nrun: done in {sum(t for _, _, t in timings):.0f} s\n\n{stage_table(timings)}")
    if "select" in stages:
        print(f"\n  report: {road.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
