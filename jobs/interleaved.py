"""The interleaved road's own steps in `curate run` (a recipe with a ``docs:`` section): its
filter is `curate docs filter` (with the documents' image list), its select `curate docs
assign`."""

from pathlib import Path

from vlcurate.jobs import docs as docs_job
from vlcurate.jobs.flags import layered
from vlcurate.pipeline.docs.config import ShardConfig
from vlcurate.pipeline.docs.filter_stage import IMAGE_LIST


def docs_filter(road, flags: dict):
    """The interleaved road's filter: `curate docs filter` (which also writes the documents'
    image list, the download stage's input)."""
    args = (road.folder("extract"), road.recipe, road.folder("filter"), road.master)
    return lambda: docs_job.filter_docs(*args, road.progress)


def assign(road, flags: dict):
    """The interleaved road's select: `curate docs assign`."""
    folders = [road.folder(s) for s in ("filter", "download", "score", "select")]
    device, sharding = flags.get("device", "cpu"), layered(ShardConfig, None, flags)
    more = (road.recipe, device, road.report, road.progress, sharding)
    return lambda: docs_job.assign_docs(*folders, *more)


def images(road) -> str:
    """The documents' image URLs: the download stage's input on the interleaved road."""
    return str(Path(road.folder("filter")) / IMAGE_LIST)
