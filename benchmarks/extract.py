"""Throughput of the extract stage, in HTML pages per second per core.

    make bench                                    # = .venv/bin/python benchmarks/extract.py
    .venv/bin/python benchmarks/extract.py --quick                # smoke run, 20 MiB corpus
    .venv/bin/python benchmarks/extract.py --json bench.json      # also write the results

Corpus: the HTTP 200 text/html response records of ``tests/data/warc/*.warc*`` (records of
the deliberately damaged files that fail to read or end early are skipped; identical bodies are
kept once), repeated round-robin into ``--parts`` gzip-per-record WARC files, as Common Crawl
writes them, until their uncompressed size reaches ``--mb`` MiB. Every copy gets a fresh
WARC-Record-ID, and its HTTP headers are rewritten for a plain body (no Transfer-Encoding, no
Content-Encoding, a correct Content-Length). The corpus is cached under ``benchmarks/_work/`` and
reused while its size, part count and source pages match.

Rows, each timed by the wall clock:

(a) ``vlcurate.pipeline.extract.stage.extract_file_to`` over every part, one after the other, in
this process:
    reading, decoding, parsing and writing parquet. One process is one core.
(b) ``vlcurate.jobs.extract.run`` on the same parts in Spark ``local[2]``. Per core: total / 2.
(c) The baseline a newcomer writes: warcio's ``ArchiveIterator`` plus BeautifulSoup
    (``html.parser``) collecting ``<img>`` tags with alt text (``urljoin``-ed) and
    ``soup.get_text()``, over the first ``--baseline-pages`` pages. It writes nothing.
(a0) (a) on the Python path (``ExtractConfig(compiled=False)``), the same output.
(e) The floor of any extractor that parses, over the same parts: fastwarc reads and gunzips each
    record, its body is decoded as the pipeline decodes it, and lexbor parses it; nothing else.
(d) The parser ceiling: ``LexborHTMLParser(text)`` alone over the first ``--parser-pages`` pages,
    decoded beforehand as the pipeline decodes them.
(g) WAT input (issue 19): ``extract_file_to`` over 4 ``.warc.wat.gz`` files made from the same
    pages (``wat_corpus.py``: per page the request, response and metadata-metadata records, as
    Common Crawl writes them; ``--wat-responses`` responses in all), one process. (g) counts
    every WAT record, (g1) the response-metadata records (the units) of the same run, (g0) is
    the floor: read, gunzip and parse the JSON of every record, nothing else. The first part is
    extracted once, untimed, before the clock (start-up).

Start-up is not timed, for (a) and (b) alike, since a real job pays it once for thousands of
files: the SparkSession is started, (a) runs once and (b) ``WARM_JOBS`` times on a 1 MiB corpus
(lazy imports, Python workers, and the JVM's JIT compiling Spark's job path: closure cleaning,
task (de)serialisation, task metrics), before any clock starts. (b) then times the whole job as
``curate extract`` runs it on that session: planning, scheduling, the tasks, stats.json. (a),
(b) and (d) run ``--repeat`` times and report the fastest run (the machine is shared and noisy);
(c) runs once. Per-job and per-task costs weigh more on small files: the default parts are 50
MiB; ``--mb 4096 --parts 4`` gives Common Crawl's ~1 GiB files.
Targets: (a) >= 0.55x (e) (issue 19), (a) >= 2,500 pages/s per core, (a) >= 10x (c),
(b) >= 1.7x (a), (g) >= 10,000 WAT records/s per core (cc2dataset: about 900).
``--profile`` adds a cProfile of (a) on the first part.
"""

import argparse
import cProfile
import gzip
import hashlib
import io
import itertools
import json
import pstats
import shutil
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import wat_corpus
from common import (
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
from fastwarc.warc import ArchiveIterator, WarcRecordType

from vlcurate.pipeline.extract.payload import decode_html
from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to

MIN_PARTS = 4
WARM_JOBS = 5  # untimed (b) jobs before the clock: the JVM's JIT warms up over several
# Drop these from the copied HTTP headers; Content-Length is written afresh.
DROPPED_HTTP_HEADERS = {b"transfer-encoding", b"content-encoding", b"content-length"}
WARC_DATE = "2024-04-25T00:00:00Z"


@dataclass(frozen=True)
class Page:
    """One source page: its URL, HTTP status line and headers, and its decoded body."""

    url: str
    status_line: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass
class Row:
    """One measured row of the table."""

    name: str
    label: str
    pages: int
    seconds: float
    cores: int = 1
    cpu_seconds: float | None = None  # this process only; None for Spark

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def per_core(self) -> float:
        return self.pages_per_s / self.cores


# --- corpus ------------------------------------------------------------------------------------


def read_source_pages(folder: Path = SOURCES) -> list[Page]:
    """The distinct HTTP 200 text/html pages of the WARC files in ``folder``."""
    pages, seen = [], set()
    for path in sorted(folder.glob("*.warc*")):
        for page in _pages_of(path):
            digest = hashlib.sha1(page.body).digest()
            if digest not in seen:
                seen.add(digest)
                pages.append(page)
    return pages


def _pages_of(path: Path):
    """Yield the readable HTML pages of one file, up to where a damaged file stops reading."""
    with open(path, "rb") as stream:
        records = ArchiveIterator(
            stream, record_types=WarcRecordType.response, parse_http=True, auto_decode="all"
        )
        try:
            for record in records:
                page = _page_of(record)
                if page is not None:
                    yield page
        except Exception:  # the rest of a damaged file cannot be read
            return


def _page_of(record) -> Page | None:
    """A ``Page`` for a complete HTTP 200 text/html record, else ``None``."""
    try:
        http = record.http_headers
        if http is None or http.status_code != 200:
            return None
        if "text/html" not in (http.get("Content-Type") or "").lower():
            return None
        declared = record.content_length
        body = record.reader.read()
        url = record.headers.get("WARC-Target-URI", "").strip().removeprefix("<").removesuffix(">")
    except Exception:
        return None
    if not body or not url or _clipped(http, body, declared):
        return None
    headers = tuple(
        (key, value)
        for key, value in http.items_bytes()
        if key.strip().lower() not in DROPPED_HTTP_HEADERS
    )
    return Page(url, http.status_line_bytes, headers, body)


def _clipped(http, body: bytes, declared: int) -> bool:
    """A plain body shorter than the record says: the file ends inside the record."""
    encoded = http.get("Transfer-Encoding") or http.get("Content-Encoding")
    return not encoded and len(body) < declared


def http_block(page: Page) -> bytes:
    """The HTTP response of ``page`` with a plain body and a correct Content-Length."""
    lines = [page.status_line, *(key + b": " + value for key, value in page.headers)]
    lines.append(b"Content-Length: %d" % len(page.body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + page.body


def warc_record(warc_type: str, block: bytes, headers: dict[str, str]) -> bytes:
    """One WARC/1.0 record with a fresh WARC-Record-ID."""
    fields = {
        "WARC-Type": warc_type,
        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
        "WARC-Date": WARC_DATE,
        **headers,
        "Content-Length": str(len(block)),
    }
    head = "".join(f"{key}: {value}\r\n" for key, value in fields.items())
    return b"WARC/1.0\r\n" + head.encode("utf-8") + b"\r\n" + block + b"\r\n\r\n"


def response_record(page: Page) -> bytes:
    return warc_record(
        "response",
        http_block(page),
        {
            "WARC-Target-URI": page.url,
            "WARC-Identified-Payload-Type": "text/html",
            "Content-Type": "application/http; msgtype=response",
        },
    )


def warcinfo_record(name: str) -> bytes:
    info = b"software: vlcurate benchmarks/extract.py\r\nformat: WARC File Format 1.0\r\n"
    return warc_record(
        "warcinfo", info, {"WARC-Filename": name, "Content-Type": "application/warc-fields"}
    )


def build_corpus(pages: list[Page], key: dict, folder: Path) -> dict:
    """Write ``key["parts"]`` .warc.gz files of ``key["mb"]`` MiB (uncompressed) in all, cycling
    through ``pages``; return the manifest (``key`` plus what was written)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    parts = key["parts"]
    names = [f"part-{i:04d}.warc.gz" for i in range(parts)]
    total = written = 0
    with ExitStack() as stack:
        outputs = [stack.enter_context(open(folder / name, "wb")) for name in names]
        for name, out in zip(names, outputs, strict=True):
            total += _write_gzip_member(out, warcinfo_record(name))
        while total < key["mb"] * 2**20:
            record = response_record(pages[written % len(pages)])
            total += _write_gzip_member(outputs[written % parts], record)
            written += 1
    manifest = {
        **key,
        "files": {name: (folder / name).stat().st_size for name in names},
        "uncompressed_bytes": total,
        "response_records": written,
        "distinct_pages": len(pages),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_gzip_member(out, record: bytes) -> int:
    out.write(gzip.compress(record, compresslevel=6, mtime=0))
    return len(record)


def corpus(mb: int, parts: int) -> tuple[list[str], dict]:
    """The cached corpus for ``mb``, ``parts`` and the current fixtures; built when missing."""
    pages = read_source_pages()
    if not pages:
        raise SystemExit(f"no readable HTML pages in {SOURCES}")
    key = {"mb": mb, "parts": parts, "sources": _fingerprint(pages)}
    folder = WORK / f"corpus-{mb}mb-{parts}parts"
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if not _corpus_intact(folder, manifest, key):
        print(f"building a {mb} MiB corpus in {parts} parts under {folder} ...", file=sys.stderr)
        manifest = build_corpus(pages, key, folder)
    return [str(folder / name) for name in sorted(manifest["files"])], manifest


def _fingerprint(pages: list[Page]) -> str:
    digest = hashlib.sha1()
    for page in pages:
        digest.update(http_block(page))
    return digest.hexdigest()


def _corpus_intact(folder: Path, manifest: dict, key: dict) -> bool:
    """Whether ``folder`` holds the files ``manifest`` lists, built for ``key``."""
    if not manifest.get("files") or any(manifest.get(k) != v for k, v in key.items()):
        return False
    for name, size in manifest["files"].items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


# --- measurements ------------------------------------------------------------------------------


def measure_extract(parts: list[str], compiled: bool = True) -> Row:
    """(a) ``extract_file_to`` over every part, one after the other, in this process; (a0) the
    same on the Python path."""
    output = fresh_dir("out-extract")
    config = ExtractConfig(compiled=compiled)
    wall, cpu = time.perf_counter(), time.process_time()
    pages = sum(extract_file_to(path, output, config)["kept"] for path in parts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(output)
    if compiled:
        return Row("a", "extract_file_to, 1 process", pages, wall, 1, cpu)
    return Row("a0", "the same, Python path (--no-compiled)", pages, wall, 1, cpu)


def measure_floor(parts: list[str]) -> Row:
    """(e) the floor of any extractor that parses: read and gunzip every record, decode its
    body as the pipeline does, and parse it with lexbor, nothing else."""
    from selectolax.lexbor import LexborHTMLParser

    pages = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for path in parts:
        with open(path, "rb") as stream:
            kinds = WarcRecordType.response
            for record in ArchiveIterator(stream, record_types=kinds, parse_http=True):
                body = record.reader.read()
                text, codec, _ = decode_html(body, record.http_charset, keep_utf8=True)
                if text is not None:  # UTF-8 stays bytes, as in the pipeline
                    LexborHTMLParser(text)
                    pages += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Row("e", "read + gunzip + decode + parse (floor)", pages, wall, 1, cpu)


def measure_spark(parts: list[str]) -> Row:
    """(b) the Spark job in ``local[2]``, on the session that ``start_spark`` started."""
    from vlcurate.jobs.extract import run

    output = fresh_dir("out-spark")
    wall = time.perf_counter()
    stats = run(parts, output, ExtractConfig(), master=spark_master(), progress=False)
    wall = time.perf_counter() - wall
    shutil.rmtree(output)
    return Row(
        "b", f"vlcurate.jobs.extract.run, {spark_master()}", stats["kept"], wall, SPARK_CORES
    )


def measure_baseline(parts: list[str], limit: int) -> Row:
    """(c) warcio + BeautifulSoup(html.parser) over the first ``limit`` pages."""
    wall, cpu = time.perf_counter(), time.process_time()
    pages = sum(1 for _ in itertools.islice(baseline_pages(parts), limit))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Row("c", "baseline warcio + bs4 html.parser", pages, wall, 1, cpu)


def baseline_pages(paths: list[str]):
    """The script a newcomer writes: yield ``(pairs, text)`` for every HTML page."""
    from urllib.parse import urljoin

    from bs4 import BeautifulSoup
    from warcio.archiveiterator import ArchiveIterator

    for path in paths:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                if record.http_headers.get_statuscode() != "200":
                    continue
                if "text/html" not in record.http_headers.get_header("Content-Type", ""):
                    continue
                page_url = record.rec_headers.get_header("WARC-Target-URI")
                soup = BeautifulSoup(record.content_stream().read(), "html.parser")
                pairs = [
                    (urljoin(page_url, img["src"]), img["alt"])
                    for img in soup.find_all("img")
                    if img.get("src") and img.get("alt")
                ]
                yield pairs, soup.get_text()


def decoded_pages(parts: list[str], limit: int) -> list[str]:
    """The first ``limit`` pages of the corpus, decoded as the pipeline decodes them."""
    texts = []
    for path in parts:
        with open(path, "rb") as stream:
            kinds = WarcRecordType.response
            for record in ArchiveIterator(stream, record_types=kinds, parse_http=True):
                text, _, _ = decode_html(record.reader.read(), record.http_charset)
                if text is not None:
                    texts.append(text)
                if len(texts) >= limit:
                    return texts
    return texts


def measure_parser(texts: list[str]) -> Row:
    """(d) ``LexborHTMLParser(text)`` alone: the parse-only bound."""
    from selectolax.lexbor import LexborHTMLParser

    wall, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        LexborHTMLParser(text)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Row("d", "LexborHTMLParser only (ceiling)", len(texts), wall, 1, cpu)


def wat_parts(responses: int) -> list[str]:
    """(g)'s corpus: ``responses`` pages as WAT files (cached, like the WARC corpus), and one
    untimed extract of its first part: first-call costs (about 0.4 s here) are start-up."""
    pages = read_source_pages()
    folder = WORK / f"wat-{responses}r-{MIN_PARTS}parts"
    parts = wat_corpus.build(pages, responses, MIN_PARTS, folder, _fingerprint(pages))
    output = fresh_dir("out-wat-warm")
    extract_file_to(parts[0], output)
    shutil.rmtree(output)
    return parts


def measure_wat(parts: list[str]) -> list[Row]:
    """(g) and (g1): ``extract_file_to`` over the WAT parts; (g0) their floor."""
    output = fresh_dir("out-wat")
    responses, records, wall, cpu = wat_corpus.measure(parts, output, extract_file_to)
    shutil.rmtree(output)
    floor, floor_wall, floor_cpu = wat_corpus.measure_floor(parts)
    return [
        Row("g", "WAT: extract_file_to, all WAT records", records, wall, 1, cpu),
        Row("g1", "WAT: the same run, response records", responses, wall, 1, cpu),
        Row("g0", "WAT: read + gunzip + JSON (floor)", floor, floor_wall, 1, floor_cpu),
    ]


def profile_extract(path: str, top: int = 20) -> str:
    """A cProfile of ``extract_file_to`` on one part: the ``top`` functions by own time."""
    output = fresh_dir("out-profile")
    profiler = cProfile.Profile()
    profiler.runcall(extract_file_to, path, output, ExtractConfig())
    shutil.rmtree(output)
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(top)
    return report.getvalue()


# --- Spark -------------------------------------------------------------------------------------


def warm_up() -> None:
    """Untimed runs of (a) and (b) on a 1 MiB corpus. First-call costs (lazy imports, Python
    workers, Spark's first job: about a second here; then the JIT, which compiles the job path
    over the first few jobs) are start-up, not throughput."""
    parts, _ = corpus(1, SPARK_CORES)
    measure_extract(parts)
    for _ in range(WARM_JOBS):
        measure_spark(parts)


# --- report ------------------------------------------------------------------------------------


def targets(rows: dict[str, Row]) -> list[dict]:
    """The targets of issues 2 and 19, each with its measured value and verdict."""
    a, b, c, e = rows["a"], rows["b"], rows["c"], rows["e"]
    checks = [
        ("(a) / (e) pages/s >= 0.55", _ratio(a.pages_per_s, e.pages_per_s), 0.55, "{:.2f}x"),
        ("(a) pages/s per core >= 2,500", a.per_core, 2500.0, "{:,.0f}"),
        ("(a) / (c) pages/s >= 10x", _ratio(a.pages_per_s, c.pages_per_s), 10.0, "{:.1f}x"),
        ("(b) / (a) pages/s >= 1.7x", _ratio(b.pages_per_s, a.pages_per_s), 1.7, "{:.2f}x"),
    ]
    if "g" in rows:
        checks.append(("(g) WAT records/s per core >= 10,000", rows["g"].per_core, 1e4, "{:,.0f}"))
    return [
        {"target": name, "value": value, "goal": goal, "met": value >= goal, "format": fmt}
        for name, value, goal, fmt in checks
    ]


def _ratio(x: float, y: float) -> float:
    return x / y if y else float("inf")


def format_table(rows: list[Row], checks: list[dict]) -> str:
    """The results table, then the targets; ``cpu s`` is this process's CPU time (not Spark's):
    far below ``seconds`` means the machine was busy with other work."""
    lines = [
        f"{'row':<42} {'pages':>7} {'seconds':>8} {'cpu s':>7} {'pages/s':>9} {'pages/s/core':>12}",
        "-" * 90,
    ]
    for row in rows:
        lines.append(
            f"({row.name}) {row.label:<38} {row.pages:>7} {row.seconds:>8.2f} "
            f"{cpu_cell(row.cpu_seconds):>7} "
            f"{row.pages_per_s:>9,.0f} {row.per_core:>12,.0f}"
        )
    lines += target_lines(checks, width=42, value_width=10, rule=72)
    lines += ["", load_line()]
    return "\n".join(lines)


def results(manifest: dict, rows: list[Row], checks: list[dict]) -> dict:
    """What ``--json`` writes after the settings and the machine."""
    return {
        "corpus": manifest,
        "rows": [
            {**asdict(row), "pages_per_s": row.pages_per_s, "pages_per_s_per_core": row.per_core}
            for row in rows
        ],
        "targets": [{k: v for k, v in check.items() if k != "format"} for check in checks],
    }


# --- main --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=200, help="corpus size, MiB uncompressed")
    parser.add_argument("--parts", type=int, default=4, help=f"WARC files (>= {MIN_PARTS})")
    parser.add_argument("--baseline-pages", type=int, default=1000, help="pages for row (c)")
    parser.add_argument("--parser-pages", type=int, default=4000, help="pages for row (d)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), (b), (d); fastest")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: --mb 20, fewer (c)/(d) pages, 1 run"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile (a) on one part")
    parser.add_argument(
        "--wat-responses",
        type=int,
        default=20000,
        help="pages in (g)'s WAT corpus (3 records each)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.mb, args.baseline_pages, args.parser_pages, args.repeat = 20, 200, 400, 1
        args.wat_responses = 5000
    if args.parts < MIN_PARTS:
        build_parser().error(f"--parts must be at least {MIN_PARTS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts, manifest = corpus(args.mb, args.parts)
    print(
        f"corpus: {len(parts)} files, {manifest['uncompressed_bytes'] / 2**20:.0f} MiB "
        f"uncompressed, {manifest['response_records']} records of "
        f"{manifest['distinct_pages']} distinct pages",
        file=sys.stderr,
    )
    spark = start_spark()
    try:
        warm_up()
        rows = [
            fastest(lambda: measure_extract(parts), args.repeat),
            fastest(lambda: measure_extract(parts, compiled=False), args.repeat),
            fastest(lambda: measure_floor(parts), args.repeat),
            fastest(lambda: measure_spark(parts), args.repeat),
            measure_baseline(parts, args.baseline_pages),
        ]
        texts = decoded_pages(parts, args.parser_pages)
        rows.append(fastest(lambda: measure_parser(texts), args.repeat))
        wat = wat_parts(args.wat_responses)
        rows += min((measure_wat(wat) for _ in range(args.repeat)), key=lambda g: g[0].seconds)
    finally:
        spark.stop()
    checks = targets({row.name: row for row in rows})
    print(format_table(rows, checks))
    if args.profile:
        print("\ncProfile of (a) on", parts[0], "\n" + profile_extract(parts[0]))
    if args.json:
        write_json(args.json, args, results(manifest, rows, checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
