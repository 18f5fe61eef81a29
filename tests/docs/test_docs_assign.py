"""Placing images among sentences (mmc4): the assignment, the core rule, within-document pHash
dedup, the sentence splitter, and whole documents with the random tiny CLIP."""

import time

import numpy as np
import pytest
from PIL import Image

from vlcurate.pipeline.docs.assign import (
    BEST_SENTENCE,
    CORE_LOW_SIMILARITY_SHARE,
    CORE_TOO_FEW_IMAGES,
    CORE_TOO_FEW_SENTENCES,
    CORE_TOO_MANY_IMAGES,
    CORE_TOO_MANY_SENTENCES,
    DUPLICATE_PHASH_IN_DOC,
    IMAGE_REASONS,
    LOW_SIMILARITY,
    MATCHING,
    NO_PIXELS,
    NO_SENTENCES,
    TOO_MANY_IMAGES,
    MMC4Core,
    assign,
    is_core,
    phash_duplicates_within,
)
from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.docs.document import assign_document, phash_of, similarity_matrix
from vlcurate.pipeline.docs.sentences import split_sentences


def placed(results):
    return [(a.matched_text_index, a.by) if a.reason is None else a.reason for a in results]


# --- assign ----------------------------------------------------------------------------------


def test_square_matrix_maximises_the_total_not_greedily():
    # greedy would take 0.9 (image 0 -> sentence 0) and leave image 1 with 0.2: total 1.1
    sim = np.array([[0.9, 0.8], [0.85, 0.2]], dtype=np.float32)
    out = assign(sim)
    assert placed(out) == [(1, MATCHING), (0, MATCHING)]
    assert [a.image for a in out] == [0, 1]
    assert out[0].matched_sim == pytest.approx(0.8) and out[1].matched_sim == pytest.approx(0.85)


def test_more_sentences_than_images_each_image_its_own_sentence():
    sim = np.array([[0.2, 0.3, 0.9, 0.1], [0.2, 0.95, 0.9, 0.1]])
    assert placed(assign(sim)) == [(2, MATCHING), (1, MATCHING)]


def test_more_images_than_sentences_leftovers_go_to_their_best_sentence_as_in_mmc4():
    sim = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    out = assign(sim)
    # matching: image 0 -> 0, image 2 -> 1; image 1 is left over and joins its argmax, sentence 0
    assert placed(out) == [(0, MATCHING), (0, BEST_SENTENCE), (1, MATCHING)]
    assert out[1].matched_sim == pytest.approx(0.8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_min_sim_boundary_exactly_kept_just_below_dropped(dtype):
    sim = np.array([[0.15, 0.1], [0.1499, 0.05], [0.1, 0.3]], dtype=dtype)
    out = assign(sim, min_sim=0.15)
    assert placed(out) == [(0, MATCHING), LOW_SIMILARITY, (1, MATCHING)]


def test_a_dropped_image_does_not_take_a_sentence():
    # image 1's best is 0.1: dropped before matching, so image 0 keeps sentence 0
    sim = np.array([[0.5, 0.2], [0.1, 0.09]])
    assert placed(assign(sim)) == [(0, MATCHING), LOW_SIMILARITY]


def test_nan_empty_and_degenerate_matrices():
    assert placed(assign(np.array([[np.nan, np.nan], [0.4, np.nan]]))) == [
        LOW_SIMILARITY,
        (0, MATCHING),
    ]
    assert assign(np.zeros((0, 3))) == []
    assert placed(assign(np.zeros((2, 0)))) == [NO_SENTENCES, NO_SENTENCES]
    with pytest.raises(ValueError):
        assign(np.zeros(3))


# --- mmc4-core -------------------------------------------------------------------------------

GOOD = [0.3, 0.3]


@pytest.mark.parametrize(
    "n_sentences, n_images, sims, reason",
    [
        (4, 2, GOOD, None),
        (3, 2, GOOD, CORE_TOO_FEW_SENTENCES),
        (40, 2, GOOD, None),
        (41, 2, GOOD, CORE_TOO_MANY_SENTENCES),
        (10, 2, GOOD, None),
        (10, 1, [0.3], CORE_TOO_FEW_IMAGES),
        (10, 15, [0.3] * 15, None),
        (10, 16, [0.3] * 16, CORE_TOO_MANY_IMAGES),
        (10, 4, [0.3, 0.3, 0.3, 0.1], None),  # exactly 75%
        (10, 4, [0.3, 0.3, 0.3, 0.25], None),
        (10, 4, [0.3, 0.3, 0.25, 0.1], CORE_LOW_SIMILARITY_SHARE),  # 0.25 is not > 0.25
        (10, 5, [0.3, 0.3, 0.3, 0.1, 0.1], CORE_LOW_SIMILARITY_SHARE),  # 60%
        (10, 2, [0.2501, 0.2501], None),
    ],
)
def test_is_core_boundaries(n_sentences, n_images, sims, reason):
    assert is_core(n_sentences, n_images, sims) == reason


def core_verdict(rule: MMC4Core, record: dict) -> tuple[bool, str | None]:
    verdict = rule.judge([record])
    return bool(verdict.keep[0]), verdict.reasons[0]


def test_mmc4_core_filter_on_a_record():
    record = {"text_list": ["s"] * 5, "image_info": [{"matched_sim": 0.3}, {"matched_sim": 0.4}]}
    assert core_verdict(MMC4Core(), record) == (True, None)
    record["text_list"] = ["s"] * 3
    assert core_verdict(MMC4Core(), record) == (False, CORE_TOO_FEW_SENTENCES)
    assert core_verdict(MMC4Core(min_sentences=3), record) == (True, None)


def test_mmc4_core_judges_a_batch_of_records():
    good = {"text_list": ["s"] * 5, "image_info": [{"matched_sim": 0.3}, {"matched_sim": 0.4}]}
    short = {**good, "text_list": ["s"] * 3}
    verdict = MMC4Core().judge([good, short, good])
    assert verdict.reasons.tolist() == [None, CORE_TOO_FEW_SENTENCES, None]
    assert verdict.keep.tolist() == [True, False, True] and len(MMC4Core().judge([])) == 0


# --- pHash -----------------------------------------------------------------------------------


def test_phash_duplicates_exact_by_default():
    hashes = [
        "ff00ff00ff00ff00",
        None,
        0xFF00FF00FF00FF00,
        "ff00ff00ff00ff01",
        "not hex",
        "FF00FF00FF00FF00",
        None,
    ]
    assert phash_duplicates_within(hashes) == [None, None, 0, None, None, 0, None]


def test_phash_duplicates_within_a_distance_compare_with_kept_images_only():
    a, b, c = 0b0000, 0b0011, 0b1111  # a~b at 2 bits, b~c at 2, a~c at 4
    assert phash_duplicates_within([a, b, c], max_distance=2) == [None, 0, None]
    assert phash_duplicates_within([a, b, c], max_distance=4) == [None, 0, 0]
    assert phash_duplicates_within([], max_distance=2) == []


# --- sentences -------------------------------------------------------------------------------


def test_sentences_split_at_terminators_and_keep_abbreviations_and_decimals():
    text = (
        "Dr. Smith paid $3.50 in the U.S. for e.g. Coffee. Was it good? Yes! "
        'He said "Fine." Then Mr. J. Jones left at 5 p.m. on Jan. 3. See the sun. The end...'
    )
    assert split_sentences(text) == [
        "Dr. Smith paid $3.50 in the U.S. for e.g. Coffee.",
        "Was it good?",
        "Yes!",
        'He said "Fine."',
        "Then Mr. J. Jones left at 5 p.m. on Jan. 3.",
        "See the sun.",
        "The end...",
    ]


def test_sentences_lowercase_after_period_and_line_breaks():
    assert split_sentences("see example.com. it works. Next") == [
        "see example.com. it works.",
        "Next",
    ]
    assert split_sentences("Title\nFirst line.  Second\t line") == [
        "Title",
        "First line.",
        "Second line",
    ]


def test_sentences_empty_and_no_punctuation():
    assert (
        split_sentences("") == []
        and split_sentences(" \n\t ") == []
        and split_sentences(None) == []
    )
    assert split_sentences("a caption with no punctuation at all") == [
        "a caption with no punctuation at all"
    ]


def test_sentences_100kb_without_spaces_are_hard_cut_and_bounded():
    start = time.perf_counter()
    pieces = split_sentences("x" * 100_000)
    assert time.perf_counter() - start < 1
    assert len(pieces) == 100 and {len(p) for p in pieces} == {1000}
    words = split_sentences("word " * 30_000, max_chars=500)
    assert max(map(len, words)) <= 500 and " ".join(words) == ("word " * 30_000).strip()
    assert split_sentences("abcdef", max_chars=4) == ["abcd", "ef"]
    with pytest.raises(ValueError):
        split_sentences("a", max_chars=0)


# --- whole documents, with the random tiny CLIP ----------------------------------------------


@pytest.fixture(scope="module")
def scorer():
    from vlcurate.pipeline.score.clip import ClipScorer

    return ClipScorer(model="tiny-clip", pretrained=None, device="cpu")


def noise(seed: int, mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


TEXT = [
    "A red door in the old town. The cat sleeps on the mat!",
    "",
    "Dr. Jones wrote this in 2021. Is it true? We think so.",
]


def test_similarity_matrix_shape_and_batching(scorer):
    images = [noise(i) for i in range(5)]
    sentences = split_sentences(" ".join(TEXT))
    full = similarity_matrix(scorer, images, sentences)
    assert full.shape == (5, 5) and full.dtype == np.float32
    assert np.all(np.abs(full) <= 1.0 + 1e-5)
    np.testing.assert_allclose(
        similarity_matrix(scorer, images, sentences, batch_size=2), full, atol=1e-5
    )
    assert similarity_matrix(scorer, [], sentences).shape == (0, 5)


def test_assign_document_accounts_for_every_image(scorer):
    images = [
        {"image": noise(0), "url": "http://x/0.jpg", "faces": [[1, 2, 3, 4]]},
        {"image": noise(1, "L"), "url": "http://x/1.png"},
        {"image": noise(0).copy(), "url": "http://x/0-copy.jpg"},  # same pixels as 0
        {"image": None, "url": "http://x/broken.jpg"},
        {"image": noise(2, "RGBA"), "url": "http://x/2.png"},
        noise(3),
    ]
    record = assign_document(TEXT, images, scorer, AssignConfig(min_sim=-1.0), url="http://page")
    assert record["url"] == "http://page" and record["refused"] is None
    assert record["text_list"] == [
        "A red door in the old town.",
        "The cat sleeps on the mat!",
        "Dr. Jones wrote this in 2021.",
        "Is it true?",
        "We think so.",
    ]
    reasons = {d["position"]: d["reason"] for d in record["dropped"]}
    assert reasons == {2: DUPLICATE_PHASH_IN_DOC, 3: NO_PIXELS}
    assert record["dropped"][0]["duplicate_of"] == 0
    info = record["image_info"]
    assert [im["position"] for im in info] == [0, 1, 4, 5]  # page order
    assert [im["image_name"] for im in info] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert info[0]["face_detections"] == [[1, 2, 3, 4]] and info[0]["raw_url"] == "http://x/0.jpg"
    assert info[0]["phash"] == phash_of(images[0]["image"])
    matrix = np.array(record["similarity_matrix"])
    assert matrix.shape == (4, 5)
    for row, im in zip(matrix, info, strict=True):
        assert im["matched_by"] == MATCHING  # fewer images than sentences: one each
        assert im["matched_sim"] == pytest.approx(row[im["matched_text_index"]], abs=1e-6)
    assert len({im["matched_text_index"] for im in info}) == 4

    strict = assign_document(TEXT, images, scorer, AssignConfig(min_sim=0.99))
    assert strict["image_info"] == [] and strict["similarity_matrix"] == []
    assert sorted(d["position"] for d in strict["dropped"]) == list(range(6))
    assert {d["reason"] for d in strict["dropped"]} == {
        DUPLICATE_PHASH_IN_DOC,
        NO_PIXELS,
        LOW_SIMILARITY,
    }
    assert {d["reason"] for d in strict["dropped"]} <= set(IMAGE_REASONS)


def test_assign_document_without_sentences_or_images(scorer):
    record = assign_document(["", "   "], [noise(0), noise(1)], scorer)
    assert record["text_list"] == [] and record["image_info"] == []
    assert [d["reason"] for d in record["dropped"]] == [NO_SENTENCES, NO_SENTENCES]
    empty = assign_document(TEXT, [], scorer)
    assert empty["image_info"] == [] and empty["similarity_matrix"] == [] and empty["dropped"] == []
    assert len(empty["text_list"]) == 5


def test_a_document_with_10000_images_is_refused_before_any_matrix():
    images = [{"image": None, "url": f"http://x/{i}.jpg"} for i in range(10_000)]
    start = time.perf_counter()
    # scorer=None: building the matrix (or hashing) would fail, so none was attempted
    record = assign_document(TEXT, images, scorer=None, config=AssignConfig(max_images=1000))
    assert time.perf_counter() - start < 1
    assert record["refused"] == TOO_MANY_IMAGES
    assert record["image_info"] == [] and record["similarity_matrix"] == []
    assert len(record["dropped"]) == 10_000
    assert {d["reason"] for d in record["dropped"]} == {TOO_MANY_IMAGES}
