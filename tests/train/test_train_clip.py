"""The CLIP training loop, on the CPU, with the tiny config and synthetic colour shards."""

import json
import math
import os
import random
import subprocess
import sys

import open_clip
import pytest
import torch
import webdataset as wds
from PIL import Image, ImageDraw

from vlcurate.pipeline.score.clip import CONFIGS, _register
from vlcurate.pipeline.train.clip import TrainConfig, lr_at, train

TINY = str(CONFIGS / "tiny-clip.json")
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 20),
}
SHAPES = ("square", "circle")


def draw(colour: str, shape: str, rng: random.Random) -> Image.Image:
    """A 64 px image: a coloured shape on a light grey background, at a random place."""
    image = Image.new("RGB", (64, 64), (200, 200, 200))
    x, y, r = rng.randint(4, 28), rng.randint(4, 28), rng.randint(18, 30)
    box = (x, y, min(63, x + r), min(63, y + r))
    d = ImageDraw.Draw(image)
    (d.rectangle if shape == "square" else d.ellipse)(box, fill=COLOURS[colour])
    return image


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    """200 samples in 4 shards of 50."""
    root = tmp_path_factory.mktemp("shards")
    rng = random.Random(0)
    for s in range(4):
        with wds.TarWriter(str(root / f"{s:05d}.tar")) as sink:
            for i in range(50):
                colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
                sink.write(
                    {
                        "__key__": f"{s:05d}{i:04d}",
                        "jpg": draw(colour, shape, rng),
                        "txt": f"a {colour} {shape}",
                        "json": {"colour": colour},
                    }
                )
    return str(root / "{00000..00003}.tar")


def config(shards, output, **kw) -> TrainConfig:
    base = dict(
        shards=shards,
        model=TINY,
        output=str(output),
        batch_size=16,
        samples_per_epoch=160,
        epochs=3,
        lr=1e-3,
        weight_decay=0.1,
        warmup_steps=3,
        workers=0,
        seed=0,
        checkpoint_every=100,
        device="cpu",
        shuffle_buffer=64,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def losses(output) -> list[float]:
    rows = [json.loads(ln) for ln in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["loss"] for r in rows]


def test_training_learns_colours(shards, tmp_path):
    out = tmp_path / "run"
    result = train(config(shards, out))  # 3 epochs of 10 steps
    assert result["steps"] == 30 and result["finished"]
    curve = losses(out)
    assert len(curve) == 30
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 0.2, curve
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(row) == {"step", "epoch", "loss", "lr", "logit_scale", "samples_per_s", "data_share"}
    assert 1 <= row["logit_scale"] <= 100
    assert (out / "checkpoints" / "latest.pt").exists()

    name = _register(TINY)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=str(out / "final.pt")
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    rng = random.Random(123)  # held-out images, never in the shards
    right = trials = 0
    with torch.no_grad():
        for colour in COLOURS:
            for _ in range(10):
                shape = rng.choice(SHAPES)
                image = preprocess(draw(colour, shape, rng))[None]  # (1, 3, 64, 64)
                img = torch.nn.functional.normalize(model.encode_image(image), dim=-1)  # (1, D)
                for wrong in set(COLOURS) - {colour}:
                    txt = tokenizer([f"a {colour} {shape}", f"a {wrong} {shape}"])  # (2, 77)
                    emb = torch.nn.functional.normalize(model.encode_text(txt), dim=-1)
                    sim = (img @ emb.T)[0]  # (2,)
                    right += int(sim[0] > sim[1])
                    trials += 1
    print(f"right colour ranked first in {right}/{trials}")
    assert right / trials > 0.65, (right, trials)


@pytest.mark.parametrize("workers,accum_steps", [(0, 2), (2, 1)])
def test_resume_gives_the_same_curve(shards, tmp_path, workers, accum_steps):
    # 2 epochs of 8 micro-batches. Step 3 is inside epoch 0, so the resumed run regenerates
    # epoch 0's stream and skips the 6 (or 3) micro-batches already consumed; with 2 workers
    # and 3 consumed, the workers' roles are swapped to keep the batch order.
    kw = dict(
        samples_per_epoch=128,
        epochs=2,
        accum_steps=accum_steps,
        batch_size=16,
        checkpoint_every=3,
        workers=workers,
    )
    full = train(config(shards, tmp_path / "full", **kw))
    assert full["steps"] == 16 // accum_steps
    assert (tmp_path / "full" / "checkpoints" / "step_6.pt").exists()

    part = tmp_path / "part"
    first = train(config(shards, part, max_steps=3, **kw))
    assert first["steps"] == 3 and not first["finished"]
    assert len(losses(part)) == 3
    second = train(config(shards, part, **kw))
    assert second["steps"] == full["steps"] and second["finished"]
    assert losses(part) == pytest.approx(losses(tmp_path / "full"), abs=1e-4)

    with pytest.raises(ValueError, match="other settings"):
        train(config(shards, part, **{**kw, "lr": 5e-4}))


def test_lr_schedule():
    base, warmup, total = 1.0, 10, 110
    assert lr_at(0, base, warmup, total) == pytest.approx(0.1)
    assert lr_at(4, base, warmup, total) == pytest.approx(0.5)
    assert lr_at(9, base, warmup, total) == pytest.approx(1.0)
    assert lr_at(10, base, warmup, total) == pytest.approx(1.0)  # cosine starts at the peak
    assert lr_at(60, base, warmup, total) == pytest.approx(0.5)  # half way down
    assert lr_at(35, base, warmup, total) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, base, warmup, total) == pytest.approx(0.0, abs=1e-12)
    steps = [lr_at(s, base, warmup, total) for s in range(warmup, total)]
    assert all(a >= b for a, b in zip(steps, steps[1:], strict=False))


def test_two_processes_give_the_single_process_loss(shards, tmp_path):
    """torchrun with 2 CPU processes (gloo, DDP, features gathered across ranks) and a batch of
    8 each gives the loss curve of one process with a batch of 16: the same 16 pairs per step,
    each process decoding its half."""
    kw = dict(samples_per_epoch=96, epochs=1, workers=0)  # 6 steps of 16 pairs
    single = train(config(shards, tmp_path / "single", batch_size=16, **kw))
    assert single["steps"] == 6

    out = tmp_path / "ddp"
    flags = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(config(shards, out, **kw)).items()
        if k not in ("progress", "max_steps")
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            "-m",
            "vlcurate.jobs.cli",
            "train",
            "clip",
            *flags,
            "--batch-size=8",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"world_size": 2' in done.stdout
    assert losses(out) == pytest.approx(losses(tmp_path / "single"), abs=2e-4)
    assert torch.load(out / "checkpoints" / "latest.pt", weights_only=False)["world_size"] == 2
