"""The workers' batch buffers in shared memory: reused once the main process releases them,
never written while it still holds them."""

import numpy as np
import pytest

from tests.score.raw_shards import small_photos, write_shards
from vlcurate.pipeline.score.batches import RING, Batches


class IndexWork:
    """Each sample writes its index into its slot (and every third is not decoded)."""

    def __call__(self, slots):
        def work(index, sample):
            if index % 3 == 2:
                return {"index": index}
            slots.get("value", (4,), np.int64)[...] = index
            return {"index": index, "decoded": True}

        return work


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("b"), small_photos(60, side=8), per_shard=20)


def check(batch) -> None:
    decoded = [batch["items"][n]["index"] for n in batch["pixel_rows"]]
    assert all(i % 3 != 2 for i in decoded) and len(batch["items"]) <= 5 + 1
    values = batch["value"].numpy() if decoded else np.empty((0, 4))
    assert values[:, 0].tolist() == decoded


@pytest.mark.parametrize("workers", [0, 2])
def test_released_buffers_come_back_and_held_ones_are_left_alone(shards, workers):
    batches = Batches(shards, IndexWork(), 5, workers)
    held, buffers = [], set()
    for batch in batches.loader(workers, "cpu"):
        check(batch)
        if batch["pixel_rows"]:  # a batch of only a shard's end holds no buffer
            buffers.add(batch["buffer"])
        batches.release(batch)
    assert buffers <= set(range(RING * max(1, workers)))  # released: always one of the ring
    for batch in Batches(shards, IndexWork(), 5, workers).loader(workers, "cpu"):
        held.append(batch)  # never released: the workers make new buffers
    in_ring = [b["buffer"] for b in held if b["buffer"] >= 0]
    assert len(in_ring) == len(set(in_ring)) <= RING * max(1, workers)  # each taken once
    for batch in held:
        check(batch)  # none was written again while held
