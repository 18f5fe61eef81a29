"""``curate docs filter``: the extract stage's documents through a recipe's ``docs:`` rules
(:mod:`vlcurate.pipeline.docs.filters`), on the stage contract (:mod:`vlcurate.pipeline.stage`).

Its units are the extract stage's docs files, one parquet file each. Before them, the
corpus-wide pass (:meth:`DocsFilterStage.prepare`) finds the image URLs seen more than
``max_url_count`` times across every document: a relational step (explode the image nodes,
group by URL) that the caller supplies as a function, so Spark counts on a cluster while the
library never imports it. Each unit then writes ``OUTPUT/docs/NAME.parquet`` (the kept
documents, same schema, failing nodes removed) under a temporary name; the runner marks it
done in ``OUTPUT/_done/NAME.json`` with the settings' digest and writes ``OUTPUT/stats.json``:
documents in == kept + dropped by reason, and the same identity for text and image nodes. A
rerun skips the files done, and refuses an output folder filtered with other settings.

``curate docs images`` (:func:`write_image_list`) then lists the kept documents' image nodes
as download candidates that carry ``doc_id`` and ``image_index``.
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.config import DocFilterConfig
from vlcurate.pipeline.docs.filters import STAGE, filter_documents
from vlcurate.pipeline.stage import Stage, Unit
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import DOC_SCHEMA, SCHEMA_VERSION

# (docs files, max_url_count) -> the image URLs seen more than max_url_count times in them
FrequentUrls = Callable[[list[str], int], Iterable[str]]
IMAGE_LIST = "images.parquet"  # beside docs/: the download stage's input


def docs_files(input_url: str) -> list[str]:
    """The parquet files of a docs folder (or of the ``docs/`` folder inside it), sorted."""
    base = storage.absolute(input_url)
    inner = storage.join(base, "docs")
    folder = inner if storage.exists(inner) else base
    fs, path = fsspec.core.url_to_fs(folder)
    found = sorted(fs.glob(path.rstrip("/") + "/*.parquet"))
    local = fs.protocol in ("file", ("file", "local"))
    return [p if local else fs.unstrip_protocol(p) for p in found]


def file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet")


@dataclass
class DocsFilterStage(Stage):
    """``input``: the extract stage's output (or its ``docs/``); ``frequent_urls``: the
    corpus-wide count (see :data:`FrequentUrls`); ``recipe``: its name, for ``stats.json``."""

    input: str
    output: str
    config: DocFilterConfig
    frequent_urls: FrequentUrls
    recipe: str = ""
    banned: frozenset = field(default=frozenset(), init=False)

    name = STAGE
    folders = ("docs",)

    def settings(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self.config)}

    def units(self) -> list[Unit]:
        files = docs_files(self.input)
        if not files:
            raise storage.InputError(f"no docs parquet files in {self.input}")
        return [Unit(file_name(path), path) for path in files]

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        files = [unit.input for unit in units]
        self.banned = frozenset(self.frequent_urls(files, self.config.max_url_count))

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        stats = StageStats(STAGE)
        rows = storage.read_table(unit.input).to_pylist()
        kept, _ = filter_documents(rows, self.config, self.banned, stats)
        with storage.atomic_open(storage.join(self.output, "docs", f"{unit.name}.parquet")) as f:
            pq.write_table(pa.Table.from_pylist(kept, schema=DOC_SCHEMA), f)
        return stats

    def finish(self, stats: StageStats) -> dict:
        """After the units, the kept documents' image nodes as one download list,
        ``OUTPUT/images.parquet`` (what `curate docs images` writes)."""
        write_image_list(self.output, storage.join(self.output, IMAGE_LIST))
        return {"recipe": self.recipe, "frequent_image_urls": len(self.banned)}


def describe(stats: dict, output: str) -> str:
    """The lines ``curate docs filter`` prints."""
    resumed = f" ({stats['units_resumed']} files done before)" if stats["units_resumed"] else ""
    lines = [
        f"docs filter ({stats['recipe']}): {stats['in']} documents in -> {stats['kept']} "
        f"kept -> {output}/docs{resumed}"
    ]
    lines += [f"  {r:<28} {n:>9}" for r, n in sorted(stats["dropped"].items(), key=lambda x: -x[1])]
    for tally in ("text_nodes", "image_nodes"):
        t = stats.get(tally, {"in": 0, "kept": 0, "dropped": {}})
        lines.append(
            f"  {tally}: {t['in']} in -> {t['kept']} kept; dropped "
            + ", ".join(f"{r} {n}" for r, n in sorted(t["dropped"].items()))
        )
    lines.append(
        f"  image URLs seen more than the limit in the corpus: {stats['frequent_image_urls']}"
    )
    return "\n".join(lines)


def read_docs(folder: str) -> list[dict]:
    """Every document of a docs folder (or of the ``docs/`` folder inside it), in file order."""
    files = docs_files(folder)
    if not files:
        raise storage.InputError(f"no docs parquet files in {folder}")
    return pa.concat_tables([storage.read_table(f) for f in files]).to_pylist()


def write_image_list(docs: str, output: str) -> str:
    """``curate docs images``: every image node of the documents in ``docs`` as a download
    candidate, into the parquet file ``output`` (written whole, then renamed); returns the
    line it prints."""
    from vlcurate.pipeline.docs.interleave import image_table

    table = image_table(read_docs(docs))
    with storage.atomic_open(storage.absolute(output), "wb") as f:
        pq.write_table(table, f)
    n_docs = len(set(table.column("doc_id").to_pylist()))
    return f"docs images: {table.num_rows} image URLs of {n_docs} documents -> {output}"
