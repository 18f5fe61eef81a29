"""Throughput of MetaCLIP matching and balancing, and of CC3M's sentiment rule, in captions per
second per core.

    .venv/bin/python benchmarks/balance.py                    # 200,000 captions, best of 3
    .venv/bin/python benchmarks/balance.py --quick            # smoke run, 50,000 captions, once
    .venv/bin/python benchmarks/balance.py --json out.json

Metadata: the ``builtin`` entries (WordNet lemma names + wordfreq's English words, about 410k),
topped up to ``--entries`` (500,000, MetaCLIP's size) with two-word phrases of wordfreq's most
frequent words. Captions: half the real alt text of ``tests/data/warc/`` (extracted in this
process, repeated), half synthetic: 3 to 16 wordfreq words drawn by frequency, with commas,
full stops and capitals.

Rows, each timed by the wall clock, in one process (one core) unless said:

(a) ``Matcher.match_arrow``: the entry ids of every caption (spacing, lower-casing and the
    compiled n-gram table's pass over ~500k entries), what the ``metaclip_balance`` rule runs
    per batch.
(h) the library it replaced: pyahocorasick's ``Automaton.iter`` over the same spaced batches,
    the (end, id) pairs collected into an array; search only, so a floor of that path.
(b) baseline: a naive search, for every entry, of ``" entry "`` in the spaced caption
    (``str.__contains__``), on the first ``--baseline-rows`` captions.
(c) the floor: spacing and lower-casing only, no search.
(d) ``jobs.balance.entry_counts`` in Spark ``local[2]`` (matching on the executors, explode,
    ``groupBy(entry).count()``, the counts collected), session started and the workers'
    automata built before the clock. Per core: total / 2.
(e) ``MetaclipBalance.draw_batch``: matching again, the keep probability and the per-uid draw.
(f) ``Sentiment.judge`` (``sentiment: {max_polarity: 0.9}``, cc3m's rule): VADER's compound
    score, behind the exact bound that skips captions which cannot pass the threshold.
(g) baseline for (f): VADER's ``polarity_scores`` on every caption (``prefilter: false``, the
    same verdicts), on the first ``--sentiment-baseline-rows`` captions.

Target (issue 20): (a) >= 100,000 captions/s per core.
"""

import argparse
import resource
import sys
import time
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pyarrow as pa
from common import SPARK_CORES, cpu_cell, fastest, load_line, start_spark, target_lines, write_json
from filter import source_pairs

from vlcurate.pipeline.filters.metaclip import MetaclipBalance
from vlcurate.pipeline.filters.metaclip_match import SEPARATOR, Matcher, spacing
from vlcurate.pipeline.filters.metaclip_metadata import builtin_metadata

TARGET = 100_000
BATCH = 10_000  # captions per call, as the filter stage's batches


@dataclass
class Row:
    name: str
    label: str
    rows: int
    seconds: float
    cores: int = 1
    cpu_seconds: float | None = None  # this process's CPU time (not Spark's workers')

    @property
    def per_core(self) -> float:
        return self.rows / self.seconds / self.cores if self.seconds else 0.0


def entries(size: int) -> list[str]:
    import wordfreq

    out = list(builtin_metadata())
    seen = set(out)
    top = wordfreq.top_n_list("en", 2_000)
    for a in top:
        for b in top:
            if len(out) >= size:
                return out
            if f"{a} {b}" not in seen:
                out.append(f"{a} {b}")
    return out


def captions(rows: int, seed: int = 0) -> pa.Array:
    import wordfreq

    rng = np.random.default_rng(seed)
    words = wordfreq.top_n_list("en", 20_000)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    real = source_pairs().column("caption").to_pylist()
    out = []
    for i in range(rows):
        if i % 2:
            out.append(real[(i // 2) % len(real)])
            continue
        picked = [words[j] for j in rng.choice(len(words), rng.integers(3, 17), p=weights)]
        picked[0] = picked[0].capitalize()
        if len(picked) > 5:
            picked[len(picked) // 2] += ","
        out.append(" ".join(picked) + ".")
    return pa.array(out, pa.string())


def timed(name: str, label: str, rows: int, work, cores: int = 1) -> Row:
    start, cpu = time.perf_counter(), time.process_time()
    work()
    cpu = None if cores > 1 else time.process_time() - cpu
    return Row(name, label, rows, time.perf_counter() - start, cores, cpu)


def aho_corasick(entry_list: list[str]):
    """The previous matcher's search: one pyahocorasick automaton over the padded entries."""
    import ahocorasick  # the dev extra: only this row needs it

    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for i, entry in enumerate(entry_list):
        key = entry.strip().lower()
        if key and f" {key} " not in automaton:
            automaton.add_word(f" {key} ", i)
    automaton.make_automaton()
    return lambda spaced: np.fromiter(chain.from_iterable(automaton.iter(spaced)), np.int64)


def naive(entry_list: list[str], texts: list[str]) -> None:
    padded = [f" {e.strip().lower()} " for e in entry_list]
    for text in texts:
        spaced = spacing(text)
        [i for i, e in enumerate(padded) if e in spaced]


def measure_spark(texts: pa.Array, rule: MetaclipBalance, repeat: int) -> Row:
    from vlcurate.jobs.balance import entry_counts

    spark = start_spark()
    table = pa.table({"caption": texts, "drop_reason": pa.nulls(len(texts), pa.string())})
    frame = spark.createDataFrame(table.to_pandas()).repartition(SPARK_CORES).cache()
    frame.count()
    entry_counts(frame, rule)  # once before the clock: every worker builds its table
    try:
        return fastest(
            lambda: timed(
                "d",
                "Spark entry_counts, local[2]",
                len(texts),
                lambda: entry_counts(frame, rule),
                SPARK_CORES,
            ),
            repeat,
        )
    finally:
        spark.stop()


def measure_sentiment(texts: pa.Array, args) -> list[Row]:
    from vlcurate.pipeline.filters.sentiment import Sentiment

    table = pa.table({"caption": texts})
    chunks = [table.slice(i, BATCH) for i in range(0, len(texts), BATCH)]
    rule, every = Sentiment(), Sentiment(prefilter=False)
    rule.setup(), every.setup()  # the lexicon read before the clock
    f = fastest(
        lambda: timed(
            "f",
            "sentiment rule (VADER behind its bound)",
            len(texts),
            lambda: [rule.judge(chunk) for chunk in chunks],
        ),
        args.repeat,
    )
    base = table.slice(0, args.sentiment_baseline_rows)
    g = timed("g", "baseline: VADER on every caption", base.num_rows, lambda: every.judge(base))
    return [f, g]


def measure(args) -> tuple[list[Row], dict]:
    entry_list = entries(args.entries)
    start = time.perf_counter()
    matcher = Matcher(entry_list)
    build_s = time.perf_counter() - start
    texts = captions(args.rows)
    pylist = texts.to_pylist()
    found = matcher.match_arrow(texts)
    info = {
        "entries": len(entry_list),
        "table_build_s": round(build_s, 2),
        "matches_per_caption": round(len(found.values) / len(texts), 2),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    chunks = [texts.slice(i, BATCH) for i in range(0, len(texts), BATCH)]
    a = fastest(
        lambda: timed(
            "a",
            "Matcher.match_arrow (compiled n-grams)",
            len(texts),
            lambda: [matcher.match_arrow(chunk) for chunk in chunks],
        ),
        args.repeat,
    )
    base = pylist[: args.baseline_rows]
    b = timed(
        "b", "baseline: per-entry substring search", len(base), lambda: naive(entry_list, base)
    )
    c = fastest(
        lambda: timed(
            "c", "floor: spacing + lower only", len(texts), lambda: [spacing(t) for t in pylist]
        ),
        args.repeat,
    )
    rule = MetaclipBalance(t=20)
    from vlcurate.pipeline.filters import metaclip_match

    metaclip_match._MATCHERS[(rule.metadata, rule.lowercase)] = matcher  # the ~500k entries
    counts = np.bincount(found.values.to_numpy(), minlength=matcher.size)
    batch = pa.table(
        {
            "caption": texts,
            "uid": pa.array([str(i) for i in range(len(texts))]),
            "drop_reason": pa.nulls(len(texts), pa.string()),
        }
    )
    e = fastest(
        lambda: timed(
            "e",
            "draw_batch (match + probability + draw)",
            len(texts),
            lambda: [rule.draw_batch(b, counts, 20) for b in batch.to_batches(BATCH)],
        ),
        args.repeat,
    )
    search = aho_corasick(entry_list)
    spaced = [
        spacing(SEPARATOR.join(chunk.to_pylist())).replace(SEPARATOR, f" {SEPARATOR} ")
        for chunk in chunks
    ]
    h = fastest(
        lambda: timed(
            "h", "library: pyahocorasick search only", len(texts), lambda: list(map(search, spaced))
        ),
        args.repeat,
    )
    rows = [a, h, b, c, e]
    if not args.no_spark:
        rows.insert(3, measure_spark(texts, rule, args.repeat))
    if not args.no_sentiment:
        rows += measure_sentiment(texts, args)
    return rows, info


def report(rows: list[Row], info: dict) -> tuple[str, list[dict]]:
    head = f"{'row':<46} {'captions':>9} {'seconds':>8} {'cpu s':>7} {'per core':>10}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"({row.name}) {row.label:<42} {row.rows:>9,} {row.seconds:>8.2f} "
            f"{cpu_cell(row.cpu_seconds):>7} "
            f"{row.per_core:>10,.0f}"
        )
    a = next(r for r in rows if r.name == "a")
    checks = [
        {
            "target": "(a) captions/s per core",
            "value": a.per_core,
            "goal": TARGET,
            "met": a.per_core >= TARGET,
        }
    ]
    lines += target_lines(checks, width=30, value_width=10, rule=56)
    by = {r.name: r for r in rows}
    lines += [
        "",
        f"(a) / (b): {a.per_core / by['b'].per_core:,.0f}x the baseline; "
        f"(a) / (h): {a.per_core / by['h'].per_core:.1f}x pyahocorasick's search; "
        f"(a) / (c): {a.per_core / by['c'].per_core:.2f} of the floor"
        + (f"; (f) / (g): {by['f'].per_core / by['g'].per_core:.1f}x" if "f" in by else ""),
        f"entries {info['entries']:,}, table built in {info['table_build_s']} s, "
        f"{info['matches_per_caption']} matches per caption, "
        f"peak RSS {info['peak_rss_mb']:,} MB",
        load_line(),
    ]
    return "\n".join(lines), checks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000, help="captions for (a), (c)-(e)")
    parser.add_argument("--entries", type=int, default=500_000, help="metadata entries")
    parser.add_argument("--baseline-rows", type=int, default=20, help="captions for (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row; fastest")
    parser.add_argument("--no-spark", action="store_true", help="skip (d)")
    parser.add_argument("--no-sentiment", action="store_true", help="skip (f) and (g)")
    parser.add_argument(
        "--sentiment-baseline-rows", type=int, default=20_000, help="captions for (g)"
    )
    parser.add_argument("--quick", action="store_true", help="50,000 captions, one run each")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rows, args.repeat = min(args.rows, 50_000), 1
    rows, info = measure(args)
    text, checks = report(rows, info)
    print(text)
    if args.json:
        sections = {"info": info, "rows": [{**vars(r), "per_core": r.per_core} for r in rows]}
        write_json(args.json, args, {**sections, "targets": checks})
    return 0


if __name__ == "__main__":
    sys.exit(main())
