"""Batches assembled in the DataLoader workers, each sample's arrays written straight into its
slot of the batch, in shared memory the worker reuses.

Stacking per-sample arrays and sending a fresh tensor cost about as much as the JPEG decode on
a small machine: the stack copies every pixel, and new shared memory is zeroed page by page as
it is touched. So each worker keeps a ring of batch buffers in shared memory (``RING``) and the
first pass writes each decoded image's square, tokens, pHash thumbnail and face frame into the
next slot (:class:`Slots`). The main process marks a buffer free when the models have read it
(:meth:`Batches.release`, a flag in a shared array made before the workers start); a worker
whose buffers are all still held makes a new one instead of waiting, so nothing blocks and no
buffer is written while it is read.
"""

import numpy as np
import torch

from vlcurate.pipeline.score.passes import loader
from vlcurate.pipeline.score.shards import ShardStream

RING = 4  # buffers per worker: the DataLoader's two batches in flight, one being scored, one spare


def _empty(shape: tuple, dtype, shared: bool) -> torch.Tensor:
    """A tensor allocated in shared memory when ``shared`` (no copy on its way to the main
    process), else in this process."""
    dtype = torch.from_numpy(np.empty(0, dtype)).dtype
    if not shared:
        return torch.empty(shape, dtype=dtype)
    nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(max(1, nbytes))
    return torch.empty(0, dtype=dtype).set_(storage).view(-1)[: int(np.prod(shape))].view(shape)


class Slots:
    """One worker's batch buffers; :meth:`get` is the current sample's slot of an array."""

    def __init__(self, size: int, busy: torch.Tensor, first: int, shared: bool):
        self.size, self.busy, self.first, self.shared = size, busy, first, shared
        self.ring: dict[int, dict[str, torch.Tensor]] = {}
        self.buffer, self.arrays, self.filled = -1, None, 0

    def get(self, key: str, shape: tuple, dtype) -> np.ndarray:
        if self.arrays is None:
            self._start()
        array = self.arrays.get(key)
        if array is None or tuple(array.shape[1:]) != tuple(shape):
            array = self.arrays[key] = _empty((self.size, *shape), dtype, self.shared)
        return array.numpy()[self.filled, ...]  # a view, also of a one-number slot

    def _start(self) -> None:
        free = [r for r in range(RING) if self.busy[self.first + r] == 0]
        if free:
            self.buffer = self.first + free[0]
            self.busy[self.buffer] = 1
            self.arrays = self.ring.setdefault(free[0], {})
        else:  # every buffer still held by the main process: a new one, used once
            self.buffer, self.arrays = -1, {}

    def commit(self) -> None:
        """The current sample took its slots; the next sample gets the next ones."""
        self.filled += 1

    def take(self) -> dict:
        """The batch's arrays, cut to the samples that filled them; the next sample starts a
        new batch."""
        out = {key: a[: self.filled] for key, a in (self.arrays or {}).items()}
        out["buffer"] = self.buffer
        self.buffer, self.arrays, self.filled = -1, None, 0
        return out


def _as_is(batch):
    return batch


class Batches(torch.utils.data.IterableDataset):
    """The samples of ``shards`` as :class:`~vlcurate.pipeline.score.shards.ShardStream` gives
    them (``work_factory(slots)`` builds the per-sample work), in batches of ``batch_size``
    samples (shard ends ride along): ``{"items", "pixel_rows", ARRAY: tensor, ..., "buffer"}``,
    where ``pixel_rows`` are the items that filled a slot (the item said ``"decoded"``);
    ``verdicts``: the shard checks' (:class:`~vlcurate.pipeline.score.checks.Verdicts`; None:
    every shard read as it is)."""

    def __init__(
        self, shards: list[str], work_factory, batch_size: int, workers: int, verdicts=None
    ):
        self.shards, self.work_factory, self.batch_size = shards, work_factory, batch_size
        self.verdicts = verdicts
        self.busy = torch.zeros(RING * max(1, workers), dtype=torch.uint8)
        if workers:
            self.busy.share_memory_()  # made before the workers fork: one array for all

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        slots = Slots(self.batch_size, self.busy, worker * RING, shared=info is not None)
        stream = ShardStream(self.shards, lambda: self.work_factory(slots), None, self.verdicts)
        items, rows, samples = [], [], 0
        for item in stream:
            if item.pop("decoded", False):
                slots.commit()
                rows.append(len(items))
            items.append(item)
            samples += "end" not in item
            if samples == self.batch_size:
                yield {"items": items, "pixel_rows": rows, **slots.take()}
                items, rows, samples = [], [], 0
        if items:
            yield {"items": items, "pixel_rows": rows, **slots.take()}

    def release(self, batch: dict) -> None:
        """The main process is done with the batch's arrays: its worker may write them again."""
        if batch["buffer"] >= 0:
            self.busy[batch["buffer"]] = 0

    def loader(self, workers: int, device: str):
        return loader(self, workers, device, None, _as_is)
