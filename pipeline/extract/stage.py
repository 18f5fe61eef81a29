"""The extract stage: one unit per WARC or WAT file, into ``pairs/NAME.parquet`` and
``docs/NAME.parquet`` (schemas in :mod:`vlcurate.schemas.extract`), each written under a
temporary name and renamed when whole; the runner (:mod:`vlcurate.pipeline.stage`) marks the
file done, resumes and writes ``stats.json``. A WAT file gives pairs only: its
``docs/NAME.parquet`` is written empty (as for a WARC file without a page), and ``stats.json``
counts the WAT inputs in ``wat_files``."""

import gc
import hashlib
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.extract import wat
from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.extract.records import docs_table, extract_warc
from vlcurate.pipeline.stage import Stage, Unit, read_marker, run_unit
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import DOC_SCHEMA, PAIR_SCHEMA, SCHEMA_VERSION

STAGE = "extract"


def shard_name(warc_url: str) -> str:
    """A deterministic output name for an input file: its stem plus a hash of the full URL.
    A WAT keeps ``.wat`` in its stem (``X.warc.wat.gz`` -> ``X.wat-HASH``), so it never reads
    as the WARC file of the same name."""
    name = re.sub(r"(\.warc)?\.wat(\.gz)?$", ".wat", warc_url.rsplit("/", 1)[-1], flags=re.I)
    stem = re.sub(r"\.warc(\.gz|\.zst|\.lz4)?$|\.gz$", "", name)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:100]
    return f"{stem}-{hashlib.md5(warc_url.encode()).hexdigest()[:8]}"


@dataclass
class ExtractStage(Stage):
    inputs: list[str]
    output: str
    config: ExtractConfig = field(default_factory=lambda: ExtractConfig())

    name = STAGE
    folders = ("pairs", "docs")

    def settings(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self.config)}

    def units(self) -> list[Unit]:
        return [Unit(shard_name(path), path) for path in self.inputs]

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        stats = StageStats(STAGE)
        pairs_url = storage.join(self.output, "pairs", f"{unit.name}.parquet")
        docs_url = storage.join(self.output, "docs", f"{unit.name}.parquet")
        is_wat = wat.is_wat(unit.input)
        if is_wat:  # pairs only: a WAT holds no page text
            pages = ((pairs, None) for pairs in wat.extract_wat(unit.input, self.config, stats))
        else:
            pages = extract_warc(unit.input, self.config, stats)
        with (
            _rarer_collections(),
            storage.parquet_writer(pairs_url, PAIR_SCHEMA) as pairs_out,
            storage.parquet_writer(docs_url, DOC_SCHEMA) as docs_out,
        ):
            pair_rows, doc_rows = [], []
            for n, (pairs, doc) in enumerate(pages, 1):
                pair_rows.extend(pairs)
                if doc is not None:
                    doc_rows.append(doc)
                if n % self.config.rows_per_group == 0:
                    _flush(pairs_out, docs_out, pair_rows, doc_rows)
            _flush(pairs_out, docs_out, pair_rows, doc_rows)
        stats.extra["pairs"] += stats.tally("images").kept
        stats.extra["docs"] += 0 if is_wat else stats.main.kept
        return stats

    def finish(self, stats: StageStats) -> dict:
        wat_files = sum(map(wat.is_wat, self.inputs))
        fields = {
            "schema_version": SCHEMA_VERSION,
            "inputs": len(self.inputs),
            "wat_files": wat_files,
        }
        if wat_files:  # says so where stats.json is read: WAT inputs add to "kept", not "docs"
            fields["wat_note"] = f"{wat_files} WAT files: pairs only, no documents"
        return {**fields, "config": asdict(self.config)}


def extract_file_to(warc_url: str, output: str, config: ExtractConfig | None = None) -> dict:
    """Extract one WARC or WAT file into ``output`` (skipped when done); return its stats."""
    stage = ExtractStage([warc_url], output, config or ExtractConfig())
    (unit,) = stage.units()
    return (read_marker(stage, unit) or run_unit(stage, unit))["stats"]


@contextmanager
def _rarer_collections(young: int = 50_000):
    """Run the cyclic collector less often while a file is read: each page leaves a few dozen
    young containers (rows, dicts) that live until the next row group, so the default
    threshold (700) walks them again and again; 50,000 saves about 3% of the stage's CPU."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _flush(pairs_out, docs_out, pair_rows: list[dict], doc_rows: list[dict]) -> None:
    if pair_rows:
        pairs_out.write_table(pa.Table.from_pylist(pair_rows, schema=PAIR_SCHEMA))
        pair_rows.clear()
    if doc_rows:
        docs_out.write_table(docs_table(doc_rows))
        doc_rows.clear()


def summary_text(stats: dict, output: str) -> str:
    """What a finished extract says: files, pages, pairs, and every reason."""
    files = stats["files"]
    lines = [
        f"extract: {stats['inputs']} input files ({files['kept']} read, "
        f"{sum(files['dropped'].values())} failed, {stats['units_resumed']} already done) "
        f"-> {output}",
        f"  response records in: {stats['in']:>8}",
        f"  HTML pages kept:     {stats['kept']:>8}   -> docs/  ({stats.get('docs', 0)} documents)",
        f"  image-text pairs:    {stats.get('pairs', 0):>8}   -> pairs/ "
        f"(of {stats['images']['in']} image elements)",
    ]
    if stats.get("wat_files"):
        lines[2] += f" ({stats['wat_files']} WAT files: pairs only, no documents)"
    for title, dropped in (
        ("records dropped", stats["dropped"]),
        ("files failed", files["dropped"]),
        ("images not paired", stats["images"]["dropped"]),
    ):
        if dropped:
            lines.append(f"  {title}:")
            lines.extend(
                f"    {reason:<24} {n:>8}"
                for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1])
            )
    if stats.get("files_damaged"):
        lines.append(f"  damaged files (read up to the damage): {stats['files_damaged']}")
    lines.append(
        f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped "
        f"{sum(stats['dropped'].values())}  (stats.json)"
    )
    return "\n".join(lines)


def sample_text(output, n: int = 5) -> str:
    """A few extracted pairs and the start of one document, to see what the job produced."""
    pairs = storage.read_table(storage.join(str(output), "pairs"), columns=["caption", "url"])
    docs = storage.read_table(storage.join(str(output), "docs"), columns=["page_url", "nodes"])
    pairs, docs = pairs.to_pylist(), docs.to_pylist()
    lines = [f"\nsample pairs ({len(pairs)} in {storage.join(str(output), 'pairs')}):"]
    step = max(1, len(pairs) // n)
    lines += [f"  {p['caption'][:50]!r:54} {p['url'][:70]}" for p in pairs[::step][:n]]
    if not docs:  # WAT inputs only
        return "\n".join(lines)
    doc = max(docs, key=lambda d: sum(node["type"] == "image" for node in d["nodes"]))
    lines.append(f"sample document ({doc['page_url']}, first nodes of {len(doc['nodes'])}):")
    for node in doc["nodes"][:8]:
        shown = node["text"] if node["type"] == "text" else f"<image {node['url']}>"
        lines.append(f"  [{node['type']}] {shown[:90]}")
    return "\n".join(lines)
