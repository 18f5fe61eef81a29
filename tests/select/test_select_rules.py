"""The select stage's rules at their boundaries, as rules of the one filter protocol, and the uid
list format."""

import numpy as np
import pyarrow as pa
import pytest

from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.pipeline.select.outputs import uid_array
from vlcurate.pipeline.select.plan import ranking
from vlcurate.pipeline.select.rules import Bound, Rules, clip_threshold, rule_reasons, rules_for
from vlcurate.pipeline.verdict import Verdict

CLIP = "clip_vit_b_32_sim"


def table(**columns) -> pa.Table:
    n = len(next(iter(columns.values())))
    base = {"uid": [f"{i:032x}" for i in range(n)], "status": ["ok"] * n}
    base.update(columns)
    types = {CLIP: pa.float32(), "nsfw_p": pa.float32(), "watermark_p": pa.float32()}
    return pa.table({k: pa.array(v, types.get(k)) for k, v in base.items()})


def below(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(-1)))


def above(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(2)))


def test_each_threshold_keeps_its_boundary_and_drops_just_past_it():
    t = table(
        **{
            CLIP: [0.28, below(0.28), 0.9, 0.9, 0.9, 0.9],
            "nsfw_p": [0.5, 0.1, above(0.5), 0.1, 0.1, 0.1],
            "watermark_p": [0.8, 0.1, 0.1, above(0.8), 0.1, None],
        }
    )
    reasons, facts = rule_reasons(
        t, CLIP, SelectConfig(clip_min=0.28, nsfw_max=0.5, watermark_max=0.8)
    )
    assert reasons == [None, "clip_similarity", "nsfw", "watermark", None, None]
    assert facts["clip_threshold"] == 0.28


def test_size_aspect_language_faces_and_decode_status():
    t = table(
        **{CLIP: [0.5] * 7},
        status=["ok", "ok", "ok", "ok", "ok", "ok", "decode_error"],
        original_width=[200, 199, 600, 601, 300, 300, 300],
        original_height=[400, 400, 200, 200, 300, 300, 300],
        width=[64] * 7,
        height=[64] * 7,
        language=["en", "en", "en", "en", "de", "en", "en"],
        face_count=[0, 0, 0, 0, 0, 2, None],
    )
    config = SelectConfig(min_side=200, max_aspect_ratio=3.0, languages=["en"], faces="drop")
    reasons, _ = rule_reasons(t, CLIP, config)
    assert reasons == [
        None,
        "image_too_small",
        None,
        "aspect_ratio",
        "language",
        "faces",
        "decode_error",
    ]


def test_decoded_size_stands_in_when_the_original_is_unknown():
    t = table(
        **{CLIP: [0.5, 0.5]},
        original_width=[None, None],
        original_height=[None, None],
        width=[150, 250],
        height=[300, 300],
    )
    reasons, _ = rule_reasons(t, CLIP, SelectConfig(min_side=200))
    assert reasons == ["image_too_small", None]


@pytest.mark.parametrize("fraction, kept", [(0.3, 3), (0.25, 3), (1.0, 10), (0.01, 1)])
def test_top_fraction_keeps_ceil_of_the_decoded(fraction, kept):
    values = np.linspace(0.1, 0.5, 10).astype(np.float32)
    t = table(**{CLIP: list(map(float, values)) + [None]}, status=["ok"] * 10 + ["empty_file"])
    reasons, facts = rule_reasons(t, CLIP, SelectConfig(clip_top_fraction=fraction))
    assert sum(r is None for r in reasons) == kept
    assert reasons[-1] == "empty_file"
    assert facts["clip_threshold"] == pytest.approx(float(np.sort(values)[::-1][kept - 1]))


def test_top_fraction_keeps_ties_with_the_last_one_in():
    decoded = np.ones(5, dtype=bool)
    clip = np.array([0.3, 0.3, 0.3, 0.2, 0.1], dtype=np.float32)
    assert clip_threshold(clip, decoded, SelectConfig(clip_top_fraction=0.2)) == pytest.approx(0.3)


def test_ranking_puts_the_highest_similarity_first_and_breaks_ties_by_uid():
    t = table(**{CLIP: [0.1, 0.3, None, 0.3]})
    assert list(ranking(t, CLIP)) == [2, 0, 3, 1]


def test_uid_array_is_datacomp_format_sorted():
    uids = ["ff" * 16, "00" * 15 + "01", "0123456789abcdef" + "fedcba9876543210"]
    array = uid_array(uids)
    assert array.dtype == np.dtype("u8,u8")
    assert array.tolist() == sorted(array.tolist())
    assert (0x0123456789ABCDEF, 0xFEDCBA9876543210) in array.tolist()


def test_each_rule_judges_a_batch_and_the_first_failing_one_names_the_reason():
    t = table(**{CLIP: [0.1, 0.9, 0.1, None], "nsfw_p": [0.9, 0.9, 0.1, 0.1]})
    clip = Bound("clip_similarity", CLIP, low=0.28)
    verdict = clip.judge(t)
    assert isinstance(verdict, Verdict)
    assert list(verdict.reasons) == ["clip_similarity", None, "clip_similarity", "clip_similarity"]
    assert list(verdict.keep) == [False, True, False, False]
    nsfw = Bound("nsfw", "nsfw_p", high=0.5)
    assert list(Rules((clip, nsfw)).judge(t).reasons) == [
        "clip_similarity",
        "nsfw",
        "clip_similarity",
        "clip_similarity",
    ]
    assert list(Rules((nsfw, clip)).judge(t).reasons)[:2] == ["nsfw", "nsfw"]


def test_the_recipes_rules_come_in_the_schemas_order_after_the_decode_status():
    config = SelectConfig(
        languages=["en"], min_side=10, max_aspect_ratio=2, nsfw_max=0.5, watermark_max=0.5
    )
    rules = rules_for(config, CLIP, 0.2).rules
    reasons = [getattr(r, "reason", None) for r in rules[2:]]
    assert reasons == ["image_too_small", "aspect_ratio", "clip_similarity", "nsfw", "watermark"]
    assert len(rules_for(SelectConfig(), CLIP, None).rules) == 1  # the decode status only


def test_zero_rows_judge_to_zero_reasons():
    t = table(**{CLIP: []}, status=[])
    reasons, facts = rule_reasons(t, CLIP, SelectConfig(clip_top_fraction=0.5, nsfw_max=0.5))
    assert reasons == [] and facts["clip_threshold"] is None
