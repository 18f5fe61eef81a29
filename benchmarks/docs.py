"""Interleaved documents: documents per second per core through the docs filters, and the
image-to-sentence assignment per document for given sizes (CLIP excluded), each beside a
baseline in the same run.

    .venv/bin/python benchmarks/docs.py                  # about a minute
    .venv/bin/python benchmarks/docs.py --docs 5000 --json docs.json

(a) Filters: the documents of the bundled Common Crawl WARC files (``tests/data/warc``,
    extracted once with ``vlcurate.pipeline.extract.stage.extract_warc``), repeated to ``--docs``
    documents, through ``vlcurate.pipeline.docs.filters.filter_documents`` with the OBELICS
    defaults in one process (so the rate is per core). Language id is timed separately (the
    fastText model dominates when it runs on long pages): rows "all rules" and "no language rule".
    Baseline: reading the same documents' words only (``str.split`` over every text node), the
    floor any word-based rule pays.
(b) Assignment: ``vlcurate.pipeline.docs.assign.assign`` (``linear_sum_assignment`` on images x
    sentences, the 0.15 cut, leftovers to their best sentence) on random similarity matrices of
    ``--sizes``; baseline: greedy (each image to its best sentence, no matching), the cheapest
    rule that gives every image a sentence.
"""

import argparse
import sys
import time

import numpy as np
from common import SOURCES, load_line, write_json

from vlcurate.pipeline.docs.assign import assign
from vlcurate.pipeline.docs.config import DocFilterConfig
from vlcurate.pipeline.docs.filters import filter_documents
from vlcurate.pipeline.extract.stage import ExtractConfig, docs_table, extract_warc
from vlcurate.pipeline.stats import StageStats


def real_documents() -> list[dict]:
    rows = []
    for warc in sorted(SOURCES.glob("*.warc*")):
        stats = StageStats("extract")
        rows += [doc for _, doc in extract_warc(str(warc), ExtractConfig(), stats) if doc]
    return docs_table(rows).to_pylist()  # nodes as dicts, as read from docs/ parquet


def rate(fn, docs: list[dict]) -> tuple[float, float]:
    start = time.process_time()
    wall = time.perf_counter()
    fn(docs)
    return len(docs) / (time.process_time() - start), time.perf_counter() - wall


def words_only(docs: list[dict]) -> None:
    for doc in docs:
        for node in doc["nodes"]:
            if node["type"] == "text" and node["text"]:
                node["text"].split()


def filter_rows(n_docs: int) -> list[dict]:
    base = real_documents()
    docs = (base * (n_docs // len(base) + 1))[:n_docs]
    rows = []
    for name, fn in [
        ("baseline: words only", words_only),
        (
            "filters, no language rule",
            lambda d: filter_documents(d, DocFilterConfig(languages=[], min_lang_score=0)),
        ),
        ("filters, all rules (OBELICS)", lambda d: filter_documents(d, DocFilterConfig())),
    ]:
        per_core, wall = rate(fn, docs)
        rows.append((name, len(docs), per_core, wall))
    return rows


def assign_rows(sizes: list[tuple[int, int]], repeat: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    assign(rng.uniform(0, 0.4, (3, 4)), 0.15)  # warm-up: scipy's first call loads its code
    rows = []
    for images, sentences in sizes:
        sims = [rng.uniform(0, 0.4, (images, sentences)).astype(np.float32) for _ in range(repeat)]
        t = time.perf_counter()
        for s in sims:
            assign(s, 0.15)
        ours = (time.perf_counter() - t) / repeat
        t = time.perf_counter()
        for s in sims:
            best = s.argmax(axis=1)
            _ = [(i, int(j)) for i, j in enumerate(best) if s[i, j] >= 0.15]
        greedy = (time.perf_counter() - t) / repeat
        rows.append((images, sentences, ours * 1000, greedy * 1000, 1 / ours))
    return rows


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--docs", type=int, default=2000, help="documents for (a)")
    parser.add_argument(
        "--sizes",
        default="5x20,15x40,30x200,100x1000",
        help="images x sentences for (b), comma separated",
    )
    parser.add_argument("--repeat", type=int, default=20, help="matrices per size in (b)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    filters = filter_rows(args.docs)
    print("(a) docs filters, one process")
    print("| rows | documents | docs/s per core (CPU time) | wall s |\n|---|---:|---:|---:|")
    for name, n, per_core, wall in filters:
        print(f"| {name} | {n} | {per_core:,.0f} | {wall:.2f} |")
    assigned = assign_rows(sizes, args.repeat)
    print("\n(b) assignment per document (CLIP excluded)")
    print("| images x sentences | ours ms | greedy ms | ours docs/s |\n|---|---:|---:|---:|")
    for images, sentences, ours, greedy, per_s in assigned:
        print(f"| {images} x {sentences} | {ours:.3f} | {greedy:.3f} | {per_s:,.0f} |")
    print("\n" + load_line())
    if args.json:
        write_json(args.json, args, {"filters": filters, "assign": assigned})
    return 0


if __name__ == "__main__":
    sys.exit(main())
