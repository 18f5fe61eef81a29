"""The score stage over img2dataset shards: one unit per input shard ``NNNNN.tar`` (unit
``NNNNN``), into ``scores/``, ``img_emb/``, ``text_emb/`` and ``metadata/`` (see
:mod:`~vlcurate.pipeline.score.writer`).

Each shard is checked (:func:`~vlcurate.pipeline.score.inputs.check_shard`: a partial one is
refused by name, counted, and the others go on), a few shards ahead of the scoring
(:mod:`~vlcurate.pipeline.score.checks`). The shards a process is given stream through one
DataLoader (:func:`~vlcurate.pipeline.score.stream.score_stream`), with the models
loaded once per process (:func:`~vlcurate.pipeline.score.models.scorers_for`). With
``watermark=ocr`` each shard takes a second pass, OCR in the workers on the images that earned
it (all decoded images, or those at or above ``watermark_min_clip``): OCR costs about 0.2 s per
image on a CPU core, a hundred times CLIP's share. The runner (:mod:`vlcurate.pipeline.stage`)
writes the done markers, resumes, and writes ``stats.json``.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from vlcurate.pipeline import storage
from vlcurate.pipeline.devices import process_devices, resolve_device
from vlcurate.pipeline.score.clip import column_name
from vlcurate.pipeline.score.config import ScoreConfig, face_detector_of, settings
from vlcurate.pipeline.score.inputs import shard_name
from vlcurate.pipeline.score.models import Scorers, scorers_for
from vlcurate.pipeline.score.stream import score_stream
from vlcurate.pipeline.score.writer import FOLDERS, STAGE
from vlcurate.pipeline.stage import Stage, Unit, run_stage
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.score import SCHEMA_VERSION as SCORES_VERSION

__all__ = ["STAGE", "ScoreConfig", "ScoreStage", "score_shards", "shard_name"]


@dataclass
class ScoreStage(Stage):
    shards: list[str]  # paths or URLs of NNNNN.tar, their sidecars beside them
    output: str
    config: ScoreConfig

    name = STAGE
    folders = FOLDERS

    def settings(self) -> dict:
        return {"schema_version": SCORES_VERSION, **settings(self.config)}

    def units(self) -> list[Unit]:
        return [Unit(shard_name(path), path) for path in self.shards]

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        """Load the models once here, so that bad model settings fail before any shard is read
        or any worker started: on the one device this process will score on (and keep them),
        or, when other processes will score, on the CPU (and let them go)."""
        if not todo:
            return
        devices = process_devices(self.config.device, self.config.processes)
        if len(devices) == 1:
            scorers_for(self.config, devices[0])
        else:
            Scorers(self.config, "cpu")

    def process_many(self, units: list[Unit], device: str = "cpu") -> Iterator[StageStats | str]:
        if not units:
            return
        scorers = scorers_for(self.config, resolve_device(device))
        yield from score_stream([u.input for u in units], self.output, self.config, scorers)

    def process(self, unit: Unit, device: str = "cpu") -> StageStats | str:
        return next(self.process_many([unit], device))

    def finish(self, stats: StageStats) -> dict:
        config = self.config
        return {
            "model": config.model,
            "pretrained": config.pretrained,
            "column": column_name(config.model),
            "version": SCORES_VERSION,
            "shards": stats.tally("units").kept,
            "nsfw": config.nsfw,
            "watermark": config.watermark,
            "watermark_min_clip": config.watermark_min_clip,
            "face_detector": face_detector_of(config),
        }


def local_executor(config: ScoreConfig, progress: bool = True):
    """This machine: one process per GPU (or ``processes`` of them), or this process alone."""
    from vlcurate.pipeline.executors import LocalExecutor

    return LocalExecutor(
        devices=process_devices(config.device, config.processes), progress=progress
    )


def score_shards(
    shards: list[str], output: str, config: ScoreConfig, progress: bool = True, executor=None
) -> dict:
    """Score every shard not already done (on this machine, unless ``executor`` says
    otherwise); returns the summary also written to ``OUTPUT/stats.json``."""
    stage = ScoreStage(list(shards), storage.absolute(output), config)
    return run_stage(stage, executor or local_executor(config, progress))
