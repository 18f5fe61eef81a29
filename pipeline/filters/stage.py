"""The filter stage: the extract stage's pairs -> candidates, by a recipe's caption and URL
rules, then exact deduplication.

One unit per input pairs file (one per extracted WARC): its rows go through the rules
(:func:`vlcurate.pipeline.filters.apply.annotate`) into ``OUTPUT/_annotated/NAME.parquet``,
every row with its ``drop_reason`` (null: kept by every rule), and the runner marks the file
done. After the units, the corpus-wide pass (``deduplicate``, given by the job: Spark's shuffle
over every annotated file, :mod:`vlcurate.pipeline.filters.dedup`) marks the duplicates and
writes ``OUTPUT/pairs/`` (the candidates; schema in :mod:`vlcurate.schemas.filter`) and, when
asked, ``OUTPUT/dropped/``; :meth:`FilterStage.finish` moves the duplicates from kept to
dropped in the merged stats. A killed run redoes only the unmarked files, then the dedup;
another recipe rebuilds the whole output (the rules are cheap to rerun).

Every input file is checked before any work: a file that is not parquet, or lacks a pair
column or has it with another type, stops the run with :class:`InputError` naming both.
"""

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.filters.apply import ANNOTATED_SCHEMA, Rules, annotate_batches
from vlcurate.pipeline.filters.dedup import RULES, Dedup
from vlcurate.pipeline.filters.metaclip import DRAW_RULE, find_balance
from vlcurate.pipeline.stage import Stage, Unit
from vlcurate.pipeline.stats import StageStats, Tally
from vlcurate.pipeline.storage import InputError
from vlcurate.schemas.extract import PAIR_SCHEMA
from vlcurate.schemas.filter import (
    DUPLICATE_UID,
    DUPLICATE_URL,
    METACLIP_SAMPLED_OUT,
    SCHEMA_VERSION,
)

STAGE = "filter"
ANNOTATED = "_annotated"  # the units' outputs: every input row with its drop_reason
PAIRS = "pairs"  # the candidates (and the extract stage's folder of pairs)
DROPPED = "dropped"
BATCH_ROWS = 10_000  # rows per annotate call (Spark's maxRecordsPerBatch)
_STRINGS = (pa.string(), pa.large_string())

# (annotated files, dedup settings, output folder) -> rows per drop_reason (None: kept), or
# (those counts, facts for stats.json: MetaCLIP's draw)
Deduplicate = Callable[[list[str], Dedup, str], dict | tuple[dict, dict]]


def pairs_files(url: str) -> list[str]:
    """The parquet files of ``url``: the extract stage's output folder, its ``pairs/`` folder
    or one parquet file; sorted, without hidden files (``.``, ``_``) and temporaries."""
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        raise InputError(f"input not found: {url}")
    unstrip = fs.unstrip_protocol if "://" in url else str
    if not fs.isdir(path):
        return [unstrip(path)]
    if fs.isdir(posixpath.join(path, PAIRS)):
        path = posixpath.join(path, PAIRS)
    found = fs.glob(posixpath.join(path, "*.parquet"))
    return sorted(unstrip(p) for p in found if not posixpath.basename(p).startswith((".", "_")))


def check_pairs_file(url: str) -> None:
    """Raise :class:`InputError`, naming the file and the column, unless ``url`` is a parquet
    file with every column of the pair schema, each of its type (other columns are ignored)."""
    try:
        with fsspec.open(url, "rb") as f:
            schema = pq.read_schema(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{url}: not a parquet file ({e})") from None
    for wanted in PAIR_SCHEMA:
        if wanted.name not in schema.names:
            raise InputError(
                f"{url}: no column {wanted.name!r} (a pairs file has "
                f"{', '.join(PAIR_SCHEMA.names)})"
            )
        found = schema.field(wanted.name).type
        if found != wanted.type and not {found, wanted.type} <= set(_STRINGS):
            raise InputError(f"{url}: column {wanted.name!r} is {found}, not {wanted.type}")


def read_pairs(url: str, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The pair columns of a checked pairs file, in batches, with the pair schema's types."""
    with fsspec.open(url, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_rows, columns=PAIR_SCHEMA.names):
            pairs = list(zip(batch.schema, PAIR_SCHEMA, strict=True))
            if any(found.type != wanted.type for found, wanted in pairs):
                batch = batch.cast(pa.schema([w.with_nullable(f.nullable) for f, w in pairs]))
            yield batch


def unit_name(url: str) -> str:
    return posixpath.basename(url).removesuffix(".parquet")


def count_reasons(reasons: pa.Array, tally: Tally) -> None:
    for item in pc.value_counts(reasons).to_pylist():
        if item["values"] is None:
            tally.keep(item["counts"])
        else:
            tally.drop(item["values"], item["counts"])


def add_duplicates(main: Tally, counts: dict) -> None:
    """Take the dedup pass's counts (rows per drop_reason over every annotated file) into the
    units' merged tally: the duplicates (and the rows MetaCLIP's draw left out) move from kept
    to dropped; the rest must agree."""
    counts = dict(counts)
    corpus_wide = (DUPLICATE_UID, DUPLICATE_URL, METACLIP_SAMPLED_OUT)
    duplicates = {r: counts.pop(r, 0) for r in corpus_wide}
    rules = {r: n for r, n in counts.items() if r is not None}
    if counts.get(None, 0) + sum(duplicates.values()) != main.kept or rules != main.dropped:
        raise RuntimeError(
            f"the annotated files ({counts}, {duplicates}) disagree with the units' done "
            f"markers (kept {main.kept}, dropped {dict(main.dropped)}): delete the output"
        )
    main.kept -= sum(duplicates.values())
    main.dropped.update({r: n for r, n in duplicates.items() if n})


@dataclass
class FilterStage(Stage):
    """``inputs``: pairs files (:func:`pairs_files`); ``rules`` and ``dedup``: a recipe's
    (``Recipe.rules``, ``Recipe.dedup``); ``deduplicate``: the corpus-wide pass."""

    inputs: list[str]
    output: str
    rules: Rules
    dedup: Dedup
    deduplicate: Deduplicate = field(repr=False)
    source: str = ""  # the recipe's source, for stats.json

    name = STAGE
    folders = (ANNOTATED,)
    rebuild_on_change = True

    def settings(self) -> dict:
        rules = [[f.name, asdict(f)] for f in self.rules.filters]
        return {"schema_version": SCHEMA_VERSION, "recipe": self.rules.ident, "rules": rules}

    def units(self) -> list[Unit]:
        for url in self.inputs:
            check_pairs_file(url)
        return [Unit(unit_name(url), url) for url in self.inputs]

    def annotated(self, name: str) -> str:
        return storage.join(self.output, ANNOTATED, f"{name}.parquet")

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        stats = StageStats(STAGE)
        with storage.parquet_writer(self.annotated(unit.name), ANNOTATED_SCHEMA) as out:
            for batch in annotate_batches(read_pairs(unit.input), self.rules):
                out.write_batch(batch)
                count_reasons(batch.column("drop_reason"), stats.main)
        return stats

    def finish(self, stats: StageStats) -> dict:
        annotated = [self.annotated(unit_name(url)) for url in self.inputs]
        found = self.deduplicate(annotated, self.dedup, self.output)
        counts, facts = found if isinstance(found, tuple) else (found, {})
        add_duplicates(stats.main, counts)
        filters = self.rules.filters
        return {
            **facts,
            "schema_version": SCHEMA_VERSION,
            "recipe": self.rules.ident,
            "recipe_source": self.source,
            "rule_order": [f.name for f in filters]
            + list(RULES)
            + ([DRAW_RULE] if find_balance(filters) else []),
            "rules": {f.name: asdict(f) for f in filters},
            "dedup": asdict(self.dedup),
        }


def format_summary(stats: dict, output: str) -> str:
    """What ``curate filter`` prints: the funnel and every drop reason."""
    lines = [
        f"filter ({stats['recipe']}): {stats['in']} pairs in -> {stats['kept']} candidates "
        f"({100 * stats['kept'] / max(stats['in'], 1):.1f}%) -> {output}",
    ]
    lines += [
        f"  {reason:<28} {n:>9}"
        for reason, n in sorted(stats["dropped"].items(), key=lambda kv: -kv[1])
    ]
    if stats.get("units_resumed"):
        lines.append(f"  input files done before (resumed): {stats['units_resumed']}")
    dropped = sum(stats["dropped"].values())
    lines.append(f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped {dropped}")
    return "\n".join(lines)
