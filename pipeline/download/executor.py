"""The download stage's executor: img2dataset's own distributor, wrapped in the executor shape
(``run(stage, units) -> markers``) of :mod:`vlcurate.pipeline.executors`.

It runs one img2dataset call for all the units given (img2dataset's ``incremental`` mode skips
the shards whose ``_stats.json`` exists), then yields one done marker per unit through
:func:`vlcurate.pipeline.stage.run_units`: the stage's ``check`` refuses a shard img2dataset
did not finish, and its ``process`` only reads the finished shard's sidecar.

With the ``multiprocessing`` distributor, img2dataset runs in a forked child that leads a
process group of its own; every process img2dataset starts (its pool's workers, which it
spawns and replaces every 5 shards, and its logger) joins that group. A watchdog thread in the
child kills the whole group within :data:`WATCH_SECONDS` of this process's death, even by
SIGKILL, so no worker goes on writing shards into the output after it; when this process is
interrupted, it kills the group itself. With ``pyspark``, img2dataset runs in this process on
the active Spark session, whose executors Spark owns (in local mode they end with the driver).
"""

import os
import signal
import threading
import time
from multiprocessing import get_context

from vlcurate.pipeline.download.config import DownloadConfig
from vlcurate.pipeline.download.shards import SHARD_INCOMPLETE, remove_shard
from vlcurate.pipeline.stage import Unit, run_units

WATCH_SECONDS = 0.2
THREADS_PER_CORE = 64


class DownloadFailed(RuntimeError):
    """img2dataset itself failed (its error is printed above): no shard was counted."""


class Img2DatasetExecutor:
    """Runs :class:`~vlcurate.pipeline.download.stage.DownloadStage`'s units, and no other
    stage's: it needs the stage's URL list and config."""

    def run(self, stage, units: list[Unit]) -> list[dict]:
        for unit in units:  # a _stats.json cut short would pass for done in img2dataset's eyes
            if stage.check(unit) == SHARD_INCOMPLETE:
                remove_shard(stage.output, unit.name)
        arguments = img2dataset_arguments(
            stage.url_list, stage.output, stage.urls.carry, stage.config
        )
        if stage.config.distributor == "multiprocessing":
            run_in_own_group(download, arguments, stage.config.max_image_area)
        else:
            download(arguments, stage.config.max_image_area)
        return list(run_units(stage, units))


def img2dataset_arguments(
    url_list: str, output: str, carry: list[str], config: DownloadConfig
) -> dict:
    """``img2dataset.download``'s keyword arguments for the stage's URL list and settings."""
    return {
        "url_list": url_list,
        "input_format": "parquet",
        "url_col": "url",
        "caption_col": "caption",
        "save_additional_columns": carry,
        "output_folder": output,
        "output_format": "webdataset",
        "incremental_mode": "incremental",
        "image_size": config.image_size,
        "resize_mode": config.resize_mode,
        "resize_only_if_bigger": config.resize_only_if_bigger,
        "processes_count": config.processes or os.cpu_count() or 1,
        "thread_count": config.threads or THREADS_PER_CORE,
        "number_sample_per_shard": config.samples_per_shard,
        "timeout": config.timeout,
        "retries": config.retries,
        "encode_quality": config.encode_quality,
        "min_image_size": config.min_image_size,
        "max_image_area": config.max_image_area,
        "max_aspect_ratio": config.max_aspect_ratio,
        "distributor": config.distributor,
        "disallowed_header_directives": config.robots_directives,
        "user_agent_token": config.user_agent_token,
        "enable_wandb": False,
    }


def download(arguments: dict, max_image_area: int) -> None:
    """One img2dataset call. OpenCV decodes the images; its own pixel cap (read from the
    environment by every worker) stops a decompression bomb before memory is allocated."""
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(max_image_area)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download as img2dataset_download

    img2dataset_download(**arguments)


def run_in_own_group(target, *args) -> None:
    """``target(*args)`` in a forked child leading a process group that dies with this process.
    Forked, not spawned: a spawned child would import img2dataset (and torch) once more."""
    child = get_context("fork").Process(target=_lead_group, args=(os.getpid(), target, args))
    child.start()
    try:
        _set_group(child.pid)  # here too, so that the group exists once start() returns
        child.join()
    except BaseException:
        _kill_group(child.pid)
        child.join()
        raise
    if child.exitcode != 0:
        _kill_group(child.pid)  # what the child left running
        raise DownloadFailed(f"img2dataset ended with exit code {child.exitcode}")


def _set_group(pid: int) -> None:
    try:
        os.setpgid(pid, pid)
    except (ProcessLookupError, PermissionError):
        pass  # the child got there first, or is already gone


def _lead_group(parent: int, target, args) -> None:
    _set_group(0)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    target(*args)


def _watch(parent: int) -> None:
    """Kill this process group once ``parent`` is gone (this process is then adopted)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os.killpg(0, signal.SIGKILL)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
