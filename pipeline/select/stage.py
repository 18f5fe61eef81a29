"""The select stage on the stage contract (:mod:`vlcurate.pipeline.stage`): a recipe's
thresholds, near-duplicate removal, final shards, manifest, DataComp-style uid list and report.

1. :meth:`SelectStage.units` joins every shard's scores with its own fields
   (:mod:`vlcurate.pipeline.select.inputs`, checking the two folders match) and computes the
   whole selection (:mod:`vlcurate.pipeline.select.plan`) in memory: its units are the final
   shards. Nothing is written under the output until the runner has checked the plan;
2. :meth:`SelectStage.process` writes one final shard (:mod:`vlcurate.pipeline.select.writer`);
   the runner marks it done, and resumes a killed run from the shards without a marker;
3. :meth:`SelectStage.finish` adds the drops to the stats and writes ``selection.parquet``,
   ``uids.npy``, ``manifest.json`` (:mod:`vlcurate.pipeline.select.outputs`) and
   ``report.html``.

The selection is cheap and deterministic, so the stage is ``rebuild_on_change``: a rerun with
another recipe section, other score settings or other inputs (their done markers' digest)
rebuilds the whole output, exactly as a fresh run into a new folder would.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import Recipe
from vlcurate.pipeline.select import inputs, outputs, references, writer
from vlcurate.pipeline.select.plan import Selection, select_samples
from vlcurate.pipeline.stage import Stage, Unit, read_marker, run_stage
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas import select as reasons

STAGE = "select"


@dataclass
class ShardStats(StageStats):
    """A final shard's stats and what the manifest lists of it (kept in its done marker under
    ``_shard``, a field that merging skips)."""

    shard: dict = field(default_factory=dict)

    def to_dict(self, **fields) -> dict:
        return super().to_dict(_shard=self.shard, **fields)


@dataclass
class SelectStage(Stage):
    """``report``: where report.html goes ("": in ``output``; None: no report); ``funnel``: the
    earlier stages' stats for it; ``semantic``: see
    :func:`vlcurate.pipeline.select.plan.remove_duplicates`."""

    shards: str
    scores: str
    recipe: Recipe
    output: str
    funnel: list = field(default_factory=list)
    semantic: Callable | None = None
    report: str | None = ""

    name = STAGE
    folders = ("",)  # the final shards sit at the output's top
    rebuild_on_change = True

    def __post_init__(self):
        self.shards, self.scores = storage.absolute(self.shards), storage.absolute(self.scores)
        self.output = storage.absolute(self.output)
        self._inputs: dict | None = None
        self._selection: Selection | None = None

    def __getstate__(self) -> dict:  # what a worker needs: the plan, not the Spark dedup
        return {**self.__dict__, "semantic": None}

    def inputs(self) -> dict:
        """The input shards' names, the score settings and a digest of their done markers."""
        if self._inputs is None:
            for folder in (self.shards, self.scores):
                if self.output.rstrip("/") == folder.rstrip("/"):
                    raise inputs.InputError(f"the output {self.output} is an input folder")
            names = inputs.shard_names(self.shards)
            self._inputs = {
                "names": names,
                "scores": inputs.score_settings(self.scores, names),
                "digest": inputs.inputs_digest(self.shards, self.scores, names),
                "framing": inputs.download_settings(self.shards, names),
            }
            outside = self.outside_images()
            if outside:  # checked here, before any work; their files change the selection
                self._inputs["references_digest"] = "+".join(
                    references.digest(paths, field) for field, paths in outside.items()
                )
        return self._inputs

    def outside_images(self) -> dict[str, list[str]]:
        """The reference and eval paths the recipe compares the pool with, by recipe key."""
        config, found = self.recipe.select, {}
        if config.image_filter:
            found["select.image_filter.reference"] = list(config.image_filter.reference)
        if config.decontaminate:
            found["select.decontaminate.eval"] = list(config.decontaminate.eval)
        return found

    def settings(self) -> dict:
        found = self.inputs()
        return {
            "schema_version": reasons.SCHEMA_VERSION,
            "select": asdict(self.recipe.select),
            "scores": found["scores"],
            "inputs_digest": found["digest"],
            **({"references_digest": found["references_digest"]} if self.outside_images() else {}),
        }

    def selection(self) -> Selection:
        if self._selection is None:
            found = self.inputs()
            table = inputs.load_table(self.shards, self.scores, found["names"])
            config = self.recipe.select
            self._selection = select_samples(
                table, self.scores, found["scores"], config, self.semantic, found["framing"]
            )
        return self._selection

    def units(self) -> list[Unit]:
        return [Unit(name, name) for name in self.selection().shard_names()]

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        outputs.remove_other_shards(self.output, [u.name for u in units])

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        rows = self.selection().rows_of(unit.name)
        faces = self.recipe.select.faces
        shard = writer.write_shard(unit.name, rows, self.shards, self.output, faces)
        stats = ShardStats(STAGE, shard=shard)
        stats.main.keep(len(rows))
        stats.extra["faces_blurred"] += shard["faces_blurred"]
        return stats

    def finish(self, stats: StageStats) -> dict:
        selection = self.selection()
        kept = len(selection.kept_rows)
        if stats.main.kept != kept:
            raise AssertionError(f"the final shards hold {stats.main.kept} of {kept} kept samples")
        for reason in selection.table["reason"].drop_null().to_pylist():
            stats.main.drop(reason)
        shards = [read_marker(self, u)["stats"]["_shard"] for u in self.units()]
        fields = {
            "faces_blurred": stats.extra["faces_blurred"],
            "shards": len(shards),
            "version": reasons.SCHEMA_VERSION,
            "recipe": self.recipe.ident,
            **selection.facts,
        }
        counts = stats.main.to_dict()
        settings = self.inputs()["scores"]
        if self.report is not None:
            from vlcurate.pipeline.select.report import write_selection_report

            path = self.report or storage.join(self.output, "report.html")
            summary = {**counts, "shards": len(shards)}
            write_selection_report(
                path, selection, self.recipe, settings, self.funnel, summary, self.shards
            )
        outputs.write_selection(self.output, selection.table)
        where = {"shards": self.shards, "scores": self.scores}
        content = outputs.manifest(self.recipe, settings, counts, selection.facts, shards, where)
        outputs.write_manifest(self.output, content)
        return fields


def select(
    shards: str,
    scores: str,
    recipe: Recipe,
    output: str,
    *,
    funnel: list[tuple[str, dict]] = (),
    semantic: Callable | None = None,
    progress: bool = True,
    report: str | None = "",
) -> dict:
    """Run the stage in this process; returns its stats (also in ``OUTPUT/stats.json``)."""
    from vlcurate.pipeline.executors import LocalExecutor

    stage = SelectStage(shards, scores, recipe, output, list(funnel), semantic, report)
    return run_stage(stage, LocalExecutor(progress=progress))
