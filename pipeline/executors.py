"""Where a stage's units run, kept apart from the stages (as datatrove keeps ``executor/`` apart
from its steps). An executor has one method, ``run(stage, units) -> markers``, and calls
:func:`vlcurate.pipeline.stage.run_units` wherever the work is done.

- :class:`LocalExecutor`: this process, or one process per device (every GPU of the machine,
  say), each taking every n-th unit. A worker that dies (an OOM kill) fails the run at once,
  naming it, and the workers die with the parent.
- ``vlcurate.jobs.spark.SparkExecutor``: one Spark task per unit (the library never imports
  pyspark, so it lives with the jobs).
"""

import ctypes
import signal
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context

from vlcurate.pipeline import storage
from vlcurate.pipeline.stage import DONE, Stage, Unit, run_units

PR_SET_PDEATHSIG = 1


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its units."""


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="unit", disable=not enabled, file=sys.stderr)


def _run_share(stage: Stage, units: list[Unit], device: str) -> list[dict]:
    return list(run_units(stage, units, device))


@dataclass
class LocalExecutor:
    """``devices``: one entry per process (``["cpu"]``: this process only)."""

    devices: list[str] = field(default_factory=lambda: ["cpu"])
    progress: bool = True

    def run(self, stage: Stage, units: list[Unit]) -> list[dict]:
        if len(self.devices) == 1:
            bar = _progress(len(units), stage.name, self.progress)
            markers = []
            for marker in run_units(stage, units, self.devices[0]):
                markers.append(marker)
                bar.update()
            bar.close()
            return markers
        return self._run_processes(stage, units)

    def _run_processes(self, stage: Stage, units: list[Unit]) -> list[dict]:
        n = len(self.devices)
        shares = [(units[i::n], device) for i, device in enumerate(self.devices)]
        shares = [(share, device) for share, device in shares if share]
        bar = _progress(len(units), f"{stage.name} x{len(shares)}", self.progress)
        done_folder = storage.join(stage.output, DONE)
        with ProcessPoolExecutor(
            len(shares), mp_context=get_context("spawn"), initializer=die_with_parent
        ) as pool:
            futures = {pool.submit(_run_share, stage, s, d): d for s, d in shares}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                bar.update(max(0, _count_markers(done_folder, units) - bar.n))
                for future in finished:
                    error = future.exception()
                    if error is not None:
                        _stop(pool)
                        raise _failure(futures[future], error) from error
            bar.update(len(units) - bar.n)
            bar.close()
            return [m for future in futures for m in future.result()]


def _count_markers(folder: str, units: list[Unit]) -> int:
    wanted = {u.name for u in units}
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(folder)
        names = [p.rsplit("/", 1)[-1].removesuffix(".json") for p in fs.glob(path + "/*.json")]
    except OSError:
        return 0
    return sum(name in wanted for name in names)


def _stop(pool: ProcessPoolExecutor) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _failure(device: str, error: BaseException) -> Exception:
    if isinstance(error, BrokenProcessPool):
        return WorkerDied(
            f"a worker process (device {device}) died without finishing its units (killed, "
            "out of memory?); the units it finished are kept: rerun to do the rest"
        )
    return error
