"""Download-stage throughput on loopback: ours against img2dataset run bare, the floors under
both, and per-host politeness on 20 hosts, in one run on the same images.

    .venv/bin/python benchmarks/download.py                     # 5,000 images, best of 2
    .venv/bin/python benchmarks/download.py --quick             # smoke run: 500 images, 1 run
    .venv/bin/python benchmarks/download.py --json bench.json   # also write the results

Images: ``--images`` deterministic JPEGs (a fixed seed; gradients, grey noise, ellipses and
rectangles; sides between 256 and 768 px; quality 90; about 40 KB each) cached in
``benchmarks/_work/download-images/`` and reused while complete. One spawned server process
serves them (stdlib ``ThreadingHTTPServer``s, a thread per request, ``/robots.txt`` a 404) on
127.0.0.1 and on the 20 loopback addresses 127.0.0.16 to .35, one port for all (Linux routes
127.0.0.0/8 to ``lo``), so its CPU is not charged to this process. It counts the requests in
flight per ``Host`` (under a lock, from the parsed headers to the last byte written) and keeps
each host's peak and request start times; they are reset before each run and read after it.

Every row: ``image_size`` 256, ``border``, 1,000 per shard, 2 processes x 64 threads, a 10 s
timeout, ``CV_IO_MAX_IMAGE_PIXELS`` and ``NO_ALBUMENTATIONS_UPDATE=1``, in a fresh folder.

(a) ours, politeness that does not bind: ``download_stage`` (``LocalExecutor``, one spawned
    process per ``processes``) on the filter stage's candidates, every URL on 127.0.0.1,
    ``host_concurrency`` 128 (2 x 64: the limit is machine-wide, every thread may be on the
    host), ``host_delay`` 0, robots.txt read (404: allow all), ``retries`` 2,
    ``allow_networks`` 127.0.0.0/8.
(b) ``img2dataset.download`` bare on a parquet of ``url`` and ``caption`` (written before the
    clock), ``incremental_mode="incremental"`` ("overwrite" is broken in img2dataset 1.47.0: it
    deletes its own ``_tmp`` folder and its reader then retries for minutes).
(c) the floors, measured from a start signal to the last result in 2 spawned processes that
    have already started and imported (so without the ~4 s start-up (a) and (b) pay): the
    network + HTTP floor, every image fetched by 64 threads per process with our
    ``fetch.open_answer`` + ``read_body`` (no decode, nothing written); the CPU floor, every
    body (read from disk before the signal) through img2dataset's ``Resizer`` (decode, resize,
    encode). The lower is the binding floor; both share the two cores with the server.
(d) ours on 20 hosts: the URLs spread over ``host0..19.bench-web.net`` (round robin), pinned
    with ``DownloadConfig.resolve`` to 127.0.0.16..35, the server's port allowed, robots.txt
    read, ``host_concurrency`` 2, ``host_delay`` 0 and then 0.05 s. From the server's records:
    the peak in flight on each host, and the least spacing between two request starts to one
    host (seen at the server, after the connect: the client's grants are spaced by
    ``host_delay``, what the server sees varies by the connect's jitter).

(a), (b) and (d) run in turn ``--repeat`` times after an untimed warm-up of (a) and (b) on 100
images; rates are the fastest run's, peaks the highest of every run. ``cpu s`` is
``RUSAGE_SELF`` plus ``RUSAGE_CHILDREN`` around the run (the stage's and img2dataset's worker
processes are spawned and reaped inside the call); a poller process reads ``/proc`` every
0.25 s for each process spawned during the run, and a run whose children's CPU is below what
it saw is flagged ``children NOT captured``. The server's CPU is shown apart, never added.
Output of the runs (progress bars, img2dataset's tables) goes to
``benchmarks/_work/download-img2dataset.log``.

Targets: (a) / (b) images/s >= 0.9; (d) at most 2 requests in flight on every host.
"""

import argparse
import glob
import io
import json
import multiprocessing
import os
import resource
import shutil
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import WORK, fresh_dir, load_line, target_lines, write_json
from PIL import Image, ImageDraw

from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import DownloadConfig, download_stage
from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.schemas.filter import CANDIDATE_SCHEMA

SEED = 20240425
GENERATOR = "gradient+noise+shapes/1"  # change when image_bytes changes: the cache is rebuilt
IMAGES = WORK / "download-images"
LOG = WORK / "download-img2dataset.log"
PROCESSES = 2  # the machine's cores
THREADS = 64
HOSTS = 20
FIRST_ADDRESS = 16  # host i is served on 127.0.0.{FIRST_ADDRESS + i}
DOMAIN = "bench-web.net"
HOST_CONCURRENCY = 2
HOST_DELAYS = (0.0, 0.05)
BASE = DownloadConfig(
    image_size=256,
    resize_mode="border",
    processes=PROCESSES,
    threads=THREADS,
    samples_per_shard=1000,
    timeout=10,
    retries=2,
    robots=True,
)
# Not binding: every thread of every process may be on the one host at once, no interval.
OURS = replace(BASE, host_concurrency=PROCESSES * THREADS, host_delay=0.0)
LOOPBACK = SafetyConfig(allow_networks=["127.0.0.0/8"])
WARM_UP_IMAGES = 100
POLL_SECONDS = 0.25
TICKS = os.sysconf("SC_CLK_TCK")
RATIO_GOAL = 0.9
GATES = "/dev/shm/vlcurate-hostgate-*"  # politeness tables the runs leave; removed after each


@dataclass
class Row:
    """One timed run of (a), (b) or (d)."""

    name: str
    label: str
    urls: int
    images: int  # successes
    seconds: float
    self_cpu: float
    children_cpu: float
    polled_cpu: float  # children's CPU seen in /proc: a lower bound of children_cpu
    spawned: int  # processes spawned under this one during the run
    server_cpu: float  # the HTTP server's CPU during the run, not in cpu_seconds
    peak: int = 0  # the most requests in flight on one host, seen by the server
    hosts: int = 0  # hosts that got requests
    least_spacing: float | None = None  # seconds, between two request starts to one host
    median_spacing: float | None = None  # the least of the hosts' medians
    gaps: int = 0  # spacings between two request starts to one host
    short_gaps: int = 0  # of them, under half the run's host_delay (0 when there is none)
    requests: int = 0  # robots.txt included

    @property
    def cpu_seconds(self) -> float:
        return self.self_cpu + self.children_cpu

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_seconds / self.images if self.images else float("inf")

    @property
    def children_captured(self) -> bool:
        return self.children_cpu >= self.polled_cpu - 0.05  # ticks round down and up


@dataclass
class Floor:
    """One floor of (c): the work of every image in the 2 processes, nothing else."""

    name: str
    label: str
    images: int
    seconds: float
    cpu_seconds: float  # the workers' own, over the timed part
    extra: dict = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


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


class Record:
    """Requests in flight per Host, their peaks and start times (monotonic seconds)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.in_flight: dict[str, int] = {}
            self.peaks: dict[str, int] = {}
            self.starts: dict[str, list[float]] = {}

    def enter(self, host: str) -> None:
        with self.lock:
            now = self.in_flight.get(host, 0) + 1
            self.in_flight[host] = now
            self.peaks[host] = max(self.peaks.get(host, 0), now)
            self.starts.setdefault(host, []).append(time.monotonic())

    def leave(self, host: str) -> None:
        with self.lock:
            self.in_flight[host] -= 1

    def report(self) -> dict:
        """Per host: the peak in flight, the requests and the least gap between two starts."""
        with self.lock:
            hosts = {}
            for host, starts in self.starts.items():
                gaps = np.diff(np.sort(starts)) if len(starts) > 1 else np.array([])
                hosts[host] = {
                    "peak": self.peaks[host],
                    "requests": len(starts),
                    "least_spacing": float(gaps.min()) if gaps.size else None,
                    "median_spacing": float(np.median(gaps)) if gaps.size else None,
                    "gaps": gaps.tolist(),
                }
            return hosts


class ImageHandler(BaseHTTPRequestHandler):
    """GET /NNNNNN.jpg from the image folder; anything else (robots.txt too) is a 404. Counted
    per Host in the server's record; logs nothing."""

    def do_GET(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        record = self.server.record
        record.enter(host)
        try:
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
        finally:
            record.leave(host)

    def log_message(self, *args):
        pass


class ImageServer(ThreadingHTTPServer):
    request_queue_size = 1024  # 128 client threads connect at once; the default backlog is 5
    daemon_threads = True


def host_address(i: int) -> str:
    return f"127.0.0.{FIRST_ADDRESS + i}"


def host_name(i: int) -> str:
    return f"host{i}.{DOMAIN}"


def _bind() -> list[ImageServer]:
    """127.0.0.1 on a free port, then every host address on that port (another port if one of
    them is taken)."""
    for _ in range(20):
        first = ImageServer(("127.0.0.1", 0), ImageHandler)
        port, servers = first.server_address[1], [first]
        try:
            for i in range(HOSTS):
                servers.append(ImageServer((host_address(i), port), ImageHandler))
        except OSError:
            for server in servers:
                server.server_close()
            continue
        return servers
    raise RuntimeError("no port free on every loopback address")


def serve(count: int, conn) -> None:
    """The server process: serve on every address; answer "reset" and "report" on ``conn``."""
    servers, record = _bind(), Record()
    names = frozenset(image_name(i) for i in range(count))
    for server in servers:
        server.names, server.record = names, record
        threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(servers[0].server_address[1])
    while True:
        command = conn.recv()
        if command == "reset":
            record.reset()
            conn.send(True)
        elif command == "report":
            conn.send(record.report())


class Server:
    """The server process, its port and its record."""

    def __init__(self, count: int):
        self.conn, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=serve, args=(count, theirs), daemon=True
        )
        self.process.start()
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the image server exited with code {self.process.exitcode}")
        self.port = self.conn.recv()
        self.base = f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def report(self) -> dict:
        self.conn.send("report")
        return self.conn.recv()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


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


# --- the runs --------------------------------------------------------------------------------


def candidate_table(urls: list[str]) -> pa.Table:
    """Candidates as the filter stage writes them, one per URL (URL ``i`` is image ``i``)."""
    rows = []
    for i, url in enumerate(urls):
        caption = f"a synthetic picture number {i}"
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


def loopback_urls(base: str, count: int) -> list[str]:
    return [f"{base}/{image_name(i)}" for i in range(count)]


def host_urls(port: int, count: int) -> list[str]:
    """Image ``i`` on host ``i % HOSTS``."""
    return [f"http://{host_name(i % HOSTS)}:{port}/{image_name(i)}" for i in range(count)]


def hosts_setup(port: int, delay: float) -> tuple[DownloadConfig, SafetyConfig]:
    """(d)'s settings: the names pinned to their addresses, the server's port allowed."""
    pins = [f"{host_name(i)}:{host_address(i)}" for i in range(HOSTS)]
    config = replace(BASE, host_concurrency=HOST_CONCURRENCY, host_delay=delay, resolve=pins)
    ports = sorted({*SafetyConfig().allowed_ports, port})
    return config, SafetyConfig(allowed_ports=ports, allow_networks=["127.0.0.0/8"])


def url_list(candidates: pa.Table, name: str) -> str:
    """(b)'s input: the URL and caption columns only, as parquet in folder ``name``."""
    path = Path(fresh_dir(name)) / "urls.parquet"
    pq.write_table(candidates.select(["url", "caption"]), path)
    return str(path)


def run_ours(candidates: pa.Table, config: DownloadConfig, safety: SafetyConfig):
    return lambda output: download_stage(candidates, output, config, safety)["kept"]


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
        image_size=BASE.image_size,
        resize_mode=BASE.resize_mode,
        number_sample_per_shard=BASE.samples_per_shard,
        timeout=BASE.timeout,
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


def measure(name: str, label: str, urls: int, run, server: Server, delay: float = 0.0) -> Row:
    """One run of ``run(output)`` in a fresh folder, deleted afterwards with the politeness
    tables the run left in /dev/shm; ``delay``: the run's ``host_delay``."""
    output = fresh_dir(f"download-out-{name}")
    gates = set(glob.glob(GATES))
    server.reset()
    with Quiet(), Poller() as poller:
        server0 = process_cpu(server.process.pid)
        self0, children0 = cpu_now()
        wall = time.perf_counter()
        kept = run(output)
        wall = time.perf_counter() - wall
        self1, children1 = cpu_now()
        server1 = process_cpu(server.process.pid)
        seen = poller.stop()
    hosts = server.report()
    shutil.rmtree(output)
    for path in set(glob.glob(GATES)) - gates:
        os.unlink(path)
    spacings = [h["least_spacing"] for h in hosts.values() if h["least_spacing"] is not None]
    medians = [h["median_spacing"] for h in hosts.values() if h["median_spacing"] is not None]
    gaps = [g for h in hosts.values() for g in h["gaps"]]
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
        peak=max((h["peak"] for h in hosts.values()), default=0),
        hosts=len(hosts),
        least_spacing=min(spacings, default=None),
        median_spacing=min(medians, default=None),
        gaps=len(gaps),
        short_gaps=sum(g < delay / 2 for g in gaps),
        requests=sum(h["requests"] for h in hosts.values()),
    )


# --- the floors (c) ----------------------------------------------------------------------------


def _fetch_floor(paths: list[str], port: int, ready, go, results) -> None:
    """Worker: GET each path from 127.0.0.1 with 64 threads (our fetch, no decode)."""
    from vlcurate.pipeline.download.context import user_agent
    from vlcurate.pipeline.download.fetch import open_answer, request_bytes

    todo, lock, got = deque(paths), threading.Lock(), []
    agent, host = user_agent(BASE.user_agent_token), f"127.0.0.1:{port}"

    def work():
        ok = size = 0
        while True:
            with lock:
                if not todo:
                    break
                path = todo.popleft()
            request = request_bytes(path, host, agent)
            answer = open_answer("127.0.0.1", port, None, request, time.monotonic() + BASE.timeout)
            try:
                body = answer.read_body(BASE.max_image_bytes)
            finally:
                answer.close()
            ok, size = ok + (answer.status == 200), size + len(body)
        got.append((ok, size))

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    ready.put(None)
    go.wait()
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((sum(n for n, _ in got), sum(s for _, s in got), time.process_time() - cpu))


def _resize_floor(paths: list[str], ready, go, results) -> None:
    """Worker: every body, read from disk first, through img2dataset's Resizer (as ours)."""
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(BASE.max_image_area)
    from vlcurate.pipeline.download.context import resizer as stage_resizer

    resizer = stage_resizer(BASE)  # exactly the stage's
    bodies = [Path(p).read_bytes() for p in paths]
    ready.put(None)
    go.wait()
    cpu, ok = time.process_time(), 0
    for body in bodies:
        ok += resizer(io.BytesIO(body))[-1] is None
    results.put((ok, sum(map(len, bodies)), time.process_time() - cpu))


def floor(name: str, label: str, target, shares: list[tuple]) -> Floor:
    """Start one process per share, wait until each is ready, then time from the start signal
    to the last result."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(target=target, args=(*share, ready, go, results)) for share in shares
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get()
    wall = time.perf_counter()
    go.set()
    got = [results.get() for _ in workers]
    wall = time.perf_counter() - wall
    for worker in workers:
        worker.join()
    images = sum(ok for ok, _, _ in got)
    megabytes = sum(size for _, size, _ in got) / 1e6
    return Floor(name, label, images, wall, sum(cpu for *_, cpu in got), {"MB": megabytes})


def floors(paths: list[Path], port: int) -> list[Floor]:
    names = [f"/{p.name}" for p in paths]
    files = [str(p) for p in paths]
    return [
        floor(
            "c-net",
            "fetch floor: open_answer+read",
            _fetch_floor,
            [(names[k::PROCESSES], port) for k in range(PROCESSES)],
        ),
        floor(
            "c-cpu",
            "CPU floor: Resizer",
            _resize_floor,
            [(files[k::PROCESSES],) for k in range(PROCESSES)],
        ),
    ]


# --- report ------------------------------------------------------------------------------------


def fastest(rows: list, name: str):
    return min((r for r in rows if r.name == name), key=lambda r: r.seconds)


def host_names() -> list[str]:
    return [f"d{delay:g}" for delay in HOST_DELAYS]


def targets(rows: list[Row]) -> list[dict]:
    """(a) / (b) by images/s, fastest runs; (d) the highest peak on any host of any run."""
    a, b = fastest(rows, "a"), fastest(rows, "b")
    checks = [
        {
            "target": "(a) / (b) images/s >= 0.9",
            "value": a.images_per_s / b.images_per_s,
            "goal": RATIO_GOAL,
            "format": "{:.3f}x",
        }
    ]
    for name in host_names():
        peak = max(r.peak for r in rows if r.name == name)
        checks.append(
            {
                "target": f"({name}) peak per host <= {HOST_CONCURRENCY}",
                "value": peak,
                "goal": HOST_CONCURRENCY,
                "format": "{:d}",
            }
        )
    for check in checks:
        ratio = check["format"].endswith("x")
        check["met"] = check["value"] >= check["goal"] if ratio else check["value"] <= check["goal"]
    return checks


def run_lines(rows: list[Row]) -> list[str]:
    header = (
        f"{'run':<34} {'images':>6} {'seconds':>8} {'images/s':>8} {'cpu s':>7} {'child':>6} "
        f"{'polled':>6} {'procs':>5} {'ms/img':>6} {'server':>6} {'peak':>4} {'gap ms':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        flag = "" if row.children_captured else "  children NOT captured"
        gap = "-" if row.least_spacing is None else f"{1000 * row.least_spacing:.1f}"
        lines.append(
            f"({row.name}) {row.label:<{30 - len(row.name)}} {row.images:>6} {row.seconds:>8.2f} "
            f"{row.images_per_s:>8.1f} {row.cpu_seconds:>7.2f} {row.children_cpu:>6.2f} "
            f"{row.polled_cpu:>6.2f} {row.spawned:>5} {row.cpu_ms_per_image:>6.2f} "
            f"{row.server_cpu:>6.2f} {row.peak:>4} {gap:>6}{flag}"
        )
    failed = [r for r in rows if r.images != r.urls]
    if failed:
        lines.append(f"warning: {len(failed)} runs kept fewer images than URLs (see {LOG})")
    return lines


def floor_lines(found: list[Floor]) -> list[str]:
    header = (
        f"{'floor':<34} {'images':>6} {'seconds':>8} {'images/s':>8} {'cpu s':>7} {'ms/img':>6}"
    )
    lines = ["", header, "-" * len(header)]
    for f in found:
        per_image = 1000 * f.cpu_seconds / f.images if f.images else float("inf")
        lines.append(
            f"({f.name}) {f.label:<{30 - len(f.name)}} {f.images:>6} {f.seconds:>8.2f} "
            f"{f.images_per_s:>8.1f} {f.cpu_seconds:>7.2f} {per_image:>6.2f}"
        )
    return lines


def summary(rows: list[Row], found: list[Floor]) -> dict:
    """The ratios the report states: each row against (a), (b) and the floors."""
    a, b = fastest(rows, "a"), fastest(rows, "b")
    net, cpu = fastest(found, "c-net"), fastest(found, "c-cpu")
    binding = min((net, cpu), key=lambda f: f.images_per_s)
    both = 1 / (1 / net.images_per_s + 1 / cpu.images_per_s)  # the two on the same cores
    out = {
        "a_over_b": a.images_per_s / b.images_per_s,
        "a_images_per_s": a.images_per_s,
        "b_images_per_s": b.images_per_s,
        "fetch_floor_images_per_s": net.images_per_s,
        "cpu_floor_images_per_s": cpu.images_per_s,
        "binding_floor": binding.name,
        "floors_in_series_images_per_s": both,
        "a_over_floors_in_series": a.images_per_s / both,
    }
    for name in host_names():
        d = fastest(rows, name)
        out[f"{name}_over_a"] = d.images_per_s / a.images_per_s
        out[f"{name}_peak"] = max(r.peak for r in rows if r.name == name)
        spacings = [r.least_spacing for r in rows if r.name == name and r.least_spacing]
        out[f"{name}_least_spacing"] = min(spacings, default=None)
        medians = [r.median_spacing for r in rows if r.name == name and r.median_spacing]
        out[f"{name}_median_spacing"] = min(medians, default=None)
        mine = [r for r in rows if r.name == name]
        out[f"{name}_short_gaps"] = sum(r.short_gaps for r in mine)
        out[f"{name}_gaps"] = sum(r.gaps for r in mine)
    return out


def summary_lines(s: dict) -> list[str]:
    lines = [
        "",
        f"(a) / (b): {s['a_over_b']:.3f}x ({s['a_images_per_s']:.0f} vs "
        f"{s['b_images_per_s']:.0f} images/s, fastest runs)",
        f"floors: fetch {s['fetch_floor_images_per_s']:.0f}, CPU "
        f"{s['cpu_floor_images_per_s']:.0f} images/s; binding: ({s['binding_floor']}); both on "
        f"the same cores, one after the other: {s['floors_in_series_images_per_s']:.0f} images/s,"
        f" (a) at {s['a_over_floors_in_series']:.2f}x of that",
    ]
    for name in host_names():
        gap = s[f"{name}_least_spacing"]
        median = s[f"{name}_median_spacing"]
        gap = "-" if gap is None else f"{1000 * gap:.1f} ms (median {1000 * median:.1f} ms)"
        short = f"{s[f'{name}_short_gaps']} of {s[f'{name}_gaps']} gaps under half the delay"
        lines.append(
            f"({name}) 20 hosts, host_concurrency {HOST_CONCURRENCY}: {s[f'{name}_over_a']:.2f}x"
            f" (a)'s images/s; peak per host {s[f'{name}_peak']}, least spacing {gap}; {short}"
        )
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def format_report(rows, found, checks, s, load_before: str) -> str:
    lines = run_lines(rows) + floor_lines(found) + summary_lines(s)
    lines += target_lines(checks, width=36, value_width=9, rule=64)
    lines += ["", f"{cpu_model()}; before: {load_before}", f"after: {load_line()}"]
    return "\n".join(lines)


def results(rows, found, checks, s, count: int, load_before: str, port: int) -> dict:
    return {
        "images": {"count": count, "seed": SEED, "generator": GENERATOR, "folder": str(IMAGES)},
        "cpu_model": cpu_model(),
        "load_before": load_before,
        "config": {"ours": OURS.as_json(), "hosts": hosts_setup(port, 0.0)[0].as_json()},
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
        "floors": [{**asdict(f), "images_per_s": f.images_per_s} for f in found],
        "summary": s,
        "targets": [{k: v for k, v in check.items() if k != "format"} for check in checks],
    }


# --- main --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5000, help="images to download per run")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every row")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 images, 1 round")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.images, args.repeat = 500, 1
    if args.images < 1 or args.repeat < 1:
        build_parser().error("--images and --repeat must be at least 1")
    return args


def one_round(server: Server, count: int, paths: list[Path], inputs: dict) -> tuple[list, list]:
    """(a), (b), (d) at each delay, then the floors."""
    rows = [
        measure("a", "ours, not binding", count, run_ours(inputs["a"], OURS, LOOPBACK), server),
        measure("b", "img2dataset, bare", count, lambda out: run_bare(inputs["b"], out), server),
    ]
    for delay, name in zip(HOST_DELAYS, host_names(), strict=True):
        config, safety = hosts_setup(server.port, delay)
        run = run_ours(inputs["d"], config, safety)
        label = f"ours, 20 hosts, delay {delay:g}"
        rows.append(measure(name, label, count, run, server, delay))
    return rows, floors(paths[:count], server.port)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_line()
    # Every row: OpenCV's decoder pixel cap as the stage sets it; no albumentations update check.
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(BASE.max_image_area)
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    import img2dataset  # noqa: F401  (imported before any clock, by (a) and (b))

    paths = images(max(args.images, WARM_UP_IMAGES))
    LOG.write_text("")
    server = Server(len(paths))
    rows, found = [], []
    try:
        candidates = candidate_table(loopback_urls(server.base, args.images))
        inputs = {
            "a": candidates,
            "b": url_list(candidates, "download-input"),
            "d": candidate_table(host_urls(server.port, args.images)),
        }
        warm = candidate_table(loopback_urls(server.base, WARM_UP_IMAGES))
        warm_input = url_list(warm, "download-input-warm-up")
        print(f"serving {len(paths)} images at {server.base}; warming up ...", file=sys.stderr)
        measure("a", "warm-up", WARM_UP_IMAGES, run_ours(warm, OURS, LOOPBACK), server)
        measure("b", "warm-up", WARM_UP_IMAGES, lambda out: run_bare(warm_input, out), server)
        for i in range(args.repeat):
            print(f"round {i + 1} of {args.repeat} ...", file=sys.stderr)
            got, floored = one_round(server, args.images, paths, inputs)
            rows += got
            found += floored
    finally:
        server.stop()
    checks, s = targets(rows), summary(rows, found)
    print(format_report(rows, found, checks, s, load_before))
    if args.json:
        found_all = results(rows, found, checks, s, args.images, load_before, server.port)
        write_json(args.json, args, found_all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
