"""What an object store costs: extract and score with input and output on local disk, then the
same with both in S3 (moto's server on 127.0.0.1, real s3fs and botocore), in one run.

    .venv/bin/python benchmarks/storage.py                 # 200 MiB of WARC, 2,000 images
    .venv/bin/python benchmarks/storage.py --mb 20 --shard-size 500 --repeat 5   # quick

Extract: the benchmark corpus (``benchmarks/extract.py``'s, by default the same 200 MiB in 4
files; ``--mb`` MiB of WARC in ``--parts`` files), through the stage runner in this process
(``run_stage`` with the local executor: input expansion, done markers, atomic parquet writes,
stats.json), from ``benchmarks/_work`` to ``benchmarks/_work``, and from the bucket to the
bucket. Score: ``--images`` 256 px JPEGs in shards of ``--shard-size`` (``benchmarks/score.py``'s,
by default the same 2,000 in 2), scored by ``score_shards`` with the tiny-clip model (random
weights, CLIP only, one DataLoader worker): disk to disk, bucket to bucket. Uploading the inputs
is not timed; each row is the fastest of ``--repeat`` runs, each into a fresh output. The server
runs in its own process (``tests/s3.py``), so its request handling shares the 2 cores with the
stage, as a real store's would not: the overhead measured here is an upper bound of the
client's cost on loopback; ``cpu s`` is the client's CPU (this process and its workers),
``server s`` the server process's, to tell them apart, and ``requests`` the S3 requests this
process sent (the DataLoader workers read the local copies the shard checks made).
Target: a wall clock overhead under 15% for each stage. What a run costs once (the listings of
the output, the clean-up, stats.json: about five round trips) weighs on a few small files as it
does not on a dump's 90,000; ``--mb 20`` shows it.
"""

import argparse
import collections
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import WORK, load_line, target_lines, write_json  # noqa: E402

TARGET = 0.15
REQUESTS = collections.Counter()  # S3 requests of this process, by method


def _count_requests() -> None:
    """Count every s3fs request (``_call_s3``, and ``call_s3``, its blocking twin)."""
    import s3fs
    from fsspec.asyn import sync_wrapper

    original = s3fs.S3FileSystem._call_s3

    async def counted(self, method, *args, **kwargs):
        REQUESTS[method] += 1
        return await original(self, method, *args, **kwargs)

    s3fs.S3FileSystem._call_s3 = counted
    s3fs.S3FileSystem.call_s3 = sync_wrapper(counted)


def _upload(paths: list[str], prefix: str) -> list[str]:
    import fsspec

    fs = fsspec.filesystem("s3")
    urls = [f"{prefix}/{Path(p).name}" for p in paths]
    fs.put(paths, urls)
    return urls


def extract_rows(s3, mb: int, parts: int, repeat: int) -> list[dict]:
    import extract as bench_extract

    from vlcurate.pipeline.executors import LocalExecutor
    from vlcurate.pipeline.extract.stage import ExtractConfig, ExtractStage
    from vlcurate.pipeline.stage import run_stage

    local, _ = bench_extract.corpus(mb, parts)
    remote = _upload(local, s3.prefix("extract-in"))

    def run(inputs, output):
        return run_stage(
            ExtractStage(inputs, output, ExtractConfig()), LocalExecutor(progress=False)
        )

    run(local[:1], str(WORK / "storage" / "warm"))  # imports, the compiled pass: warm
    run(remote[:1], s3.prefix("warm"))  # the S3 client, its connections: warm
    rows = _alternate(s3, "extract", local, remote, repeat, run)
    for row in rows:
        row["items"] = row.pop("out")["kept"]
    return rows


def _alternate(s3, stage: str, local, remote, repeat: int, fn) -> list[dict]:
    """``repeat`` runs of ``fn(inputs, output)`` on local disk and on S3, taking turns (so a
    change in the machine's load falls on both), the fastest of each."""
    places = (("local disk", local), ("S3 (moto, 127.0.0.1)", remote))
    runs = {where: [] for where, _ in places}
    for _ in range(repeat):
        for where, inputs in places:
            runs[where].append(_timed(s3, fn, inputs, _output(s3, where, stage)))
    return [
        {"stage": stage, "where": where, **min(found, key=lambda r: r["seconds"])}
        for where, found in runs.items()
    ]


def _cpu_now(pid: int) -> tuple[float, float]:
    """CPU seconds so far of this process and its reaped children, and of process ``pid``."""
    import resource

    mine = time.process_time() + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return mine, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(s3, fn, *args, **kwargs) -> dict:
    """One call: wall seconds, the client's CPU seconds (this process and its workers) and the
    S3 server's."""
    cpu, server = _cpu_now(s3.proc.pid)
    REQUESTS.clear()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    cpu_end, server_end = _cpu_now(s3.proc.pid)
    return {
        "seconds": seconds,
        "cpu_s": cpu_end - cpu,
        "server_cpu_s": server_end - server,
        "requests": dict(REQUESTS),
        "out": out,
    }


def score_rows(s3, images: int, shard_size: int, repeat: int) -> list[dict]:
    import score as bench_score

    from vlcurate.pipeline.score.stage import ScoreConfig, score_shards

    folder = WORK / "storage" / f"shards-{images}-{shard_size}"
    local = bench_score.write_shards(folder, images, shard_size)
    sidecars = [p.removesuffix(".tar") + s for p in local for s in (".parquet", "_stats.json")]
    prefix = s3.prefix("score-in")
    remote = _upload(local, prefix)
    _upload(sidecars, prefix)
    config = ScoreConfig(
        model="tiny-clip",
        pretrained=None,
        device="cpu",
        batch_size=256,
        workers=1,
        faces="none",
        nsfw="none",
        watermark="none",
        phash=False,
    )
    score_shards(local[:1], str(WORK / "storage" / "warm-score"), config, progress=False)
    rows = _alternate(
        s3, "score", local, remote, repeat, lambda i, o: score_shards(i, o, config, progress=False)
    )
    for row in rows:
        row.pop("out")
        row["items"] = images
    return rows


def _output(s3, where: str, stage: str) -> str:
    if where.startswith("S3"):
        return s3.prefix(f"{stage}-out")
    path = WORK / "storage" / f"{stage}-out-{uuid.uuid4().hex[:8]}"
    return str(path)


def report(rows: list[dict]) -> tuple[str, list[dict]]:
    head = ("stage", "where", "items", "seconds", "items/s", "overhead", "cpu s", "server s")
    lines = ["{:<8} {:<22} {:>7} {:>8} {:>9} {:>9} {:>7} {:>8} {:>8}".format(*head, "requests")]
    lines.append("-" * len(lines[0]))
    checks, base = [], {}
    for row in rows:
        rate = row["items"] / row["seconds"]
        if row["where"] == "local disk":
            base[row["stage"]] = row["seconds"]
            over = ""
        else:
            row["overhead"] = row["seconds"] / base[row["stage"]] - 1
            over = f"{row['overhead']:+.1%}"
            checks.append(
                {
                    "target": f"{row['stage']}: S3 overhead",
                    "value": row["overhead"],
                    "goal": TARGET,
                    "met": row["overhead"] < TARGET,
                    "format": "{:+.1%}",
                }
            )
        lines.append(
            f"{row['stage']:<8} {row['where']:<22} {row['items']:>7} {row['seconds']:>8.2f} "
            f"{rate:>9,.0f} {over:>9} {row['cpu_s']:>7.2f} {row['server_cpu_s']:>8.2f} "
            f"{sum(row['requests'].values()):>8}"
        )
    lines += target_lines(checks, 22, 9, len(lines[0]))
    sent = [f"  {r['stage']}: {_methods(r['requests'])}" for r in rows if r["requests"]]
    return "\n".join([*lines, "", "S3 requests by method:", *sent, "", load_line()]), checks


def _methods(requests: dict) -> str:
    return ", ".join(f"{m} {n}" for m, n in sorted(requests.items(), key=lambda kv: -kv[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="MiB of WARC for extract")
    parser.add_argument("--parts", type=int, default=4, help="WARC files (units)")
    parser.add_argument("--images", type=int, default=2000, help="images for score")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per shard")
    parser.add_argument("--repeat", type=int, default=2, help="runs per row; the fastest counts")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    from tests.s3 import MotoS3, apply_env

    (WORK / "storage").mkdir(parents=True, exist_ok=True)
    _count_requests()
    with MotoS3() as s3:
        apply_env(s3.env())
        rows = extract_rows(s3, args.mb, args.parts, args.repeat)
        rows += score_rows(s3, args.images, args.shard_size, args.repeat)
    for path in (WORK / "storage").glob("*-out-*"):
        shutil.rmtree(path, ignore_errors=True)
    text, checks = report(rows)
    print(text)
    if args.json:
        write_json(args.json, args, {"rows": rows, "checks": checks})
    return 0 if all(c["met"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
