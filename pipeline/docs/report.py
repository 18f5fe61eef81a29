"""``report.html`` for the interleaved road, in the select stage's format
(:func:`vlcurate.pipeline.report.write_report`): the funnel of every stage (documents, and the
images of the kept documents), histograms of each image's matched similarity and NSFW score with the
recipe's cuts, and thumbnails of kept images (with the sentence each was assigned to) and of
each drop reason."""

import pyarrow as pa

from vlcurate.pipeline.docs.assign import AssignConfig
from vlcurate.pipeline.report import write_report
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.score.clip import column_name
from vlcurate.pipeline.select.report import models


def image_table(image_rows: list[dict], images: dict, model: str) -> pa.Table:
    """One row per image node: ``uid`` (``doc_id:image_index``), ``caption`` (the sentence it
    was assigned to, else its URL), ``reason``, the matched similarity under the CLIP column's
    name, and what the score stage knew (``nsfw_p``, ``face_count``, ``width``, ``height``)."""
    rows = []
    for r in image_rows:
        known = images.get(r["doc_id"], {}).get(r["image_index"]) or {}
        rows.append(
            {
                "uid": f"{r['doc_id']}:{r['image_index']}",
                "doc_id": r["doc_id"],
                "image_index": r["image_index"],
                "caption": r["sentence"] or known.get("url"),
                "reason": r["reason"],
                column_name(model): r["matched_sim"],
                "nsfw_p": known.get("nsfw_p"),
                "face_count": known.get("face_count"),
                "width": known.get("width"),
                "height": known.get("height"),
            }
        )
    return pa.Table.from_pylist(rows)


def write_docs_report(
    path: str,
    *,
    image_rows: list[dict],
    images: dict,
    settings: dict,
    config: AssignConfig,
    recipe,
    funnel: list[tuple[str, dict]],
) -> str:
    table = image_table(image_rows, images, settings["model"])
    clip = column_name(settings["model"])
    thresholds = {clip: [(f"min {config.min_sim}", config.min_sim)]}
    if config.nsfw_max is not None:
        thresholds["nsfw_p"] = [(f"max {config.nsfw_max}", config.nsfw_max)]

    def pictures(rows: list[dict]) -> dict[str, bytes]:
        wanted: dict[str, dict[int, str]] = {}
        for row in rows:
            known = images.get(row["doc_id"], {}).get(row["image_index"])
            if known:
                wanted.setdefault(known["shard"], {})[known["index"]] = row["uid"]
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
