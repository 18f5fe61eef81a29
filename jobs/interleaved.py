"""The interleaved road's own steps in `curate run` (a recipe with a ``docs:`` section): its
filter is `curate docs filter` then `docs images`, its select `curate docs assign`."""

from pathlib import Path

from vlcurate.jobs import docs as docs_job
from vlcurate.jobs.flags import layered
from vlcurate.pipeline.docs.config import ShardConfig


def docs_filter(road, flags: dict):
    """The interleaved road's filter: `curate docs filter`, then `docs images`."""
    args = (road.folder("extract"), road.recipe, road.folder("filter"), road.master)

    def run() -> dict:
        stats = docs_job.filter_docs(*args, road.progress)
        docs_job.image_list(road.folder("filter"), images(road))
        return stats

    return run


def assign(road, flags: dict):
    """The interleaved road's select: `curate docs assign`."""
    folders = [road.folder(s) for s in ("filter", "download", "score", "select")]
    device, sharding = flags.get("device", "cpu"), layered(ShardConfig, None, flags)
    more = (road.recipe, device, road.report, road.progress, sharding)
    return lambda: docs_job.assign_docs(*folders, *more)


def images(road) -> str:
    """The documents' image URLs: the download stage's input on the interleaved road."""
    return str(Path(road.folder("filter")) / "images.parquet")
