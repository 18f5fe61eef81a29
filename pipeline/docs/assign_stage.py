"""``curate docs assign``: the filtered documents' images placed among their sentences (mmc4)
and written as interleaved shards, on the stage contract (:mod:`vlcurate.pipeline.stage`).

Its units are runs of ``docs_per_shard`` input documents, in the order of the docs files (a
run never spans two files), each written as one shard ``OUTPUT/NNNNN.tar`` (the kept documents
of the run, one sample each, possibly none) and ``OUTPUT/images/NNNNN.parquet`` (one row per
image node of the run's documents: kept, or dropped with its reason, with what the score stage
knew of it). So a unit needs no other unit: the only corpus-wide fact, how often each page URL
occurs (mmc4's ``could_have_url_duplicate``), is counted before the units
(:meth:`DocsAssignStage.prepare`). The runner marks each unit done in ``OUTPUT/_done/`` with
the settings' digest (the ``assign:`` section, ``docs_per_shard`` and the score stage's CLIP);
a rerun skips the shards done, and a rerun with other settings rebuilds the whole output (as
select does: this is the interleaved road's decision step). ``OUTPUT/stats.json``: documents in
== kept + dropped by reason, the same for images, and ``shards``.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.config import AssignConfig, ShardConfig
from vlcurate.pipeline.docs.filter_stage import docs_files
from vlcurate.pipeline.docs.interleave import STAGE, assign_documents, load_images, write_shard
from vlcurate.pipeline.executors import LocalExecutor
from vlcurate.pipeline.recipe import Recipe, RecipeError
from vlcurate.pipeline.stage import Stage, Unit, run_stage
from vlcurate.pipeline.stats import StageStats

ROWS = "#rows="  # a unit's input: PATH#rows=START:STOP
IMAGE_ROWS = pa.schema(
    [
        ("doc_id", pa.string()),
        ("image_index", pa.int32()),
        ("reason", pa.string()),
        ("matched_sim", pa.float64()),
        ("sentence", pa.string()),
        ("url", pa.string()),
        ("shard", pa.string()),
        ("index", pa.int64()),
        ("nsfw_p", pa.float64()),
        ("face_count", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
    ]
)
KNOWN = ("url", "shard", "index", "nsfw_p", "face_count", "width", "height")


def unit_input(path: str, start: int, stop: int) -> str:
    return f"{path}{ROWS}{start}:{stop}"


def parse_input(text: str) -> tuple[str, int, int]:
    path, rows = text.rsplit(ROWS, 1)
    start, stop = rows.split(":")
    return path, int(start), int(stop)


@dataclass
class DocsAssignStage(Stage):
    """``docs``: the docs filter's output; ``shards``/``scores``: the documents' images as
    download and score wrote them; ``clip``: the score stage's ``model`` and ``pretrained``
    (the sentences are encoded with the same CLIP)."""

    docs: str
    shards: str
    scores: str
    output: str
    config: AssignConfig
    clip: dict
    sharding: ShardConfig = field(default_factory=ShardConfig)
    recipe: str = ""
    page_urls: Counter = field(default_factory=Counter, init=False)

    name = STAGE
    folders: ClassVar[tuple[str, ...]] = ("", "images")
    rebuild_on_change = True

    def settings(self) -> dict:
        return {
            **asdict(self.config),
            "docs_per_shard": self.sharding.docs_per_shard,
            "model": self.clip["model"],
            "pretrained": self.clip["pretrained"],
        }

    def units(self) -> list[Unit]:
        per_shard, units = self.sharding.docs_per_shard, []
        for path in docs_files(self.docs):
            n = storage.parquet_metadata(path).num_rows
            for start in range(0, n, per_shard):
                stop = min(start + per_shard, n)
                units.append(Unit(f"{len(units):05d}", unit_input(path, start, stop)))
        return units

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        if todo:
            files = sorted({parse_input(unit.input)[0] for unit in units})
            pages = [storage.read_table(f, columns=["page_url"])[0] for f in files]
            urls = [u for column in pages for u in column.to_pylist()]
            self.page_urls = Counter(url for url in urls if url)

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        return next(iter(self.process_many([unit], device)))

    def process_many(self, units: list[Unit], device: str = "cpu"):
        """The CLIP and the images' index are loaded once for all ``units``."""
        from vlcurate.pipeline.score.clip import ClipScorer

        clip = self.clip
        scorer = ClipScorer(model=clip["model"], pretrained=clip["pretrained"], device=device)
        images = load_images(self.shards, self.scores)
        table, table_path = None, None
        for unit in units:
            path, start, stop = parse_input(unit.input)
            if path != table_path:
                table, table_path = storage.read_table(path), path
            docs = table.slice(start, stop - start).to_pylist()
            yield self._write(unit, docs, images, scorer)

    def _write(self, unit: Unit, docs: list[dict], images: dict, scorer) -> StageStats:
        kept, stats, rows = assign_documents(docs, images, scorer, self.config, self.page_urls)
        for row in rows:
            known = images.get(row["doc_id"], {}).get(row["image_index"]) or {}
            row.update({key: known.get(key) for key in KNOWN})
        sidecar = storage.join(self.output, "images", f"{unit.name}.parquet")
        with storage.atomic_open(sidecar, "wb") as f:
            pq.write_table(pa.Table.from_pylist(rows, schema=IMAGE_ROWS), f)
        write_shard(storage.join(self.output, f"{unit.name}.tar"), kept, images)
        stats.extra["shards"] += 1
        return stats

    def finish(self, stats: StageStats) -> dict:
        return {"recipe": self.recipe, **self.clip, "shards": stats.extra["shards"]}


def image_rows(output: str) -> list[dict]:
    """Every unit's image rows (``OUTPUT/images/*.parquet``), in unit order."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(storage.join(output, "images"))
    files = sorted(fs.glob(path.rstrip("/") + "/*.parquet"))
    return [row for f in files for row in pq.read_table(f, filesystem=fs).to_pylist()]


def run_assign(
    docs: str,
    shards: str,
    scores: str,
    output: str,
    recipe: Recipe,
    device: str = "cpu",
    report: str | None = "",
    progress: bool = True,
    sharding: ShardConfig | None = None,
) -> dict:
    """``curate docs assign``: run the stage on this machine (sentences encoded on ``device``)
    and write ``report.html`` (at ``report``; ``""``: ``OUTPUT/report.html``; None: none);
    returns the summary (``stats.json``, plus ``report``: its path or None). Raises
    RecipeError for a recipe without ``assign:``, and InputError when the shards were not all
    scored with one CLIP."""
    from vlcurate.pipeline.docs.report import write_assign_report
    from vlcurate.pipeline.select.inputs import score_settings, shard_names

    if recipe.assign is None:
        raise RecipeError(f"recipe {recipe.ident} has no assign: section (try mmc4)")
    shards, scores = storage.absolute(shards), storage.absolute(scores)
    settings = score_settings(scores, shard_names(shards))
    clip = {key: settings[key] for key in ("model", "pretrained")}
    stage = DocsAssignStage(
        storage.absolute(docs),
        shards,
        scores,
        storage.absolute(output),
        recipe.assign,
        clip,
        sharding or ShardConfig(),
        recipe.ident,
    )
    summary = run_stage(stage, LocalExecutor([device], progress=progress))
    if report is not None:
        report = report or storage.join(stage.output, "report.html")
        rows = image_rows(stage.output)
        write_assign_report(report, stage, summary, rows, settings, recipe)
    return {**summary, "report": report}


def describe(stats: dict, output: str) -> str:
    """The lines ``curate docs assign`` prints."""
    t = stats["images"] if "images" in stats else {"in": 0, "kept": 0, "dropped": {}}
    resumed = f" ({stats['units_resumed']} done before)" if stats["units_resumed"] else ""
    lines = [f"  report: {stats['report']}"] if stats.get("report") else []
    return "\n".join(
        lines
        + [
            f"docs assign ({stats['recipe']}): {stats['in']} documents in -> {stats['kept']} "
            f"kept in {stats['shards']} shards -> {output}{resumed}",
            "  documents dropped: " + ", ".join(f"{r} {n}" for r, n in stats["dropped"].items()),
            f"  images: {t['in']} in -> {t['kept']} kept; dropped "
            + ", ".join(f"{r} {n}" for r, n in sorted(t["dropped"].items())),
        ]
    )
