"""The stages `curate run` chains, each called in this process with typed settings: the
recipe's section, then the flags given in ``--STAGE-args`` (parsed by that stage's own command
line, so every flag of `curate STAGE` works there), its inputs the folders before it."""

from dataclasses import dataclass
from functools import partial

from vlcurate.jobs import docs as docs_job
from vlcurate.jobs import download as download_job
from vlcurate.jobs import extract as extract_job
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs import safety_flags
from vlcurate.jobs import score as score_job
from vlcurate.jobs import selection as select_job
from vlcurate.jobs.flags import given_flags, layered
from vlcurate.jobs.steps import assign, docs_filter, images
from vlcurate.pipeline import storage
from vlcurate.pipeline.download import candidates
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import DownloadConfig, DownloadStage
from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.recipe import Recipe
from vlcurate.pipeline.score.stage import ScoreConfig
from vlcurate.pipeline.select.report import funnel_of
from vlcurate.pipeline.select.stage import select
from vlcurate.pipeline.stage import run_stage

STAGES = ("extract", "filter", "download", "score", "select")
JOBS = {"extract": extract_job, "filter": filter_job, "download": download_job}
JOBS |= {"score": score_job, "select": select_job, "docs": docs_job}
PAIR_FOLDERS = {"extract": "extract", "filter": "candidates", "download": "shards"}
PAIR_FOLDERS |= {"score": "scores", "select": "final"}
DOC_FOLDERS = {**PAIR_FOLDERS, "filter": "docs", "select": "interleaved"}


@dataclass
class Road:
    recipe: Recipe
    out: str  # a folder or URL (s3://...)
    inputs: list[str]
    master: str
    allow_private_network: list[str] | None
    extra: dict[str, str]  # stage -> the --STAGE-args text
    progress: bool = True

    @property
    def folders(self) -> dict[str, str]:
        return DOC_FOLDERS if self.recipe.docs is not None else PAIR_FOLDERS

    def folder(self, stage: str) -> str:
        return storage.join(str(self.out), self.folders[stage])

    def plan(self, stages: list[str]) -> list:
        """One call per stage, every setting checked now, before any stage runs."""
        docs = self.recipe.docs is not None
        steps = {"extract": self.extract, "download": self.download, "score": self.score}
        if docs:
            steps.update(filter=partial(docs_filter, self), select=partial(assign, self))
        else:
            steps.update(filter=self.filter, select=self.select)
        flags = {s: given_flags(JOBS, s, self.extra.get(s, ""), docs) for s in stages}
        return [(stage, steps[stage](flags[stage])) for stage in stages]

    def extract(self, flags: dict):
        config = layered(ExtractConfig, None, flags)
        inputs = storage.expand_inputs(self.inputs, flags.get("prefix"))
        folder = self.folder("extract")
        return lambda: extract_job.run(inputs, folder, config, self.master, self.progress)

    def filter(self, flags: dict):
        args = (self.folder("extract"), self.recipe, self.folder("filter"), self.master)
        more = (flags.get("dropped", False), flags.get("partitions"), self.progress)
        return lambda: filter_job.run(*args, *more)

    def download(self, flags: dict):
        config = layered(DownloadConfig, self.recipe.download, flags)
        allow = flags.get("allow_private_network", self.allow_private_network)
        networks = safety_flags.networks(allow)
        safety = layered(SafetyConfig, None, {**flags, "allow_networks": networks})
        source = images(self) if self.recipe.docs is not None else self.folder("filter")
        output = self.folder("download")

        def run() -> dict:
            stage = DownloadStage(candidates.read_candidates(source), output, config, safety)
            return run_stage(stage, download_job.executor(config, self.master, self.progress))

        return run

    def score(self, flags: dict):
        config = layered(ScoreConfig, self.recipe.score, flags)
        distributor = flags.get("distributor", "local")
        conf = score_job.spark_conf(flags.get("conf", []))
        shards, output = self.folder("download"), self.folder("score")
        more = (distributor, self.master, conf, self.progress)
        return lambda: score_job.run(score_job.list_shards(shards), output, config, *more)

    def select(self, flags: dict):
        shards, scores = self.folder("download"), self.folder("score")
        semantic = None
        if flags.get("dedup_distributor") == "pyspark":
            semantic = select_job.spark_semantic(self.master, flags.get("clusters"))
        more = dict(semantic=semantic, progress=self.progress, report=self.report)
        folders = (shards, scores, self.recipe, self.folder("select"))
        return lambda: select(*folders, funnel=funnel_of(shards), **more)

    @property
    def report(self) -> str:
        return storage.join(str(self.out), "report.html")
