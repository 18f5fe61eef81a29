"""Pieces of `curate run` beside the Road: the interleaved road's own steps (a recipe with a
``docs:`` section: its filter is `curate docs filter`, its select `curate docs assign`) and what
each stage prints when it is done."""

from vlcurate.jobs import docs as docs_job
from vlcurate.jobs import download as download_job
from vlcurate.jobs import score as score_job
from vlcurate.jobs import selection as select_job
from vlcurate.jobs.flags import layered
from vlcurate.pipeline import storage
from vlcurate.pipeline.docs import assign_stage, filter_stage
from vlcurate.pipeline.docs.config import ShardConfig
from vlcurate.pipeline.docs.filter_stage import IMAGE_LIST
from vlcurate.pipeline.extract.stage import summary_text
from vlcurate.pipeline.filters.stage import format_summary as filter_summary


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
    return storage.join(road.folder("filter"), IMAGE_LIST)


def describe(stage: str, stats: dict, folder: str) -> str:
    """What `curate docs filter` (the road's filter) or `docs assign` (its select) prints."""
    show = filter_stage.describe if stage == "filter" else assign_stage.describe
    return show(stats, folder)


def described(road, stage: str, stats: dict) -> str:
    """What `curate STAGE` prints when it is done."""
    folder = road.folder(stage)
    if road.recipe.docs is not None and stage in ("filter", "select"):
        return describe(stage, stats, folder)
    if stage == "score":
        return score_job.format_summary(stats)
    if stage == "select":
        return select_job.format_summary(stats, folder, road.report)
    summaries = {"extract": summary_text, "filter": filter_summary}
    return summaries.get(stage, download_job.format_summary)(stats, folder)
