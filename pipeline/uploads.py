"""Object-store writes finished off the critical path: while a unit's outputs upload, the next
unit is already being processed.

Inside :func:`in_background`, a whole object written by the thread that opened it
(:func:`vlcurate.pipeline.objectstore.whole_object`) is written as usual, but its last step (the
``close()`` that sends the one PUT of a small object, or the last part and the completion of a
multipart upload) runs in a pool of threads. :meth:`Uploads.after` runs a step (a unit's done
marker) once every upload submitted before it has completed, and never if one failed, so a
marker still never exists for a partial output. Reads through :mod:`vlcurate.pipeline.storage`
of a path still uploading wait for it first. Uploads stay a bounded number of units behind
(``units_ahead``), and the scope ends only when every upload is complete; a failed upload is
raised there, or at the next unit, as the error of the unit that wrote it.

Round trips to the store are what this hides: on S3 an upload costs a round trip or more,
about as long as a small unit's work on a store that is not on the same machine.
"""

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

UPLOAD_THREADS = 8
UNITS_AHEAD = 2  # units whose uploads may still be in flight while the next one is processed
MAX_PENDING = 32  # uploads in flight at once (each holds at most one block of its file)


class Uploads:
    def __init__(self, threads: int = UPLOAD_THREADS, units_ahead: int = UNITS_AHEAD):
        self.owner = threading.get_ident()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="upload")
        self.units_ahead = units_ahead
        self.since_step: list[Future] = []  # uploads submitted since the last step
        self.in_flight: deque[tuple[str, Future]] = deque()  # (path, upload or step)
        self.steps: deque[Future] = deque()

    def defers(self) -> bool:
        """Whether a write of this thread is finished in the background."""
        return threading.get_ident() == self.owner

    def submit(self, path: str, finish) -> None:
        """Run ``finish()`` (the object's ``close``) in a pool thread."""
        future = self.pool.submit(finish)
        self.since_step.append(future)
        self.in_flight.append((path, future))
        self._prune(MAX_PENDING)

    def after(self, step) -> None:
        """Run ``step()`` once the uploads submitted so far have completed (at once, here, if
        none is in flight); it is skipped if one of them failed, and that error is raised."""
        before, self.since_step = self.since_step, []
        if not any(not f.done() for f in before):
            for f in before:
                f.result()
            step()
            return
        # FIFO: every upload in ``before`` was taken by a thread before this is, so no deadlock
        future = self.pool.submit(_when_done, before, step)
        self.in_flight.append(("", future))
        self.steps.append(future)
        while len(self.steps) > self.units_ahead:
            self.steps.popleft().result()
        self._prune(MAX_PENDING)

    def _prune(self, most: int) -> None:
        """Forget what has completed (raising its error) and wait while more than ``most``
        are in flight."""
        while self.in_flight and (self.in_flight[0][1].done() or len(self.in_flight) > most):
            self.in_flight.popleft()[1].result()

    def settle(self, prefix: str) -> None:
        """Wait for the uploads of the paths that start with ``prefix``."""
        for path, future in list(self.in_flight):
            if path and path.startswith(prefix):
                future.result()

    def close(self, raise_errors: bool = True) -> None:
        """Wait for every upload and step submitted, raising the first error (or, without
        ``raise_errors``, leaving the error that ended the scope to be the one raised)."""
        wait([f for _, f in self.in_flight])
        self.pool.shutdown(wait=True)
        if raise_errors:
            self._prune(0)


def _when_done(uploads: list[Future], step) -> None:
    for future in uploads:
        future.result()  # a failed upload: no step (no marker), its error raised
    step()


_ACTIVE: list[Uploads] = []


def active() -> Uploads | None:
    """The open :func:`in_background` scope whose writes this thread's are, if any."""
    scope = _ACTIVE[-1] if _ACTIVE else None
    return scope if scope is not None and scope.defers() else None


def settle(url: str) -> None:
    """Wait for this thread's background uploads under ``url`` (a file, a folder, a glob)."""
    scope = active()
    if scope is not None and scope.in_flight:
        path = url.split("://", 1)[-1]
        cut = min((i for i in map(path.find, "*?[") if i >= 0), default=len(path))
        scope.settle(path[:cut])  # a glob: what comes before its first wildcard


@contextmanager
def in_background(threads: int = UPLOAD_THREADS, units_ahead: int = UNITS_AHEAD):
    """The scope of :class:`Uploads`: left only when every upload in it is complete, also when
    a unit fails: the units finished before it keep their outputs and markers (a resumed run
    does not redo them), and what the failed unit had written whole is whole but unmarked."""
    scope = Uploads(threads, units_ahead)
    _ACTIVE.append(scope)
    try:
        yield scope
    except BaseException:
        scope.close(raise_errors=False)
        raise
    else:
        scope.close()
    finally:
        _ACTIVE.remove(scope)
