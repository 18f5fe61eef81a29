"""``report.html`` for the interleaved road, in the select stage's format
(:func:`vlcurate.pipeline.report.write_report`): the funnel of every stage (documents, and the
images of the kept documents), histograms of each image's matched similarity and NSFW score with the
recipe's cuts, and thumbnails of kept images (with the sentence each was assigned to) and of
each drop reason."""

import json
import os

import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.report import write_report
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.score.clip import column_name
from vlcurate.pipeline.select.report import models


def image_table(image_rows: list[dict], model: str) -> pa.Table:
    """One row per image node: ``uid`` (``doc_id:image_index``), ``caption`` (the sentence it
    was assigned to, else its URL), ``reason``, the matched similarity under the CLIP column's
    name, and what the score stage knew (``nsfw_p``, ``face_count``, ``width``, ``height``)."""
    rows = []
    for r in image_rows:
        rows.append(
            {
                "uid": f"{r['doc_id']}:{r['image_index']}",
                "doc_id": r["doc_id"],
                "image_index": r["image_index"],
                "caption": r["sentence"] or r.get("url"),
                "reason": r["reason"],
                column_name(model): r["matched_sim"],
                "nsfw_p": r.get("nsfw_p"),
                "face_count": r.get("face_count"),
                "width": r.get("width"),
                "height": r.get("height"),
                "shard": r.get("shard"),
                "index": r.get("index"),
            }
        )
    return pa.Table.from_pylist(rows)


def funnel_of(stage, summary: dict) -> list[tuple[str, dict]]:
    """Every stage's stats.json up to ``stage`` (a DocsAssignStage): extract (beside the docs
    folder, as `curate run` lays it out), docs filter, download, score, and assign's
    ``summary``."""
    base = stage.docs.rstrip("/")
    stages = [
        ("extract", os.path.join(os.path.dirname(base), "extract"), "WARC response record"),
        ("docs filter", base, "document"),
        ("download", stage.shards, "image URL"),
        ("score", stage.scores, "downloaded image"),
    ]
    found = []
    for name, folder, unit in stages:
        path = storage.join(folder, "stats.json")  # s3:// too
        if storage.exists(path):
            found.append((name, {**json.loads(storage.read_text(path)), "unit": unit}))
    return found + [("assign", {**summary, "unit": "document"})]


def write_assign_report(path: str, stage, summary: dict, rows: list[dict], settings, recipe):
    """``report.html`` of a finished :class:`DocsAssignStage` run."""
    funnel = funnel_of(stage, summary)
    return write_docs_report(
        path, image_rows=rows, settings=settings, config=stage.config, recipe=recipe, funnel=funnel
    )


def write_docs_report(
    path: str,
    *,
    image_rows: list[dict],
    settings: dict,
    config: AssignConfig,
    recipe,
    funnel: list[tuple[str, dict]],
) -> str:
    table = image_table(image_rows, settings["model"])
    clip = column_name(settings["model"])
    thresholds = {clip: [(f"min {config.min_sim}", config.min_sim)]}
    if config.nsfw_max is not None:
        thresholds["nsfw_p"] = [(f"max {config.nsfw_max}", config.nsfw_max)]

    def pictures(rows: list[dict]) -> dict[str, bytes]:
        wanted: dict[str, dict[int, str]] = {}
        for row in rows:
            if row.get("shard") is not None:
                wanted.setdefault(row["shard"], {})[row["index"]] = row["uid"]
        return shard_io.images_at(wanted)

    notes = [
        f"Images of the documents the docs filter kept, one row each; a kept image's caption "
        f"is the sentence it was assigned to (mmc4's bipartite matching), its "
        f"{clip} the similarity of that match."
    ]
    write_report(
        path,
        title=f"{recipe.name} recipe ({recipe.ident}): interleaved documents",
        funnel=funnel,
        table=table,
        thresholds=thresholds,
        images=pictures,
        models=models(settings),
        notes=notes,
    )
    return path
