"""Training throughput of our CLIP loop (``vlcurate.pipeline.train.clip``), in samples per second,
against open_clip's own trainer (``python -m open_clip_train.main``) on the same shards, model,
batch size and DataLoader workers.

    .venv/bin/python benchmarks/train.py                         # CPU: tiny-clip and ViT-B-32
    .venv/bin/python benchmarks/train.py --models tiny-clip --steps 12     # smoke run
    python benchmarks/train.py --device cuda --precision bf16 --models ViT-B-32 \\
        --batch-size 256 --steps 64 --workers 8                  # one GPU

Data: ``--samples`` mini-web scenes (``vlcurate.miniweb.scenes.write_scene_shards``: JPEGs of
96-192 px a side and their exact captions) in shards of ``--per-shard``, written to
``benchmarks/_work/train/shards/``. Weights are random (``pretrained`` is not used by training;
the speed does not depend on the values). tiny-clip is ``pipeline/score/model_configs/
tiny-clip.json``, given to open_clip_train as ``--model local-dir:DIR`` (the way
``tests/test_select_stage.py`` runs it).

Both trainers draw shards with replacement (ours always; open_clip with ``--dataset-resampled``),
run ``--steps`` optimizer steps of ``--batch-size`` pairs and use open_clip's train transform,
``ClipLoss`` and AdamW. Per step, both time the whole step (data wait included) and the wait for
the batch: ours writes them to ``metrics.jsonl`` (``samples_per_s``, ``data_share``), open_clip
logs them with ``--log-every-n-steps 1`` (``Data (t): D Batch (t): B``), which is parsed here.
The first ``--skip`` steps (DataLoader start, shuffle buffers filling) are left out; samples/s is
batch x timed steps / the sum of their step times, data share the sum of waits / that sum.
Wall seconds are end to end: ours in this process, open_clip_train as a subprocess (interpreter
and imports included), checkpoints written at the end included in both.

For reference only: open_clip's published ViT-B-32 training speed is about 770 samples/s per
A100 GPU (``--reference``). It is a GPU number, not comparable with a CPU run; the GPU rows are
for ``--device cuda`` on a machine that has one.
"""

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from common import ROOT, WORK, fresh_dir, load_line  # noqa: E402

sys.path.insert(0, str(ROOT))
import torch  # noqa: E402

from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.storage import brace_pattern  # noqa: E402
from vlcurate.pipeline.train.clip import TrainConfig, train  # noqa: E402

FOLDER = WORK / "train"
TINY = ROOT / "pipeline" / "score" / "model_configs" / "tiny-clip.json"
# batch size, steps, warm-up steps left out; on 2 busy CPU cores about 10 min in all (ViT-B-32:
# about 27 s a step at batch 16)
DEFAULTS = {"tiny-clip": (64, 24, 4), "ViT-B-32": (16, 6, 2)}
OPEN_CLIP_PRECISION = {"fp32": "fp32", "bf16": "amp_bf16", "fp16": "amp"}  # autocast, as ours
LOG_LINE = re.compile(r"Train Epoch: .*Data \(t\): ([\d.]+) Batch \(t\): ([\d.]+),")


def summary(steps: list[tuple[float, float]], batch: int, skip: int) -> dict:
    """(step seconds, data seconds) per step -> samples/s and data share after ``skip`` steps."""
    timed = steps[skip:]
    seconds = sum(s for s, _ in timed)
    return {
        "steps": len(timed),
        "samples_per_s": batch * len(timed) / seconds,
        "data_share": sum(d for _, d in timed) / seconds,
    }


def run_ours(model: str, shards: str, batch: int, args) -> dict:
    out = fresh_dir("train/ours")
    config = TrainConfig(
        shards=shards,
        model=str(TINY) if model == "tiny-clip" else model,
        output=out,
        batch_size=batch,
        samples_per_epoch=batch * args.steps,
        workers=args.workers,
        device=args.device,
        precision=args.precision,
        checkpoint_every=0,
        progress=False,
    )
    start = time.perf_counter()
    train(config)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in Path(out, "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(out)  # checkpoints: about 2 GB for ViT-B-32
    steps = [
        (batch / r["samples_per_s"], r["data_share"] * batch / r["samples_per_s"]) for r in rows
    ]
    return {**summary(steps, batch, args.skip), "wall_s": wall}


def run_open_clip(model: str, shards: str, batch: int, args) -> dict:
    work = Path(fresh_dir("train/open_clip"))
    if model == "tiny-clip":
        (work / "tiny").mkdir()
        config = {"model_cfg": json.loads(TINY.read_text())}
        (work / "tiny" / "open_clip_config.json").write_text(json.dumps(config))
        model = f"local-dir:{work / 'tiny'}"
    argv = [
        sys.executable,
        "-m",
        "open_clip_train.main",
        "--train-data",
        shards,
        "--dataset-type",
        "webdataset",
        "--dataset-resampled",
        "--train-num-samples",
        str(batch * args.steps),
        "--batch-size",
        str(batch),
        "--epochs",
        "1",
        "--workers",
        str(args.workers),
        "--model",
        model,
        "--device",
        args.device,
        "--precision",
        OPEN_CLIP_PRECISION[args.precision],
        "--logs",
        str(work / "logs"),
        "--name",
        "bench",
        "--save-frequency",
        "0",
        "--report-to",
        "",
        "--seed",
        "0",
        "--log-every-n-steps",
        "1",
        "--warmup",
        "100",
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - start
    log = done.stdout + done.stderr
    shutil.rmtree(work)  # its final checkpoint
    (FOLDER / f"open_clip_train-{Path(model).name}.log").write_text(log)
    if done.returncode != 0:
        raise RuntimeError(f"open_clip_train failed ({done.returncode}):\n{log[-3000:]}")
    steps = [(float(b), float(d)) for d, b in LOG_LINE.findall(log)]
    if len(steps) != args.steps:
        raise RuntimeError(f"expected {args.steps} 'Train Epoch' lines, found {len(steps)}")
    return {**summary(steps, batch, args.skip), "wall_s": wall}


def rate(samples_per_s: float) -> str:
    return f"{samples_per_s:,.1f}" if samples_per_s >= 10 else f"{samples_per_s:.2f}"


def markdown(rows: list[dict], args) -> str:
    lines = [
        "| model | batch | steps timed | ours samples/s | ours data share | "
        "open_clip_train samples/s | its data share | ours / open_clip_train |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        o, b = r["ours"], r["open_clip"]
        lines.append(
            f"| {r['model']} | {r['batch']} | {o['steps']} | {rate(o['samples_per_s'])} | "
            f"{o['data_share']:.1%} | {rate(b['samples_per_s'])} | {b['data_share']:.1%} | "
            f"{o['samples_per_s'] / b['samples_per_s']:.2f} × |"
        )
    lines += [
        "",
        "samples/s: from each trainer's per-step times (open_clip_train: parsed from its log), "
        "the first warm-up steps left out; wall s (end to end, checkpoints included): "
        + "; ".join(
            f"{r['model']} ({r['skip']} left out) ours {r['ours']['wall_s']:.0f}, "
            f"open_clip_train {r['open_clip']['wall_s']:.0f}"
            for r in rows
        ),
        f"reference, not comparable: open_clip's published ViT-B-32 training speed, about "
        f"{args.reference:,.0f} samples/s per A100 GPU",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="tiny-clip,ViT-B-32", help="comma-separated")
    parser.add_argument("--batch-size", type=int, help="pairs per step (tiny-clip 64, ViT-B-32 16)")
    parser.add_argument("--steps", type=int, help="steps per run (tiny-clip 24, ViT-B-32 6)")
    parser.add_argument("--skip", type=int, help="warm-up steps left out (tiny-clip 4, ViT-B-32 2)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers, both trainers")
    parser.add_argument("--samples", type=int, default=2000, help="scenes in the shards")
    parser.add_argument("--per-shard", type=int, default=500, help="scenes per shard")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="autocast on CUDA (open_clip_train: fp32, amp_bf16, amp)",
    )
    parser.add_argument(
        "--reference",
        type=float,
        default=770.0,
        help="published open_clip ViT-B-32 samples/s per A100 (printed only)",
    )
    parser.add_argument("--json", help="also write the settings, machine and rows here")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if args.precision != "fp32" and not args.device.startswith("cuda"):
        sys.exit("--precision bf16/fp16 needs --device cuda (our loop autocasts on CUDA only)")
    paths = write_scene_shards(FOLDER / "shards", args.samples, seed=0, per_shard=args.per_shard)
    shards = brace_pattern(paths)
    rows = []
    for model in args.models.split(","):
        batch, steps, skip = DEFAULTS.get(model, (16, 6, 2))
        batch = args.batch_size or batch
        steps, skip = args.steps or steps, skip if args.skip is None else args.skip
        if steps % args.workers:  # open_clip_train rounds its steps up to a multiple of them
            sys.exit(f"{model}: --steps ({steps}) must be a multiple of --workers")
        run_args = argparse.Namespace(**{**vars(args), "steps": steps, "skip": skip})
        print(f"{model}: batch {batch}, {run_args.steps} steps ...", file=sys.stderr, flush=True)
        ours = run_ours(model, shards, batch, run_args)
        print(f"  ours {ours}", file=sys.stderr, flush=True)
        theirs = run_open_clip(model, shards, batch, run_args)
        print(f"  open_clip_train {theirs}", file=sys.stderr, flush=True)
        rows.append(
            {"model": model, "batch": batch, "skip": skip, "ours": ours, "open_clip": theirs}
        )
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    machine = (
        f"{device}, {os.cpu_count()} CPUs; Python {platform.python_version()}, torch "
        f"{torch.__version__}; {args.device} {args.precision}, {args.workers} workers"
    )
    print()
    print(markdown(rows, args))
    print(machine)
    print(load_line())
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "settings": vars(args),
                    "machine": machine,
                    "load_average": os.getloadavg(),
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
