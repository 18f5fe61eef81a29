"""The shard checks, run in threads beside the scoring rather than all before it.

Checking a shard reads its whole tar (:func:`~vlcurate.pipeline.score.inputs.check_shard`); on
an object store that is the fetch of the shard, copied to local disk for the scoring to read.
Checking every shard before the first is scored would put every fetch on the critical path,
and past ``SPOOL_BYTES`` fetch each tar twice. So :class:`ShardChecks` checks a window of shards
(``CHECKS_AHEAD``) ahead of the one the main process is finishing, and the DataLoader workers
read shard ``n`` once its verdict is in a small array in shared memory (:class:`Verdicts`, made
before they fork): not at all when it was refused, from the local copy when there is one.

The first shard is checked alone, the other threads starting once its verdict is in: every
worker waits for it before its first batch, and the threads' fetches share one event loop (the
store client's), so fetched beside the next ones it would arrive only when they all had.

A worker never waits on the window: one that reaches a shard beyond it (past a run of refused
or tiny shards, its batch not yet full, so the shards the main process needs to finish are
still in it) says so in the same array, and that shard is checked at once. A check that raised
marks its shard refused for the workers, and the main process raises its error when it reaches
that shard.
"""

import threading
import time
from concurrent.futures import Future

import torch

from vlcurate.pipeline.score.inputs import check_shard
from vlcurate.pipeline.score.shards import spool_folder, spool_path, spooled, unspool

CHECK_THREADS = 4
CHECKS_AHEAD = 8  # shards checked (on a store: fetched) ahead of the one being finished
PENDING, READ_AT_SOURCE, READ_LOCAL_COPY, REFUSED = 0, 1, 2, 3
POLL_S = 0.002  # how often a worker waiting for a verdict looks again
WANTED_POLL_S = 0.01  # how often an idle check thread looks for a shard a worker waits on


class Verdicts:
    """What the workers see of the checks: one state per shard, and whether a worker waits
    for it, in shared memory when the scoring has worker processes."""

    def __init__(self, shards: list[str], shared: bool):
        self.shards = shards
        self.state = torch.zeros(len(shards), dtype=torch.uint8)
        self.wanted = torch.zeros(len(shards), dtype=torch.uint8)
        if shared:
            self.state.share_memory_()
            self.wanted.share_memory_()
        spool_folder()  # where the local copies will be: made before the workers fork

    def wait(self, n: int) -> str | None:
        """Where to read shard ``n`` from once it has been checked; None: refused."""
        if int(self.state[n]) == PENDING:
            self.wanted[n] = 1
        while (state := int(self.state[n])) == PENDING:
            time.sleep(POLL_S)
        if state == REFUSED:
            return None
        return spool_path(self.shards[n]) if state == READ_LOCAL_COPY else self.shards[n]


class ShardChecks:
    """The main process's side: shards checked in order by a few threads, a window ahead of
    the last one finished (or further, when a worker waits); verdicts taken in order."""

    def __init__(self, shards: list[str], shared: bool, ahead: int | None = None):
        self.shards, self.ahead = shards, max(1, CHECKS_AHEAD if ahead is None else ahead)
        self.verdicts = Verdicts(shards, shared)
        self.futures = [Future() for _ in shards]
        self.taken = self.finished = 0  # shards handed to a thread; shards finished
        self.closed = False
        self.changed = threading.Condition()
        self.threads = [
            threading.Thread(target=self._run, name=f"check-{i}", daemon=True)
            for i in range(min(CHECK_THREADS, len(shards)))
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def reason(self, n: int) -> str | None:
        """Shard ``n``'s reason to be refused (None: taken); its check's error, raised."""
        return self.futures[n].result()

    def done(self, n: int) -> None:
        """Shard ``n`` is finished: its local copy goes, and the window moves on."""
        unspool(self.shards[n])
        with self.changed:
            self.finished = n + 1
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        for thread in self.threads:
            if thread.is_alive():
                thread.join()
        for shard in self.shards:
            unspool(shard)

    def _take(self) -> int | None:
        """The next shard to check, once it is in the window or a worker waits for it."""
        with self.changed:
            while not self.closed and self.taken < len(self.shards):
                n = self.taken
                ready = n == 0 or self.futures[0].done()  # the first shard is checked alone
                if ready and (n < self.finished + self.ahead or self.verdicts.wanted[n:].any()):
                    self.taken += 1
                    return n
                self.changed.wait(WANTED_POLL_S)
            return None

    def _run(self) -> None:
        while (n := self._take()) is not None:
            try:
                self.futures[n].set_result(self._check(n))
            except BaseException as error:  # raised in the main process, at shard n
                self.futures[n].set_exception(error)
            if n == 0:
                with self.changed:
                    self.changed.notify_all()

    def _check(self, n: int) -> str | None:
        shard, state = self.shards[n], REFUSED
        try:
            reason = check_shard(shard)
            if reason is None:
                state = READ_LOCAL_COPY if spooled(shard) else READ_AT_SOURCE
            return reason
        finally:
            self.verdicts.state[n] = state
