"""Which curation helps, on ground truth: issue 20's comparison on the mini web's noisy pool.

    .venv/bin/python benchmarks/curation.py                        # 6,000 samples, 3 seeds
    .venv/bin/python benchmarks/curation.py --pool 1000 --samples 1280 --seeds 1   # smoke run

Steps, all with the project's own commands, into ``--output`` (default benchmarks/_work/curation):

1. ``curate miniweb --pool N --seed 1``: the noisy pool (a third of the captions mismatched,
   duplicates and near-duplicates, watermarks, junk alt text and junk images, Zipf-skewed
   concepts; each sample's ``noise`` recorded), and its ``metadata.json``;
2. ``curate miniweb --scenes 500 --seed 2``: held-out scenes to evaluate on (uniform concepts);
   ``--seed 3``: 500 more, the image-based filter's reference set (ImageNet's stand-in);
3. ``curate score`` of the pool with the mini web's CLIP (``--pretrained miniweb``; no NSFW,
   watermark or face model, which no recipe here uses);
4. ``curate compare`` of the recipes in ``benchmarks/pool/`` (their REFERENCE and METADATA
   placeholders filled in): no filtering, CLIP score top 30%, MetaCLIP balancing, the image-based
   filter, and the image-based filter with the CLIP score, each trained ``--seeds`` times with
   the same budget and evaluated by retrieval and zero-shot on ``kind`` and ``color``; the
   selections' make-up by ``noise``.

Writes OUTPUT/compare/{compare.md,compare.json,compare.png,report.html} and prints the table,
the seconds each step took and the machine.
"""

import argparse
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK

RECIPES = ("pool-nofilter", "pool-clip", "pool-metaclip", "pool-image", "pool-image-clip")
CURATE = [sys.executable, "-m", "vlcurate.jobs.cli"]


def curate(*args: str) -> float:
    """Run one curate command; return its wall seconds."""
    start = time.perf_counter()
    subprocess.run([*CURATE, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def recipe_copies(out: Path, names: list[str]) -> list[str]:
    """The pool recipes with their placeholders filled in, under ``out/recipes``."""
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    fill = {
        "REFERENCE": str(out / "reference" / "00000.tar"),
        "METADATA": str(out / "pool" / "metadata.json"),
    }
    paths = []
    for name in names:
        text = (ROOT / "benchmarks" / "pool" / f"{name}.yaml").read_text()
        for key, value in fill.items():
            text = text.replace(key, value)
        path = out / "recipes" / f"{name}.yaml"
        path.write_text(text)
        paths.append(str(path))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pool", type=int, default=6000, help="pool samples (default: 6000)")
    parser.add_argument(
        "--samples", type=int, default=12_800, help="training budget per run (default: 12800)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="pairs per step (default: 64)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="training runs per recipe (default: 3)"
    )
    parser.add_argument(
        "--recipes", nargs="+", default=list(RECIPES), help="recipes of benchmarks/pool/"
    )
    parser.add_argument("--output", default=str(WORK / "curation"), help="work folder")
    args = parser.parse_args()
    out = Path(args.output)
    shutil.rmtree(out, ignore_errors=True)  # a stale pool's scores would be reused
    scorer = "--model tiny-clip --pretrained miniweb --nsfw none --watermark none --faces none"
    scorer = [*scorer.split(), "--device", "cpu", "--no-progress"]
    budget = f"--samples {args.samples} --batch-size {args.batch_size} --seeds {args.seeds}"
    seconds = {
        "pool": curate("miniweb", "--pool", str(args.pool), "--seed", "1", "-o", str(out / "pool")),
        "scenes": curate("miniweb", "--scenes", "500", "--seed", "2", "-o", str(out / "heldout"))
        + curate("miniweb", "--scenes", "500", "--seed", "3", "-o", str(out / "reference")),
        "score": curate("score", "-i", str(out / "pool"), "-o", str(out / "scores"), *scorer),
    }
    seconds["compare"] = curate(
        "compare", *recipe_copies(out, args.recipes), "--shards", str(out / "pool"),
        "--scores", str(out / "scores"), "--eval-shards", str(out / "heldout" / "00000.tar"),
        "--label-field", "kind", "color", "--truth-field", "noise", *budget.split(),
        "--device", "cpu", "--output", str(out / "compare"), "--no-progress",
    )  # fmt: skip
    print((out / "compare" / "compare.md").read_text())
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
