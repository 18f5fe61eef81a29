"""The mini web's CLIP: tiny-clip trained on mini-web scenes, the demo's and the tests' model.

No pretrained CLIP can be fetched offline, and a random one cannot tell a caption from another.
This trains the tiny config on :mod:`vlcurate.miniweb.scenes` shards (the mini web's own
picture generator, another seed than the mini web) with :func:`vlcurate.pipeline.train.clip.train`.
About 250 steps of 64 pairs (two minutes on two CPU cores) give a CLIP that ranks the true
caption of a held-out scene first about a third of the time among 500 (chance: 0.2%).

    curate miniweb --scenes 8000 --seed 1 --output out/scenes
    curate train clip --shards 'out/scenes/{00000..00007}.tar' --model tiny-clip \\
        --output out/clip --samples-per-epoch 8000 --epochs 2 --max-steps 250 \\
        --batch-size 64 --lr 1e-3 --warmup-steps 20 --weight-decay 0.1 --shuffle-buffer 1000 \\
        --device cpu

does the same from the command line. ``OUTPUT/final.pt`` then scores with
``curate score --model tiny-clip --pretrained OUTPUT/final.pt``.
"""

from pathlib import Path

from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.score import checkpoints
from vlcurate.pipeline.storage import brace_pattern, cache_home
from vlcurate.pipeline.train.clip import TrainConfig, train

MODEL = "tiny-clip"
NAME = "miniweb"  # the local checkpoint's name: ``--pretrained miniweb``
ABOUT = (
    "trained by curate on mini-web scenes of coloured shapes (`curate demo`): it tells a "
    "shape's true caption from a wrong one, but it has never seen a photo"
)
SCENES = 8000  # training scenes, in shards of 1000
HELDOUT = 500  # held-out scenes (another seed), one shard
SETTINGS = dict(
    batch_size=64,
    lr=1e-3,
    warmup_steps=20,
    weight_decay=0.1,
    samples_per_epoch=SCENES,
    shuffle_buffer=1000,
    seed=0,
    checkpoint_every=50,
)


def miniweb_home() -> Path:
    """Where the mini web's CLIP is trained and kept: ``$CURATE_CACHE/miniweb-clip``
    (default ``~/.cache/curate/miniweb-clip``)."""
    return cache_home() / "miniweb-clip"


def scene_shards(folder: Path, n: int, seed: int, per_shard: int = 1000) -> str:
    """Write the scenes unless a previous call did; return their brace pattern."""
    shards = sorted(folder.glob("*.tar"))
    if len(shards) != -(-n // per_shard):
        shards = write_scene_shards(folder, n, seed=seed, per_shard=per_shard)
    return brace_pattern([str(s) for s in shards])


def train_miniweb_clip(
    output=None, steps: int = 250, workers: int = 2, progress: bool = True, **overrides
) -> dict:
    """Train (or finish, or just return) the mini web's CLIP in ``output`` (default
    :func:`miniweb_home`, where ``--pretrained miniweb`` finds it). Returns the training
    summary plus ``model`` (the open_clip config name), ``train_shards`` and
    ``heldout_shards`` (brace patterns)."""
    output = Path(output or miniweb_home())
    train_shards = scene_shards(output / "scenes" / "train", SCENES, seed=1)
    heldout = scene_shards(output / "scenes" / "heldout", HELDOUT, seed=2, per_shard=HELDOUT)
    model = MODEL  # one of the configs shipped in pipeline/score/model_configs
    settings = {**SETTINGS, **overrides}
    config = TrainConfig(
        shards=train_shards,
        model=model,
        output=str(output / "run"),
        epochs=-(-steps * settings["batch_size"] // SCENES),
        max_steps=steps,
        workers=workers,
        device="cpu",
        progress=progress,
        **settings,
    )
    summary = train(config)
    if output == miniweb_home():
        checkpoints.register(NAME, summary["final"], model, ABOUT)
    return {**summary, "model": model, "train_shards": train_shards, "heldout_shards": heldout}


def trained_miniweb_clip(progress: bool = True) -> str:
    """Train (or reuse) the mini web's CLIP; say how good it is on the held-out scenes."""
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.train.evaluate import retrieval

    summary = train_miniweb_clip(progress=progress)
    scorer = ClipScorer(model=summary["model"], pretrained=summary["final"], device="cpu")
    found = retrieval(scorer, summary["heldout_shards"])
    i2t, t2i = found["image_to_text"], found["text_to_image"]
    return (
        f"trained {summary['steps']} steps (last loss {summary['loss']:.3f}); on "
        f"{found['n']} held-out scenes, image->text R@1 {i2t['R@1']:.3f}, R@5 {i2t['R@5']:.3f},"
        f" text->image R@1 {t2i['R@1']:.3f} (chance {found['chance']['R@1']:.3f})"
    )
