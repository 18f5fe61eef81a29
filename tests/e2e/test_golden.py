"""`curate run demo` and `curate run mmc4` on the mini web give what they gave before the code was
reshaped (tests/e2e/golden/, recorded by golden_run.py): every stage's accounting, the final uids
and the interleaved documents. Fields a stage has gained since are allowed; none may change.
Similarities (rounded to 3 places when recorded) may move by a rounding step: the download writes
samples in the order they arrive, and CLIP on the CPU gives the last bits of an embedding
differently for another batch composition."""

import json

import pytest

from tests.e2e import golden_run

pytestmark = [pytest.mark.spark, pytest.mark.slow]


ROUNDING = 0.0015  # a similarity recorded as 0.512 may now be 0.511


def assert_contains(recorded, now, where: str = "") -> None:
    if isinstance(recorded, dict):
        assert isinstance(now, dict), where
        for key, value in recorded.items():
            assert key in now, f"{where}.{key} is gone"
            assert_contains(value, now[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(now, list) and len(now) == len(recorded), f"{where}: {recorded!r} then"
        for i, (then, value) in enumerate(zip(recorded, now, strict=True)):
            assert_contains(then, value, f"{where}[{i}]")
    elif isinstance(recorded, float):
        assert now == pytest.approx(recorded, abs=ROUNDING), f"{where}: {recorded} then, {now}"
    else:
        assert now == recorded, f"{where}: {recorded!r} then, {now!r} now"


@pytest.mark.parametrize("road", sorted(golden_run.ROADS))
def test_the_road_gives_what_it_gave(road, spark, miniweb_clip, tmp_path):
    recorded = json.loads((golden_run.GOLDEN / f"{road}.json").read_text())
    now = golden_run.capture(golden_run.run_road(road, tmp_path))
    assert_contains(recorded, now, road)
