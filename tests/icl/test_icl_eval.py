"""In-context evaluation harness: models, accuracy with Wilson intervals, the Frozen table, the
``curate eval icl`` command, and the CLIP prototype baseline on the mini web."""

import json

import pytest

from vlcurate.jobs import evaluate as eval_job
from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.icl.episodes import EpisodeConfig, build_episodes, read_jsonl
from vlcurate.pipeline.icl.evaluate import (
    episode_grid,
    evaluate,
    frozen_table,
    group_episodes,
    wilson_interval,
    write_results,
)
from vlcurate.pipeline.icl.models import Chance, ClipPrototype, ICLModel, Oracle
from vlcurate.pipeline.icl.sources import shard_source


def synthetic(classes: int = 6, per_class: int = 8) -> list[dict]:
    """Items without images (Oracle and Chance never open one)."""
    return [
        {"ref": f"img/c{c}/{i}.jpg", "label": f"class {c}", "attributes": {}}
        for c in range(classes)
        for i in range(per_class)
    ]


def test_models_implement_the_interface():
    for model in (Oracle(), Chance(0), ClipPrototype(scorer=None)):
        assert isinstance(model, ICLModel)


def test_oracle_is_perfect_on_every_set():
    sets, notes = episode_grid(synthetic(), ways=(2, 5), shots=(1, 3, 5), episodes=30, seed=2)
    assert len(sets) == 12 and notes == []
    results = evaluate([Oracle()], sets)
    for key in sets:
        r = results["results"]["oracle"][key]
        assert r["accuracy"] == 1.0 and r["correct"] == r["n"] == 30
        assert r["ci95"][1] == 1.0 and r["ci95"][0] > 0.85
    episode = sets["2-way, no induction, 1 shot, 0 repeats"][0]
    scores = Oracle().score(episode, episode.candidates)
    assert scores[episode.candidates.index(episode.answer)] == max(scores) == 1.0


@pytest.mark.parametrize("ways", [2, 5])
def test_chance_is_near_one_over_ways(ways):
    episodes = build_episodes(synthetic(), EpisodeConfig(ways=ways, episodes=400, seed=5))
    results = evaluate([Chance(seed=1)], {"set": episodes})
    r = results["results"]["chance"]["set"]
    assert r["n"] == 400
    # 1/ways inside the 95% Wilson interval, widened a little (5% of runs would miss otherwise)
    lo, hi = r["ci95"]
    assert lo - 0.03 <= 1 / ways <= hi + 0.03
    # deterministic per episode id and seed; another seed answers differently somewhere
    assert [Chance(1).answer(e) for e in episodes] == [Chance(1).answer(e) for e in episodes]
    assert [Chance(1).answer(e) for e in episodes] != [Chance(2).answer(e) for e in episodes]
    assert all(Chance(1).answer(e) in e.candidates for e in episodes)


def test_wilson_interval_on_known_counts():
    # textbook values (e.g. Newcombe 1998; statsmodels proportion_confint method="wilson")
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_table_layout_and_written_results(tmp_path):
    sets, _ = episode_grid(
        synthetic(), ways=(2,), inductions=(False, True), shots=(1, 3), episodes=20, seed=0
    )
    results = evaluate([Oracle(), Chance(0)], sets, predictions=True)
    table = frozen_table(results).splitlines()
    assert table[0] == (
        "| model | 2-way, no induction, 1 shot, 0 repeats | 2-way, no induction, 3 shots, "
        "0 repeats | 2-way, induction, 1 shot, 0 repeats | 2-way, induction, 3 shots, "
        "0 repeats |"
    )
    assert table[1] == "|---|---:|---:|---:|---:|"
    half = 100 * results["results"]["oracle"][results["sets"][0]]["half_width"]
    assert table[2] == "| oracle | " + " | ".join([f"100.0 ± {half:.1f}"] * 4) + " |"
    assert table[3].startswith("| chance | ") and table[3].count("±") == 4
    assert table[4] == "| n | 20 | 20 | 20 | 20 |"
    assert len(table) == 5
    paths = write_results(results, tmp_path / "out", predictions=True)
    assert (tmp_path / "out" / "icl.md").read_text().strip() == "\n".join(table)
    saved = json.loads((tmp_path / "out" / "icl.json").read_text())
    assert "predictions" not in saved and saved["sets"] == results["sets"]
    rows = [json.loads(line) for line in open(paths["predictions"])]
    assert len(rows) == 2 * 4 * 20 and {r["model"] for r in rows} == {"oracle", "chance"}


def test_grid_skips_what_the_source_cannot_support():
    items = synthetic(classes=3, per_class=4)  # 3 classes of 4 images: no 5-way, no 5 shots
    sets, notes = episode_grid(items, ways=(2, 5), inductions=(False,), shots=(1, 3, 5), episodes=5)
    assert list(sets) == [
        "2-way, no induction, 1 shot, 0 repeats",
        "2-way, no induction, 3 shots, 0 repeats",
    ]
    assert len(notes) == 4 and all(n.startswith("skipped ") for n in notes)
    assert "5-way, no induction, 1 shot, 0 repeats" in " ".join(notes)


def test_cli_end_to_end_on_scene_shards(tmp_path, capsys):
    shards = write_scene_shards(tmp_path / "scenes", 200, seed=4, per_shard=80)
    pattern = str(tmp_path / "scenes" / "{00000..00002}.tar")
    assert len(shards) == 3
    out = tmp_path / "icl"
    argv = [
        "icl",
        "--shards",
        pattern,
        "--label-field",
        "kind",
        "--ways",
        "2",
        "--shots",
        "1",
        "3",
        "--induction",
        "both",
        "--episodes-per-set",
        "40",
        "--seed",
        "7",
        "--models",
        "chance",
        "oracle",
        "--output",
        str(out),
        "--predictions",
    ]
    assert eval_job.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| model | 2-way, no induction, 1 shot, 0 repeats |" in printed
    assert "| oracle | 100.0 ± " in printed
    for name in ("icl.md", "icl.json", "episodes.jsonl", "predictions.jsonl"):
        assert (out / name).exists(), name
    results = json.loads((out / "icl.json").read_text())
    assert results["models"] == ["chance", "oracle"] and len(results["sets"]) == 4
    assert all(r["n"] == 40 for r in results["results"]["oracle"].values())
    episodes = read_jsonl(out / "episodes.jsonl")
    assert len(episodes) == 160 and all("#" in e.query for e in episodes)
    assert list(group_episodes(episodes)) == results["sets"]
    # saved episodes give the same table
    again = tmp_path / "again"
    argv = [
        "icl",
        "--episodes",
        str(out / "episodes.jsonl"),
        "--models",
        "chance",
        "oracle",
        "--seed",
        "7",
        "--output",
        str(again),
    ]
    assert eval_job.main(argv) == 0
    assert (again / "icl.md").read_text() == (out / "icl.md").read_text()
    # clear errors: shards without a label field; clip-prototype without a CLIP
    assert eval_job.main(["icl", "--shards", pattern, "--models", "chance"]) == 2
    assert eval_job.main(["icl", "--shards", pattern, "--label-field", "kind"]) == 2
    assert "clip-prototype needs --clip-model" in capsys.readouterr().err


def test_cli_fast_vqa_on_scene_shards(tmp_path, capsys):
    (shard,) = write_scene_shards(tmp_path / "scenes", 80, seed=6, per_shard=80, min_side=48)
    out = tmp_path / "icl"
    argv = [
        "icl",
        "--shards",
        shard,
        "--label-field",
        "kind",
        "--fast-vqa",
        "color",
        "--ways",
        "2",
        "--shots",
        "1",
        "--induction",
        "off",
        "--episodes-per-set",
        "20",
        "--models",
        "oracle",
        "chance",
        "--output",
        str(out),
        "--no-progress",
    ]
    assert eval_job.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2-way, no induction, 1 shot, 0 repeats, fast-VQA" in printed
    results = json.loads((out / "icl.json").read_text())["results"]
    (key,) = results["oracle"]
    assert results["oracle"][key]["accuracy"] == 1.0
    assert results["chance"][key]["accuracy"] == 0.0  # it answers names, never a colour
    episodes = read_jsonl(out / "episodes.jsonl")
    colours = {"red", "green", "blue", "yellow", "orange", "purple", "white", "black"}
    assert all(e.question.startswith("What colour is the ") for e in episodes)
    assert all(e.answer in colours and e.query_name in e.candidates for e in episodes)


def test_cli_on_frozen_released_tasks(tmp_path, capsys):
    from PIL import Image

    prefix = "open_ended_mi_shots_1_ways_2"
    questions = []
    for x in range(4):
        for name in (
            f"{prefix}_id_{x}_image_0",
            f"{prefix}_id_{x}_image_1",
            f"{prefix}_id_{x}_question",
        ):
            Image.new("RGB", (8, 8), "gray").save(tmp_path / f"{name}.jpg")
        questions.append(
            {
                "id": x,
                "caption_0": "This is a dax.",
                "caption_1": "This is a wug.",
                "answer": "wug" if x % 2 else "dax",
            }
        )
    (tmp_path / f"{prefix}_all_questions.json").write_text(json.dumps(questions))
    out = tmp_path / "icl"
    argv = [
        "icl",
        "--frozen-tasks",
        str(tmp_path),
        "--models",
        "oracle",
        "chance",
        "--output",
        str(out),
        "--no-progress",
    ]
    assert eval_job.main(argv) == 0
    assert "| oracle | 100.0 ± " in capsys.readouterr().out
    assert json.loads((out / "icl.json").read_text())["n"] == {
        "2-way, no induction, 1 shot, 0 repeats": 4
    }


@pytest.mark.slow
def test_clip_prototype_far_above_chance_on_colours(miniweb_clip):
    """The mini web's CLIP as a prototype learner on 2-way, 1-shot episodes over the held-out
    scenes. Shape kinds are at chance for this CLIP (it learnt colours, not shapes), so the
    classes are the scenes' colours (label field ``color``); measured 78% (95% CI about 72-83%)
    over these 200 episodes, chance 48.5%; asserted >= 65%, a margin below the interval."""
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.storage import expand_shards

    items = list(shard_source(expand_shards(miniweb_clip["heldout_shards"]), "color"))
    episodes = build_episodes(items, EpisodeConfig(ways=2, inner_shots=1, episodes=200, seed=0))
    scorer = ClipScorer(model="tiny-clip", pretrained="miniweb", device="cpu")
    results = evaluate([ClipPrototype(scorer), Chance(0)], {"2-way": episodes})
    clip = results["results"]["clip-prototype"]["2-way"]["accuracy"]
    chance = results["results"]["chance"]["2-way"]["accuracy"]
    assert clip >= 0.65, (clip, chance)
    assert 0.35 <= chance <= 0.65


@pytest.mark.slow
def test_clip_prototype_far_above_chance_on_shape_classes(miniweb_clip, tmp_path):
    """Shape classes (circle, square, triangle, star), one white shape on black per picture, so
    the class is the shape alone: the mini web's CLIP as a prototype learner. Measured 77% at
    2-way 1-shot and 63% at 4-way 5-shot over 200 episodes (chance 50% and 25%). On the mixed
    scenes, where colour varies too, it is near chance for shapes (it learnt colours first)."""
    from vlcurate.miniweb.scenes import write_shape_classes
    from vlcurate.pipeline.icl.sources import folder_source
    from vlcurate.pipeline.score.clip import ClipScorer

    write_shape_classes(tmp_path / "shapes", per_class=20, seed=0)
    items = list(folder_source(tmp_path / "shapes"))
    assert sorted({i["label"] for i in items}) == ["circle", "square", "star", "triangle"]
    scorer = ClipScorer(model="tiny-clip", pretrained="miniweb", device="cpu")
    sets = {
        "2-way 1-shot": build_episodes(items, EpisodeConfig(ways=2, episodes=200, seed=0)),
        "4-way 5-shot": build_episodes(
            items, EpisodeConfig(ways=4, inner_shots=5, episodes=200, seed=0)
        ),
    }
    results = evaluate([ClipPrototype(scorer), Chance(0)], sets)["results"]
    two, four = (results["clip-prototype"][k]["accuracy"] for k in sets)
    print(f"clip-prototype on shape classes: 2-way 1-shot {two:.3f}, 4-way 5-shot {four:.3f}")
    assert two >= 0.65 and four >= 0.45, (two, four)
    assert results["chance"]["4-way 5-shot"]["accuracy"] <= 0.4
