"""Few-shot episodes after Frozen's protocol: sources, episode structure, leakage, scoring."""

import json
from collections import Counter

import pytest
from PIL import Image

from vlcurate.miniweb.scenes import write_scene_shards
from vlcurate.pipeline.icl.episodes import (
    NONSENSE,
    Episode,
    EpisodeConfig,
    build_episodes,
    exact_match,
    normalise,
    prompt_sequence,
    read_jsonl,
    write_jsonl,
)
from vlcurate.pipeline.icl.evaluate import set_name
from vlcurate.pipeline.icl.frozen_tasks import frozen_episodes, frozen_source
from vlcurate.pipeline.icl.sources import folder_source, load_image, shard_source


def synthetic(classes: int = 6, per_class: int = 8) -> list[dict]:
    """Items without images (episodes only look at refs and labels)."""
    return [
        {"ref": f"img/c{c}/{i}.jpg", "label": f"class {c}", "attributes": {}}
        for c in range(classes)
        for i in range(per_class)
    ]


@pytest.fixture(scope="module")
def scene_items(tmp_path_factory):
    """~200 mini-web scenes; kept where the first shape kind has a single colour in the scene,
    so "What colour is the dax?" has one answer."""
    shards = write_scene_shards(tmp_path_factory.mktemp("scenes"), 200, seed=3, per_shard=80)
    items = list(shard_source(shards, "kind", attribute_fields=("color", "shapes")))
    assert len(items) == 200 and len(shards) == 3
    unambiguous = []
    for item in items:
        colours = {s["color"] for s in item["attributes"]["shapes"] if s["kind"] == item["label"]}
        if len(colours) == 1:
            unambiguous.append(item)
    return unambiguous


@pytest.mark.parametrize("ways,shots,repeats", [(2, 1, 0), (2, 3, 2), (5, 5, 5), (3, 1, 1)])
def test_episode_structure(ways, shots, repeats):
    config = EpisodeConfig(ways=ways, inner_shots=shots, repeats=repeats, episodes=20, seed=1)
    episodes = build_episodes(synthetic(), config)
    assert len(episodes) == 20
    for ep in episodes:
        assert len(ep.support) == ways * shots * (repeats + 1)
        once = ep.support[: ways * shots]
        assert ep.support == once * (repeats + 1)
        assert len({s["ref"] for s in once}) == ways * shots  # distinct images
        assert Counter(s["name"] for s in once) == {n: shots for n in ep.candidates}
        assert len(set(ep.candidates)) == ways and set(ep.candidates) <= set(NONSENSE)
        assert ep.answer == ep.query_name in ep.candidates
        assert ep.induction is None and ep.question is None
        assert ep.settings["ways"] == ways and ep.settings["repeats"] == repeats


def test_name_binding_is_consistent_within_an_episode():
    items = synthetic()
    label = {it["ref"]: it["label"] for it in items}
    for ep in build_episodes(items, EpisodeConfig(ways=5, inner_shots=3, episodes=50, seed=4)):
        bound = {}
        for shot in ep.support:
            assert bound.setdefault(label[shot["ref"]], shot["name"]) == shot["name"]
        assert len(set(bound.values())) == 5  # one name per class, one class per name
        assert bound[label[ep.query]] == ep.answer


def test_real_names_and_task_induction():
    config = EpisodeConfig(ways=3, names="real", task_induction=True, episodes=10, seed=2)
    for ep in build_episodes(synthetic(), config):
        a, b, c = ep.candidates
        assert ep.induction == f"Answer with {a}, {b} or {c}."
        assert ep.answer == ep.query_name and ep.answer.startswith("class ")
    two = build_episodes(synthetic(), EpisodeConfig(task_induction=True, episodes=1, seed=0))[0]
    assert two.induction == f"Answer with {two.candidates[0]} or {two.candidates[1]}."


def test_determinism_and_seeds():
    items = synthetic()
    config = EpisodeConfig(ways=2, inner_shots=3, episodes=30, seed=7)
    first = build_episodes(items, config)
    assert first == build_episodes(list(reversed(items)), config)  # source order does not matter
    other = build_episodes(items, EpisodeConfig(ways=2, inner_shots=3, episodes=30, seed=8))
    assert [e.support for e in first] != [e.support for e in other]


def test_query_never_leaks_into_the_support():
    items = synthetic(classes=5, per_class=4)  # tight: query class uses 4 of its 4 images
    for ways, shots in [(2, 1), (2, 3), (5, 3), (5, 1)]:
        config = EpisodeConfig(ways=ways, inner_shots=shots, repeats=2, episodes=300, seed=ways)
        for ep in build_episodes(items, config):
            assert ep.query not in {s["ref"] for s in ep.support}


def test_classes_with_too_few_images_are_skipped_else_clear_error():
    few = [{"ref": f"few/{i}.jpg", "label": "rare", "attributes": {}} for i in range(3)]
    config = EpisodeConfig(ways=2, inner_shots=3, episodes=50, seed=0)  # needs 4 per class
    episodes = build_episodes(synthetic(3, 6) + few, config)
    assert all("rare" not in e.candidates for e in episodes)
    assert all(not s["ref"].startswith("few/") for e in episodes for s in e.support)
    with pytest.raises(ValueError, match=r"2 classes with at least 4 images.*found 1"):
        build_episodes(synthetic(1, 6) + few, config)
    with pytest.raises(ValueError, match="ways"):
        EpisodeConfig(ways=1)


def test_jsonl_round_trip(tmp_path):
    config = EpisodeConfig(ways=2, task_induction=True, repeats=1, episodes=5, seed=3)
    episodes = build_episodes(synthetic(), config)
    write_jsonl(episodes, tmp_path / "ep.jsonl")
    back = read_jsonl(tmp_path / "ep.jsonl")
    assert back == episodes and all(isinstance(e, Episode) for e in back)
    assert Episode.from_json(episodes[0].to_json()) == episodes[0]
    assert json.loads((tmp_path / "ep.jsonl").read_text().splitlines()[0])["id"] == "3-0"


def test_prompt_sequence_template():
    config = EpisodeConfig(ways=2, task_induction=True, repeats=1, episodes=1, seed=0)
    ep = build_episodes(synthetic(), config)[0]
    seq = prompt_sequence(ep)
    assert seq[0] == ep.induction
    assert seq[1:9:2] == [{"image": s["ref"]} for s in ep.support]
    assert seq[2:9:2] == [f"This is a {s['name']}." for s in ep.support]
    assert seq[-2:] == [{"image": ep.query}, "Q: What is this? A: This is a"]
    assert len(seq) == 1 + 2 * 4 + 2


@pytest.mark.parametrize(
    "prediction,answer,match",
    [
        ("The Dax.", "dax", True),
        ("  a   blicket! ", "blicket", True),
        ("an ice-cream", "ice cream", True),
        ("dax blicket", "dax", False),
        ("Red", "red", True),
        ("theta", "eta", False),
    ],
)
def test_exact_match_normalisation(prediction, answer, match):
    assert exact_match(prediction, answer) is match
    assert normalise("The  DAX, the end.") == "dax end"


def test_fast_vqa_on_scene_shards(scene_items):
    config = EpisodeConfig(
        ways=2, inner_shots=3, fast_vqa=True, attribute="color", episodes=40, seed=5
    )
    by_ref = {it["ref"]: it for it in scene_items}
    episodes = build_episodes(scene_items, config)
    for ep in episodes:
        query = by_ref[ep.query]
        assert ep.question == f"What colour is the {ep.query_name}?"
        assert ep.answer == query["attributes"]["color"]
        kinds = {by_ref[s["ref"]]["label"] for s in ep.support if s["name"] == ep.query_name}
        assert kinds == {query["label"]}  # the query shows the object of the bound class
        assert ep.query not in {s["ref"] for s in ep.support}
        assert prompt_sequence(ep)[-1] == f"Q: {ep.question} A:"
    assert len({ep.answer for ep in episodes}) > 2
    image = load_image(episodes[0].query)
    assert image.mode == "RGB" and min(image.size) >= 96


def test_folder_source(tmp_path):
    for cls, colour in (("golden_retriever", "gold"), ("tabby_cat", "gray"), ("empty", None)):
        (tmp_path / cls).mkdir()
        for i in range(3 if colour else 0):
            Image.new("RGB", (16, 12), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "tabby_cat" / "notes.txt").write_text("not an image")
    items = list(folder_source(tmp_path))
    assert Counter(it["label"] for it in items) == {"golden retriever": 3, "tabby cat": 3}
    assert load_image(items[0]["ref"]).size == (16, 12)
    ep = build_episodes(items, EpisodeConfig(names="real", inner_shots=2, episodes=3))[0]
    assert set(ep.candidates) == {"golden retriever", "tabby cat"}


def test_frozen_layout_parser(tmp_path):
    def image(name):
        Image.new("RGB", (8, 8), "white").save(tmp_path / name)

    prefix = "open_ended_mi_shots_1_ways_2"
    for x in (0, 1):
        for i in (0, 1):
            image(f"{prefix}_id_{x}_image_{i}.jpg")
        image(f"{prefix}_id_{x}_question.jpg")
    questions = [
        {
            "id": 0,
            "caption_0": "This is a dax.",
            "caption_1": "This is a blicket.",
            "question": "Q: What is this? A:",
            "answer": "dax",
        },
        {"captions": ["this is an apple", "This is a wug."], "answers": ["wug", "wugs"]},
    ]
    (tmp_path / f"{prefix}_all_questions.json").write_text(json.dumps(questions))
    # a task with no json, a stray file and a broken json are tolerated
    image("fast_vqa_shots_3_ways_2_id_7_image_1.jpg")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "broken_all_questions.json").write_text("{not json")
    items = {it["ref"].rsplit("/", 1)[1]: it for it in frozen_source(tmp_path)}
    assert len(items) == 7
    q0 = items[f"{prefix}_id_0_question.jpg"]
    assert q0["label"] == "dax" and q0["attributes"]["question"] == "Q: What is this? A:"
    assert q0["attributes"] | {"question": None} == {
        "task": "open_ended_mi",
        "shots": 1,
        "ways": 2,
        "id": "0",
        "position": "question",
        "question": None,
    }
    assert items[f"{prefix}_id_0_image_1.jpg"]["label"] == "blicket"
    assert items[f"{prefix}_id_1_image_0.jpg"]["label"] == "apple"
    assert items[f"{prefix}_id_1_image_1.jpg"]["attributes"]["position"] == 1
    assert items[f"{prefix}_id_1_question.jpg"]["label"] == "wug"
    lone = items["fast_vqa_shots_3_ways_2_id_7_image_1.jpg"]
    assert lone["label"] == "" and lone["attributes"]["task"] == "fast_vqa"


def test_frozen_released_questions_become_episodes(tmp_path):
    def image(name, colour="white"):
        Image.new("RGB", (8, 8), colour).save(tmp_path / name)

    prefix = "open_ended_mi_shots_1_ways_2"
    for x in (0, 1, 2):
        for i in (1, 0):
            image(f"{prefix}_id_{x}_image_{i}.jpg")
        if x != 2:  # question 2 lost its query image
            image(f"{prefix}_id_{x}_question.jpg")
    (tmp_path / f"{prefix}_all_questions.json").write_text(
        json.dumps(
            [
                {
                    "id": 0,
                    "caption_0": "This is a dax.",
                    "caption_1": "This is a blicket.",
                    "answer": "blicket",
                },
                {
                    "id": 1,
                    "caption_0": "This is a wug.",
                    "caption_1": "This is a zorb.",
                    "answer": "",
                },
                {
                    "id": 2,
                    "caption_0": "This is a dax.",
                    "caption_1": "This is a wug.",
                    "answer": "dax",
                },
            ]
        )
    )
    vqa = "fast_vqa_shots_1_ways_2"
    for i in (0, 1):
        image(f"{vqa}_id_5_image_{i}.jpg")
    image(f"{vqa}_id_5_question.jpg")
    (tmp_path / f"{vqa}_all_questions.json").write_text(
        json.dumps(
            [
                {
                    "id": 5,
                    "captions": ["This is a dax.", "This is a blicket."],
                    "question": "Q: What colour is the dax? A:",
                    "answer": "red",
                },
            ]
        )
    )
    episodes, notes = frozen_episodes(tmp_path)
    assert sorted(notes) == [
        "skipped 1 Frozen question(s): no answer",
        "skipped 1 Frozen question(s): no question image",
    ]
    by_id = {e.id: e for e in episodes}
    open_ended = by_id["open_ended_mi-1-2-0"]
    assert [s["name"] for s in open_ended.support] == ["dax", "blicket"]  # by position
    assert open_ended.support[0]["ref"].endswith("_id_0_image_0.jpg")
    assert open_ended.answer == "blicket" and open_ended.candidates == ["dax", "blicket"]
    assert open_ended.query.endswith("_id_0_question.jpg") and open_ended.question is None
    assert prompt_sequence(open_ended)[-1] == "Q: What is this? A: This is a"
    assert set_name(open_ended.settings) == "2-way, no induction, 1 shot, 0 repeats"
    fast = by_id["fast_vqa-1-2-5"]
    assert fast.question == "What colour is the dax?" and fast.answer == "red"
    assert prompt_sequence(fast)[-1] == "Q: What colour is the dax? A:"
    assert set_name(fast.settings).endswith("fast-VQA")
