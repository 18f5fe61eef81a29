"""Throughput and CPU cost of the download stage on loopback, against img2dataset run bare.

    .venv/bin/python benchmarks/download.py                     # 5,000 images, best of 2
    .venv/bin/python benchmarks/download.py --quick             # smoke run: 500 images, 1 run
    .venv/bin/python benchmarks/download.py --json bench.json   # also write the results

Images: ``--images`` deterministic JPEGs (a fixed seed; gradients, grey noise, ellipses and
rectangles; sides between 256 and 768 px; quality 90; about 40 KB each) cached in
``benchmarks/_work/download-images/`` and reused while complete. A stdlib ``ThreadingHTTPServer``
in a separate (spawned) process serves them on 127.0.0.1 and a free port, so its CPU is not
charged to this process; it is stopped at the end.

Rows, each timed by the wall clock, with the same settings (``image_size`` 256, ``border``,
1,000 samples per shard, 2 processes, 64 threads each, a 10 s timeout, no retries):

(a) ours: ``vlcurate.pipeline.download.stage.download_stage`` on a candidates table (the filter
    stage's ``CANDIDATE_SCHEMA``), loopback allowed: the safety pre-filter, the URL list and the
    unsafe list written as parquet, img2dataset (incremental mode, the candidates' columns
    carried into the shards, run in a forked child leading its own process group), then each
    shard's sidecar read back for its done marker, and ``stats.json``.
(b) bare: ``img2dataset.download`` on a parquet URL list of ``url`` and ``caption`` only
    (written before the clock), into a fresh folder. Its ``incremental_mode`` is
    ``"incremental"``, as in (a): ``"overwrite"`` is broken in img2dataset 1.47.0 (it deletes
    its own ``_tmp`` folder, and the reader then retries for minutes before failing).

Each run gets a fresh output folder; (a) and (b) run alternately ``--repeat`` times, after an
untimed warm-up of both on a few images (imports, the page cache). ``cpu s`` is
``RUSAGE_SELF`` plus ``RUSAGE_CHILDREN`` around the run: img2dataset's worker and logger
processes are spawned and reaped inside ``download()``, so their CPU lands in
``RUSAGE_CHILDREN``. To check that, a separate poller process reads ``/proc`` every 0.25 s for
every process spawned under this one during the run and keeps its last CPU reading; ``polled``
(a lower bound: the last fraction of a second of each process is missed) must not exceed the
children's delta. The server's CPU over the run (``/proc``) is shown apart, never added.
img2dataset's own output (progress bars, speed tables) goes to
``benchmarks/_work/download-img2dataset.log``.

Per-image CPU of (b), measured apart in this process on ``--breakdown-images`` of the images
(read from disk), each step the least CPU of 3 passes: cv2.imdecode; albumentations'
``LongestMaxSize`` (INTER_AREA) and ``PadIfNeeded`` (white), built per image as img2dataset's
``Resizer`` builds them; cv2.imencode of the 256 x 256 result at quality 95; the rest of one
``Resizer`` call as its ``Downloader`` makes it (the whole call, minus those three: stdout and
stderr redirection, buffer copies); the sha256 and EXIF that img2dataset computes by default;
the start-up of one spawned interpreter that imports img2dataset (torch comes with webdataset,
albumentations), times the pool's workers. "download" is the remainder of (b)'s CPU per image:
HTTP on the client side, the shard writing, the logger process and the bookkeeping. Our layer
is also timed directly: the stage's pre-filter and URL list (``DownloadStage`` on the
candidates, then ``write_url_list``) and ``shard_stats`` of every shard of (a)'s last output.

Target: our layer adds under 10%: (a) / (b) in wall seconds (fastest runs) and in CPU seconds
(each side's least CPU) both under 1.10x, and our layer timed alone under 10% of (b)'s CPU.
The first two carry the machine's noise (about 10% here between runs); the third does not.
"""

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import os
import resource
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import WORK, fresh_dir, load_line, target_lines, write_json
from PIL import Image, ImageDraw

from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.shards import shard_stats
from vlcurate.pipeline.download.stage import (
    DownloadConfig,
    DownloadStage,
    download_stage,
    write_url_list,
)
from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.schemas.filter import CANDIDATE_SCHEMA

SEED = 20240425
GENERATOR = "gradient+noise+shapes/1"  # change when image_bytes changes: the cache is rebuilt
IMAGES = WORK / "download-images"
LOG = WORK / "download-img2dataset.log"
PROCESSES = 2  # the machine's cores
THREADS = 64
CONFIG = DownloadConfig(
    image_size=256,
    resize_mode="border",
    processes=PROCESSES,
    threads=THREADS,
    samples_per_shard=1000,
    timeout=10,
)
LOOPBACK = SafetyConfig(allow_networks=["127.0.0.0/8"])
WARM_UP_IMAGES = 100
POLL_SECONDS = 0.25
TICKS = os.sysconf("SC_CLK_TCK")
OVERHEAD_GOAL = 1.10


@dataclass
class Row:
    """One timed run of (a) or (b)."""

    name: str
    label: str
    urls: int
    images: int  # img2dataset's successes
    seconds: float
    self_cpu: float
    children_cpu: float
    polled_cpu: float  # children's CPU seen in /proc: a lower bound of children_cpu
    spawned: int  # processes spawned under this one during the run
    server_cpu: float  # the HTTP server's CPU during the run, not in cpu_seconds

    @property
    def cpu_seconds(self) -> float:
        return self.self_cpu + self.children_cpu

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_seconds / self.images if self.images else math.inf

    @property
    def children_captured(self) -> bool:
        return self.children_cpu >= self.polled_cpu - 0.05  # ticks round down and up


# --- images ------------------------------------------------------------------------------------


def image_bytes(index: int) -> bytes:
    """Image ``index`` as JPEG bytes: the same bytes for the same index, seed and Pillow."""
    rng = np.random.default_rng([SEED, index])
    width, height = (int(v) for v in rng.integers(256, 769, size=2))
    c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    a = rng.random()
    t = (
        a * np.linspace(0, 1, width, dtype=np.float32)[None, :]
        + (1 - a) * np.linspace(0, 1, height, dtype=np.float32)[:, None]
    )
    pixels = c0 + (c1 - c0) * t[..., None]
    pixels += rng.normal(0, rng.uniform(0, 12), size=(height, width, 1)).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 12))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, size=2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, size=2))
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=fill)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def image_name(index: int) -> str:
    return f"{index:06d}.jpg"


def _write_image(index: int) -> int:
    data = image_bytes(index)
    path = IMAGES / image_name(index)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def images(count: int) -> list[Path]:
    """The first ``count`` cached images; missing or damaged ones are written (2 processes)."""
    manifest_path = IMAGES / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    key = {"seed": SEED, "generator": GENERATOR}
    if any(manifest.get(k) != v for k, v in key.items()):
        shutil.rmtree(IMAGES, ignore_errors=True)
        manifest = {}
    IMAGES.mkdir(parents=True, exist_ok=True)
    sizes = list(manifest.get("sizes", []))
    paths = [IMAGES / image_name(i) for i in range(count)]
    missing = [
        i
        for i in range(count)
        if i >= len(sizes) or not paths[i].is_file() or paths[i].stat().st_size != sizes[i]
    ]
    if missing:
        print(f"writing {len(missing)} images under {IMAGES} ...", file=sys.stderr)
        sizes += [0] * (count - len(sizes))
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            for i, size in zip(
                missing, pool.imap(_write_image, missing, chunksize=50), strict=True
            ):
                sizes[i] = size
        manifest = {**key, "sizes": sizes, "bytes": sum(sizes)}
        manifest_path.write_text(json.dumps(manifest) + "\n")
    return paths


# --- the server and the poller (separate processes) --------------------------------------------


class ImageHandler(BaseHTTPRequestHandler):
    """GET /NNNNNN.jpg from the image folder; anything else is a 404. Logs nothing."""

    def do_GET(self):
        name = self.path.lstrip("/")
        if name not in self.server.names:
            self.send_error(404)
            return
        body = (IMAGES / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ImageServer(ThreadingHTTPServer):
    request_queue_size = 1024  # 128 client threads connect at once; the default backlog is 5
    daemon_threads = True


def serve(count: int, conn) -> None:
    server = ImageServer(("127.0.0.1", 0), ImageHandler)
    server.names = frozenset(image_name(i) for i in range(count))
    conn.send(server.server_address[1])
    server.serve_forever()


def start_server(count: int):
    """The server process and its base URL."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(count, theirs), daemon=True
    )
    process.start()
    while not ours.poll(1.0):
        if not process.is_alive():
            raise RuntimeError(f"the image server exited with code {process.exitcode}")
    return process, f"http://127.0.0.1:{ours.recv()}"


def stop_server(process) -> None:
    process.terminate()
    process.join()


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """The parent pid and the CPU seconds (user + system) of ``pid``, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def descendants(root: int) -> dict[int, float]:
    """Every live process under ``root`` and its CPU seconds so far."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = stats[pid][1]
        todo += children.get(pid, [])
    return found


def poll(root: int, conn) -> None:
    """Until told to stop: the last CPU reading of each process that appears under ``root``
    (those already there, the server and this poller, are left out); then send them."""
    before = set(descendants(root)) | {os.getpid()}
    seen: dict[int, float] = {}
    conn.send("ready")
    while not conn.poll(POLL_SECONDS):
        for pid, cpu in descendants(root).items():
            if pid not in before:
                seen[pid] = cpu
    conn.send(seen)


class Poller:
    """A poller process around one run; it is reaped after the run's last rusage reading."""

    def __enter__(self):
        self.conn, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=poll, args=(os.getpid(), theirs), daemon=True
        )
        self.process.start()
        self.conn.recv()
        return self

    def stop(self) -> dict[int, float]:
        self.conn.send("stop")
        seen = self.conn.recv()
        self.process.join()
        return seen

    def __exit__(self, *exc):
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


def cpu_now() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def process_cpu(pid: int) -> float:
    stat = _proc_stat(pid)
    return stat[1] if stat else 0.0


# --- measurements ------------------------------------------------------------------------------


def candidate_table(base: str, count: int) -> pa.Table:
    """``count`` candidates as the filter stage writes them, one per image."""
    rows = []
    for i in range(count):
        url, caption = f"{base}/{image_name(i)}", f"a synthetic picture number {i}"
        rows.append(
            {
                "uid": pair_uid(caption, url),
                "url": url,
                "caption": caption,
                "page_url": f"https://example.com/page/{i // 20}.html",
                "width": None,
                "height": None,
                "position": i % 20,
                "page_lang": "en",
                "warc_path": "crawl/segment-00000.warc.gz",
                "warc_record_id": f"<urn:uuid:{i // 20:08d}-0000-0000-0000-000000000000>",
                "warc_offset": 1000 * (i // 20),
                "language": "en",
                "language_score": 0.95,
                "caption_original": None,
                "recipe": "laion/1",
            }
        )
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)


def url_list(candidates: pa.Table, name: str) -> str:
    """(b)'s input: the URL and caption columns only, as parquet in folder ``name``."""
    path = Path(fresh_dir(name)) / "urls.parquet"
    pq.write_table(candidates.select(["url", "caption"]), path)
    return str(path)


def run_ours(candidates: pa.Table, output: str) -> int:
    return download_stage(candidates, output, CONFIG, LOOPBACK)["kept"]


def run_bare(urls: str, output: str) -> int:
    from img2dataset import download

    download(
        url_list=urls,
        input_format="parquet",
        url_col="url",
        caption_col="caption",
        output_format="webdataset",
        output_folder=output,
        processes_count=PROCESSES,
        thread_count=THREADS,
        image_size=CONFIG.image_size,
        resize_mode=CONFIG.resize_mode,
        number_sample_per_shard=CONFIG.samples_per_shard,
        timeout=CONFIG.timeout,
        enable_wandb=False,
        # "overwrite" is broken in img2dataset 1.47.0: download() makes OUTPUT/_tmp, then
        # deletes OUTPUT with it, and the reader retries its writes there for minutes. On a
        # fresh folder "incremental" has no finished shard to skip: it does the same work.
        incremental_mode="incremental",
    )
    return sum(json.loads(p.read_text())["successes"] for p in Path(output).glob("*_stats.json"))


class Quiet:
    """Send file descriptors 1 and 2 (this process's and its children's) to ``LOG``."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        log = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)


def measure(name: str, label: str, urls: int, run, server_pid: int, keep: bool = False) -> Row:
    """One run of ``run(output)`` in a fresh folder, deleted afterwards unless ``keep``."""
    output = fresh_dir(f"download-out-{name}")
    with Quiet(), Poller() as poller:
        server0 = process_cpu(server_pid)
        self0, children0 = cpu_now()
        wall = time.perf_counter()
        kept = run(output)
        wall = time.perf_counter() - wall
        self1, children1 = cpu_now()
        server1 = process_cpu(server_pid)
        seen = poller.stop()
    if not keep:
        shutil.rmtree(output)
    return Row(
        name,
        label,
        urls,
        kept,
        wall,
        self1 - self0,
        children1 - children0,
        sum(seen.values()),
        len(seen),
        server1 - server0,
    )


def layer_cost(candidates: pa.Table, output: str, repeat: int = 3) -> dict:
    """Our layer alone, in this process: the pre-filter and the URL list of the candidates, then
    ``shard_stats`` of each shard of (a)'s last output; the least CPU seconds of ``repeat``
    passes."""
    prepare, stats = math.inf, math.inf
    shards = sorted(p.name.split("_")[0] for p in Path(output).glob("*_stats.json"))
    for _ in range(repeat):
        folder = fresh_dir("download-layer-input")
        cpu = time.process_time()
        write_url_list(DownloadStage(candidates, folder, CONFIG, LOOPBACK).urls, folder)
        prepare = min(prepare, time.process_time() - cpu)
        cpu = time.process_time()
        for shard in shards:
            shard_stats(output, shard)
        stats = min(stats, time.process_time() - cpu)
    shutil.rmtree(output)
    shutil.rmtree(folder)
    return {"url_list": prepare, "shard_stats": stats, "total": prepare + stats}


def _fastest_cpu(step, items, passes: int = 3) -> float:
    """The least CPU seconds of ``passes`` passes of ``step`` over ``items``."""
    best = math.inf
    for _ in range(passes):
        cpu = time.process_time()
        for item in items:
            step(item)
        best = min(best, time.process_time() - cpu)
    return best


def _spawned_import() -> None:
    import img2dataset  # noqa: F401


def breakdown(paths: list[Path]) -> dict:
    """CPU seconds per image of each step img2dataset runs on an image, in this process."""
    import albumentations as A
    import cv2
    import exifread
    from img2dataset.resizer import Resizer

    cv2.setNumThreads(1)
    data = [p.read_bytes() for p in paths]
    # As img2dataset.main builds it from download()'s defaults and (b)'s arguments.
    resizer = Resizer(
        image_size=CONFIG.image_size,
        resize_mode=CONFIG.resize_mode,
        resize_only_if_bigger=False,
        upscale_interpolation="lanczos",
        downscale_interpolation="area",
        encode_quality=95,
        encode_format="jpg",
        skip_reencode=False,
        disable_all_reencoding=False,
        min_image_size=0,
        max_image_area=float("inf"),
        max_aspect_ratio=float("inf"),
        blurrer=None,
    )
    streams = [io.BytesIO(d) for d in data]

    def resize(stream):  # as Downloader.download_shard calls it
        stream.seek(0)
        out = resizer(stream, None)
        if out[-1] is not None:
            raise RuntimeError(f"Resizer failed: {out[-1]}")

    def decode(d):
        return cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED)

    def scale(image):  # Resizer's border mode: both transforms are built for every image
        size = CONFIG.image_size
        longest = A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_AREA, p=1.0)
        image = longest(image=image)["image"]
        pad = A.PadIfNeeded(
            min_height=size,
            min_width=size,
            border_mode=cv2.BORDER_CONSTANT,
            value=[255, 255, 255],
            p=1.0,
        )
        pad(image=image)

    decoded = [decode(d) for d in data]
    resized = [
        cv2.imdecode(np.frombuffer(resizer(s, None)[0], np.uint8), cv2.IMREAD_UNCHANGED)
        for s in streams
    ]
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 95]

    def encode(image):
        cv2.imencode(".jpg", image, params=params)

    def hash_and_exif(stream):  # img2dataset's defaults: extract_exif, compute_hash="sha256"
        stream.seek(0)
        exifread.process_file(stream, details=False)
        stream.seek(0)
        hashlib.sha256(stream.read()).hexdigest()

    n = len(data)
    with warnings.catch_warnings():  # PadIfNeeded(value=...) is deprecated; Resizer hides it too
        warnings.simplefilter("ignore")
        steps = {
            "resizer_total": _fastest_cpu(resize, streams) / n,
            "decode": _fastest_cpu(decode, data) / n,
            "resize": _fastest_cpu(scale, decoded) / n,
            "encode": _fastest_cpu(encode, resized) / n,
            "hash_exif": _fastest_cpu(hash_and_exif, streams) / n,
        }
    steps["resizer_other"] = steps["resizer_total"] - sum(
        steps[k] for k in ("decode", "resize", "encode")
    )
    _, children = cpu_now()
    process = multiprocessing.get_context("spawn").Process(target=_spawned_import)
    process.start()
    process.join()
    startup = cpu_now()[1] - children
    return {"images": n, "startup_per_process": startup, **steps}


# --- report ------------------------------------------------------------------------------------


def best(rows: list[Row], name: str) -> tuple[Row, float]:
    """The fastest run named ``name`` and the least CPU seconds of the runs so named."""
    mine = [row for row in rows if row.name == name]
    return min(mine, key=lambda r: r.seconds), min(r.cpu_seconds for r in mine)


def targets(rows: list[Row], layer: dict) -> list[dict]:
    """Our layer's overhead three ways: whole runs by the wall clock and by CPU (noisy here),
    and the layer timed alone as a share of (b)'s CPU."""
    (a, a_cpu), (b, b_cpu) = best(rows, "a"), best(rows, "b")
    goal = OVERHEAD_GOAL - 1
    checks = [
        ("(a) / (b) wall seconds < 1.10x", a.seconds / b.seconds, OVERHEAD_GOAL, "{:.3f}x"),
        ("(a) / (b) CPU seconds < 1.10x", a_cpu / b_cpu, OVERHEAD_GOAL, "{:.3f}x"),
        ("our layer alone / (b) CPU < 10%", layer["total"] / b_cpu, goal, "{:.1%}"),
    ]
    return [
        {"target": t, "value": v, "goal": g, "met": v < g, "format": fmt} for t, v, g, fmt in checks
    ]


def cost_lines(rows: list[Row], steps: dict, layer: dict) -> list[str]:
    """Where (b)'s CPU per image goes, and our layer measured alone."""
    b, b_cpu = best(rows, "b")
    per_image = b_cpu / b.images
    workers = max(b.spawned - 1, 0)  # the pool's workers; the other one is the logger process
    startup = steps["startup_per_process"] * workers
    parts = [
        ("decode (cv2.imdecode)", steps["decode"]),
        ("resize (LongestMaxSize + PadIfNeeded)", steps["resize"]),
        ("encode (cv2.imencode, quality 95)", steps["encode"]),
        ("rest of the Resizer call", steps["resizer_other"]),
        ("sha256 + EXIF (img2dataset defaults)", steps["hash_exif"]),
        (f"worker start-up: {workers} x {steps['startup_per_process']:.2f} s", startup / b.images),
    ]
    parts.append(("download (the remainder)", per_image - sum(x for _, x in parts)))
    lines = [
        "",
        f"(b)'s CPU per image: {1000 * per_image:.2f} ms ({b_cpu:.2f} s, its least-CPU run, "
        f"/ {b.images} images); {1000 * (b_cpu - startup) / b.images:.2f} ms without the "
        f"workers' start-up. Steps measured on {steps['images']} images:",
        f"{'step':<44} {'ms/image':>9} {'share':>6}",
        "-" * 61,
    ]
    for label, seconds in parts:
        lines.append(f"{label:<44} {1000 * seconds:>9.3f} {seconds / per_image:>6.0%}")
    layer_share = layer["total"] / b_cpu
    lines += [
        "",
        f"our layer alone, {b.urls} candidates: url list {layer['url_list']:.3f} s"
        f" + shard_stats {layer['shard_stats']:.3f} s = {layer['total']:.3f} s CPU,"
        f" {layer_share:.1%} of (b)'s CPU",
    ]
    return lines


def format_table(rows: list[Row], checks: list[dict], steps: dict, layer: dict) -> str:
    header = (
        f"{'run':<30} {'images':>6} {'seconds':>8} {'images/s':>8} {'cpu s':>7} {'self':>6} "
        f"{'child':>6} {'polled':>6} {'procs':>5} {'ms/img':>7} {'server':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        flag = "" if row.children_captured else "  children NOT captured"
        lines.append(
            f"({row.name}) {row.label:<26} {row.images:>6} {row.seconds:>8.2f} "
            f"{row.images_per_s:>8.1f} {row.cpu_seconds:>7.2f} {row.self_cpu:>6.2f} "
            f"{row.children_cpu:>6.2f} {row.polled_cpu:>6.2f} {row.spawned:>5} "
            f"{row.cpu_ms_per_image:>7.2f} {row.server_cpu:>6.2f}{flag}"
        )
    failed = [r for r in rows if r.images != r.urls]
    if failed:
        lines.append(f"warning: {len(failed)} runs fetched fewer images than URLs (see {LOG})")
    lines += cost_lines(rows, steps, layer)
    lines += target_lines(checks, width=36, value_width=9, rule=64)
    lines += ["", load_line()]
    return "\n".join(lines)


def results(rows: list[Row], checks: list[dict], steps: dict, layer: dict, count: int) -> dict:
    return {
        "images": {"count": count, "seed": SEED, "generator": GENERATOR, "folder": str(IMAGES)},
        "config": CONFIG.as_json(),
        "runs": [
            {
                **asdict(row),
                "cpu_seconds": row.cpu_seconds,
                "images_per_s": row.images_per_s,
                "cpu_ms_per_image": row.cpu_ms_per_image,
                "children_captured": row.children_captured,
            }
            for row in rows
        ],
        "breakdown_seconds_per_image": steps,
        "layer_cpu_seconds": layer,
        "targets": [{k: v for k, v in check.items() if k != "format"} for check in checks],
    }


# --- main --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5000, help="images to download per run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of (a) and (b), alternately")
    parser.add_argument(
        "--breakdown-images", type=int, default=500, help="images for the per-step CPU costs"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 images, 1 run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.images, args.repeat, args.breakdown_images = 500, 1, 200
    if args.images < 1 or args.repeat < 1 or args.breakdown_images < 1:
        build_parser().error("--images, --repeat and --breakdown-images must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Both runs: OpenCV's decoder pixel cap as the stage sets it; no albumentations update check.
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(CONFIG.max_image_area)
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    import img2dataset  # noqa: F401  (imported before any clock, by both runs)

    paths = images(max(args.images, args.breakdown_images, WARM_UP_IMAGES))
    LOG.write_text("")
    server, base = start_server(len(paths))
    try:
        candidates = candidate_table(base, args.images)
        bare_input = url_list(candidates, "download-input")
        warm = candidate_table(base, WARM_UP_IMAGES)
        warm_input = url_list(warm, "download-input-warm-up")
        print(f"serving {len(paths)} images at {base}; warming up ...", file=sys.stderr)
        measure("a", "warm-up", WARM_UP_IMAGES, lambda out: run_ours(warm, out), server.pid)
        measure("b", "warm-up", WARM_UP_IMAGES, lambda out: run_bare(warm_input, out), server.pid)
        rows = []
        for i in range(args.repeat):
            print(f"run {i + 1} of {args.repeat} ...", file=sys.stderr)
            rows.append(
                measure(
                    "a",
                    "download_stage",
                    args.images,
                    lambda out: run_ours(candidates, out),
                    server.pid,
                    keep=i == args.repeat - 1,  # for our layer alone, below
                )
            )
            rows.append(
                measure(
                    "b",
                    "img2dataset.download, bare",
                    args.images,
                    lambda out: run_bare(bare_input, out),
                    server.pid,
                )
            )
        print("our layer alone, then the per-image steps ...", file=sys.stderr)
        output = str(WORK / "download-out-a")
        layer = layer_cost(candidates, output)
        steps = breakdown(paths[: args.breakdown_images])
    finally:
        stop_server(server)
    checks = targets(rows, layer)
    print(format_table(rows, checks, steps, layer))
    if args.json:
        write_json(args.json, args, results(rows, checks, steps, layer, args.images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
