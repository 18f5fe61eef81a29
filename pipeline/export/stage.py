"""The export stage on the stage contract (:mod:`vlcurate.pipeline.stage`): a select stage's
final output -> a release, one metadata parquet per final shard, in LAION's columns
(:mod:`vlcurate.schemas.export`).

Its units are the final shards the manifest lists (:mod:`vlcurate.pipeline.export.inputs`
checks the input is a whole final output before any work); :meth:`ExportStage.process` reads a
shard's parquet sidecar (no tar is opened) and writes ``RELEASE/NNNNN.parquet`` under a
temporary name, renamed when whole; the runner marks it done, so a killed export resumes and
never leaves a half-written file. The settings (format, schema version, a digest of the input's
manifest) are in every done marker: exporting another selection into the same folder is refused.
"""

from dataclasses import dataclass, field

from vlcurate.pipeline import storage
from vlcurate.pipeline.export import inputs
from vlcurate.pipeline.export.config import ExportConfig
from vlcurate.pipeline.export.laion import laion_table
from vlcurate.pipeline.stage import OutputError, Stage, Unit, run_stage
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas import export as schema

STAGE = "export"


@dataclass
class ExportStage(Stage):
    input: str
    output: str
    config: ExportConfig = field(default_factory=ExportConfig)

    name = STAGE
    folders = ("",)  # the release's files sit at the output's top

    def __post_init__(self):
        self.input, self.output = storage.absolute(self.input), storage.absolute(self.output)
        if self.input.rstrip("/") == self.output.rstrip("/"):
            raise OutputError(f"{STAGE}: the output {self.output} is the input folder")
        self._found: dict | None = None

    def found(self) -> dict:
        """The input's manifest, its shards' parquet paths and the CLIP column, checked."""
        if self._found is None:
            manifest = inputs.read_manifest(self.input)
            paths = inputs.shard_paths(self.input, manifest)
            columns = set()
            for name, path in paths.items():
                schema = storage.parquet_metadata(path).schema.to_arrow_schema()
                clip = inputs.clip_column(schema.names, name)
                columns |= {clip} if clip else set()
            if len(columns) > 1:
                raise inputs.FinalInputError(f"{STAGE}: final shards differ in CLIP column")
            samples = {s["name"]: s.get("samples") for s in manifest["shards"]}
            self._found = {
                "manifest": manifest,
                "paths": paths,
                "samples": samples,
                "clip": next(iter(columns), None),
                "digest": inputs.manifest_digest(self.input),
            }
        return self._found

    def settings(self) -> dict:
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "format": self.config.format,
            "input_digest": self.found()["digest"],
        }

    def units(self) -> list[Unit]:
        return [Unit(name, path) for name, path in self.found()["paths"].items()]

    def about(self) -> dict:
        """What the release's schema metadata says of the scores: models and recipe."""
        manifest = self.found()["manifest"]
        models, recipe = manifest.get("models") or {}, manifest.get("recipe") or {}
        return {
            "clip_model": models.get("model"),
            "clip_pretrained": models.get("pretrained"),
            "clip_column": self.found()["clip"],
            "nsfw": models.get("nsfw"),
            "watermark": models.get("watermark"),
            "recipe": f"{recipe.get('name')}/{recipe.get('version')}",
        }

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        found = self.found()
        samples = inputs.read_shard(unit.input, unit.name, found["samples"].get(unit.name))
        stats = StageStats(STAGE)
        table = laion_table(samples, found["clip"], stats.main, self.about())
        target = storage.join(self.output, f"{unit.name}.parquet")
        with storage.parquet_writer(target, table.schema) as writer:
            writer.write_table(table)
        return stats

    def finish(self, stats: StageStats) -> dict:
        return {
            "version": schema.SCHEMA_VERSION,
            "format": self.config.format,
            "input": self.input,
            "shards": len(self.found()["paths"]),
            **{k: v for k, v in self.about().items() if k != "clip_column"},
        }


def export(input: str, output: str, config: ExportConfig | None = None, progress=True) -> dict:
    """Run the stage in this process; returns its stats (also in ``OUTPUT/stats.json``)."""
    from vlcurate.pipeline.executors import LocalExecutor

    stage = ExportStage(input, output, config or ExportConfig())
    return run_stage(stage, LocalExecutor(progress=progress))
