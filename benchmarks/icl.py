"""Frozen's few-shot table for the demo's tiny models, and episodes per second on this machine.

    .venv/bin/python benchmarks/icl.py                                 # about 25 min on 2 cores
    .venv/bin/python benchmarks/icl.py --steps 20 --episodes 10 --ways 2 --shots 1   # smoke run

1. The mini web's CLIP (tiny-clip on 8000 mini-web scenes; trained first if ``$CURATE_CACHE``
   does not hold it, about two minutes).
2. A Frozen-style model, ``curate train frozen``'s loop: that CLIP's visual tower -> linear map ->
   2 prefix embeddings of the frozen SmolLM2-135M, trained on the same scene captions for
   ``--steps`` steps of ``--batch-size`` (samples/s from ``metrics.jsonl``).
3. Episodes from the 500 held-out scenes (another seed), classes = ``--label-field`` (``color``:
   8 colours; ``kind``: 4 shapes), nonsense names; Frozen's columns: 2- and 5-way, task
   induction off and on, 1, 3 and 5 inner shots, 0 repeats; ``--episodes`` per column.
4. Every model on every column, the baselines in the same run: the Frozen-style model, blind (the
   same LM, images removed), the CLIP prototype (nearest support image mean in the CLIP's image
   space) and chance. Accuracy is exact match after normalisation, with a 95% Wilson interval.

Writes ``benchmarks/_work/icl/`` (``icl.md``, ``icl.json``, ``episodes.jsonl``, the run) and prints
the rows for RESULTS.md. Frozen's own numbers (7B LM, Conceptual Captions, miniImageNet) are in
``../shared/ANCHORS.md``: e.g. 2-way, induction, 1 shot: 53.4; these tiny models are not
comparable, and the point is the harness and the honest baselines.
"""

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys
import time  # noqa: E402

from common import ROOT, WORK  # noqa: E402

sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

from vlcurate.miniweb.clip import train_miniweb_clip  # noqa: E402
from vlcurate.pipeline.icl import evaluate as icl_eval  # noqa: E402
from vlcurate.pipeline.icl.episodes import write_jsonl  # noqa: E402
from vlcurate.pipeline.icl.frozen import BlindICL, FrozenICL, FrozenModel  # noqa: E402
from vlcurate.pipeline.icl.models import Chance, ClipPrototype  # noqa: E402
from vlcurate.pipeline.icl.sources import shard_source  # noqa: E402
from vlcurate.pipeline.score.clip import ClipScorer  # noqa: E402
from vlcurate.pipeline.storage import expand_shards  # noqa: E402
from vlcurate.pipeline.train.frozen import FrozenTrainConfig, train  # noqa: E402

FOLDER = WORK / "icl"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="Frozen training steps (default 300)")
    p.add_argument("--batch-size", type=int, default=16, help="captions per step (default 16)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per column (default 50)")
    p.add_argument("--ways", type=int, nargs="+", default=[2, 5], help="default: 2 5")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5], help="default: 1 3 5")
    p.add_argument("--label-field", default="color", help="color (8 classes) or kind (4)")
    p.add_argument("--seed", type=int, default=0, help="episode and chance seed (default 0)")
    args = p.parse_args()

    clip = train_miniweb_clip(progress=False)
    run = FOLDER / f"frozen-{args.steps}x{args.batch_size}"
    t0 = time.perf_counter()
    config = FrozenTrainConfig(
        shards=clip["train_shards"],
        output=str(run),
        steps=args.steps,
        clip_model=clip["model"],
        clip_pretrained="miniweb",
        batch_size=args.batch_size,
        lr=args.lr,
        device="cpu",
        checkpoint_every=100,
        progress=True,
    )
    summary = train(config)
    rows = [json.loads(ln) for ln in open(summary["metrics"]) if ln.strip()]
    timed = rows[min(5, len(rows) - 1) :]  # start-up left out
    train_rate = sum(r["samples_per_s"] for r in timed) / len(timed)
    print(
        f"frozen training: {summary['steps']} steps, loss {rows[0]['loss']:.3f} -> "
        f"{summary['loss']:.3f}, {train_rate:.1f} captions/s, "
        f"{time.perf_counter() - t0:.0f} s"
    )

    items = list(shard_source(expand_shards(clip["heldout_shards"]), args.label_field))
    sets, notes = icl_eval.episode_grid(
        items, ways=args.ways, shots=args.shots, episodes=args.episodes, seed=args.seed
    )
    for note in notes:
        print("note:", note)
    frozen = FrozenModel.load(summary["final"])
    scorer = ClipScorer(model=clip["model"], pretrained="miniweb", device="cpu")
    models = [FrozenICL(frozen), BlindICL(frozen.lm), ClipPrototype(scorer), Chance(args.seed)]
    results = icl_eval.evaluate(models, sets, progress=True)
    results["notes"] = notes
    results["training"] = {
        "steps": summary["steps"],
        "first_loss": rows[0]["loss"],
        "last_loss": summary["loss"],
        "captions_per_s": train_rate,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load": os.getloadavg(),
    }
    icl_eval.write_results(results, FOLDER)
    write_jsonl((e for v in sets.values() for e in v), FOLDER / "episodes.jsonl")
    print()
    print(icl_eval.frozen_table(results))
    print()
    print(icl_eval.speed_line(results))
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
