"""Throughput of the score stage, in images per second, against a naive per-image loop.

    .venv/bin/python benchmarks/score.py                         # CPU: tiny-clip and ViT-B-32
    .venv/bin/python benchmarks/score.py --quick                 # smoke run
    python benchmarks/score.py --device cuda --images 40000 --shard-size 10000 \\
        --models ViT-B-32 --workers 15 --batch-size 512          # one GPU

Images: ``--images`` JPEGs of 256x256 (img2dataset's default size), random crops of five
``skimage.data`` photos at quality 80-95, written as WebDataset shards of ``--shard-size``
samples under ``benchmarks/_work/score/`` with short captions and, one in 25, a long one
(about 65 tokens). CLIP weights are random
(``pretrained=None``): the speed does not depend on the values, and nothing is downloaded.

Rows, each timed by the wall clock after the models are loaded and one warm-up shard is scored:

(a) the pipeline, ``vlcurate.pipeline.score.stage.score_shards`` over every shard, CLIP only
    (faces, NSFW, watermark and pHash off): the stage's input checks, done markers and stats,
    JPEG decode, resize, crop and tokenising in ``--workers`` DataLoader processes, uint8
    batches to the device (pinned memory on CUDA), CLIP under inference mode (fp16 autocast on
    CUDA), parquet + embeddings written.
(b) the same with the default scorers on (pHash, faces: ``--full-faces``, open_nsfw): what
    ``curate score --watermark none`` costs (tiny-clip only; on CUDA, every model).
(c) the naive loop a newcomer writes: for each image, open it with PIL, apply open_clip's
    preprocess, encode the image and its caption one at a time, cosine (on ``--naive-images``).
(c0) the naive reading loop, one core: Pillow decode + open_clip's preprocess + the tokenizer.
(d) each scorer alone, in this process, over ``--detector-images`` images: decode only, pHash
    (imagehash, and ours: thumbnail + batched DCT), Haar, MTCNN per image, MTCNN batched in
    torch, open_nsfw on ready 256 px batches, OCR watermark (on ``--ocr-images``).
(e), (f) with ``--ceilings``: CLIP alone on batches already on the device; the reading alone
    (the stage's DataLoader, no model) with 1 and ``--workers`` workers, per core.
(g) the bare JPEG decode, one core: Pillow to RGB, and libjpeg-turbo through simplejpeg.
(h) with ``--command``: the whole ``curate score`` command, CLIP only with the trivial 224 px
    model of ``benchmarks/configs/trivial-224.json``, on 2,000 and 10,000 images; the marginal
    rate between them leaves out the start-up.

Targets (issue 18), as ratios within one run: on the CPU, (a) >= 3x (c) for tiny-clip; (f) at
224 px per core >= 2.5x (c0) and >= 0.65x Pillow's decode (g); (h)'s marginal rate >= 4x (c0).
On one H100/H200: (a) ViT-B-32 fp16 >= 10,000 images/s; (b) >= 0.8x (a).
"""

import argparse
import io
import json
import os
import platform
import sys
import tarfile
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work" / "score"
sys.path.insert(0, str(ROOT))

CAPTIONS = [
    "a photo of an astronaut",
    "a cup of coffee on a table",
    "a cat looking at the camera",
    "a rocket on the launch pad",
    "a black horse silhouette",
    "stock photo of a landscape",
]
LONG_CAPTION = " ".join(["a long product description with many words"] * 9)  # about 65 tokens
LONG_EVERY = 25  # one caption in 25 is long, as in alt text: text batches are not uniform


def _photos():
    from skimage import data

    return [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        np.stack([(data.horse() * 255).astype(np.uint8)] * 3, axis=-1),
    ]


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    photo = _PHOTOS[seed % len(_PHOTOS)]
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 2, min(h, w)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    image = Image.fromarray(photo[y : y + side, x : x + side]).resize((256, 256))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(80, 96)))
    return buffer.getvalue()


_PHOTOS = None


def _init():
    global _PHOTOS
    _PHOTOS = _photos()


def write_shards(folder: Path, n: int, shard_size: int, start: int = 0) -> list[str]:
    """Shards of 256x256 JPEGs as img2dataset writes them (tar, parquet sidecar and
    ``_stats.json``, which the score stage checks); reused when already there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f"done-{n}-{shard_size}-long{LONG_EVERY}-sidecars"
    shards = [str(folder / f"{i:05d}.tar") for i in range((n + shard_size - 1) // shard_size)]
    if stamp.exists():
        return shards
    with Pool(os.cpu_count(), initializer=_init) as pool:
        images = pool.map(_jpeg, range(start, start + n), chunksize=64)
    for s, path in enumerate(shards):
        rows = []
        with tarfile.open(path, "w") as tar:
            for i in range(s * shard_size, min(n, (s + 1) * shard_size)):
                key = f"{s:05d}{i:06d}"
                url = f"http://bench/{key}.jpg"
                meta = json.dumps({"uid": key, "url": url, "key": key}).encode()
                caption = LONG_CAPTION if i % LONG_EVERY == 0 else CAPTIONS[i % len(CAPTIONS)]
                for ext, data in (("jpg", images[i]), ("txt", caption.encode()), ("json", meta)):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                rows.append({"key": key, "url": url, "status": "success"})
        stem = path.removesuffix(".tar")
        pq.write_table(pa.Table.from_pylist(rows), stem + ".parquet")
        stats = {"count": len(rows), "successes": len(rows), "failed_to_download": 0}
        Path(stem + "_stats.json").write_text(json.dumps(stats))
    stamp.touch()
    return shards


def clock(fn) -> float:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def pipeline_row(name, shards, warm, config, device, n) -> dict:
    import shutil

    from vlcurate.pipeline.score.stage import score_shards

    config = replace(config, device=device)
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    score_shards([warm], str(out / "warm"), config, progress=False)  # models, kernels: warm

    def run():  # the whole stage: input checks, the stream, the files, done markers, stats
        score_shards(shards, str(out / "timed"), config, progress=False)

    seconds = clock(run)
    return {
        "row": name,
        "model": config.model,
        "images": n,
        "seconds": seconds,
        "images_per_s": n / seconds,
    }


def ceiling_rows(config, shards, device: str, n: int) -> list[dict]:
    """(e) the device alone: CLIP on batches already on the device; (f) the reading alone: the
    DataLoader (tar, decode, resize, tokenise in the workers) with no model behind it."""
    import torch

    from vlcurate.pipeline.score.models import Scorers

    clip = Scorers(config, device).clip
    size = clip.image_size
    pixels = torch.randint(0, 255, (config.batch_size, size, size, 3), dtype=torch.uint8)
    tokens = clip.tokenizer(["a photo of a cat on a mat"] * config.batch_size)
    pixels, tokens = pixels.to(device), tokens.to(device)
    clip.score_batch(pixels, tokens)
    batches = max(1, n // config.batch_size)
    seconds = clock(lambda: [clip.score_batch(pixels, tokens) for _ in range(batches)])
    rows = [
        {
            "row": "(e) device alone: CLIP on resident batches",
            "model": config.model,
            "images": batches * config.batch_size,
            "seconds": seconds,
            "images_per_s": batches * config.batch_size / seconds,
        }
    ]
    count = 0
    for workers in sorted({1, config.workers}):
        count, seconds = reading(config, clip, shards, device, workers)
        rows.append(
            {
                "row": f"(f) reading alone, {workers} worker(s), per core, {clip.image_size} px",
                "model": config.model,
                "side": clip.image_size,
                "images": count,
                "seconds": seconds * workers,  # per core: the workers' share of the machine
                "images_per_s": count / seconds / workers,
            }
        )
    return rows


def reading(config, clip, shards, device: str, workers: int) -> tuple[int, float]:
    """The DataLoader of the stage (tar, decode, square, tokens in the workers) with no model
    behind it: ``(images, seconds)``."""
    from vlcurate.pipeline.score.batches import Batches
    from vlcurate.pipeline.score.passes import FirstPass

    first = FirstPass(clip.image_size, clip.squash, clip.tokenizer, "none", False)
    count = 0

    def read():
        nonlocal count
        batches = Batches(shards, first, config.batch_size, workers)
        for batch in batches.loader(workers, device):
            count += len(batch["pixel_rows"])
            batches.release(batch)

    seconds = clock(read)
    return count, seconds


def floor_rows(shards, n: int, side: int = 224) -> list[dict]:
    """One core, ``n`` images held in memory: the bare JPEG decode (Pillow, and libjpeg-turbo
    through simplejpeg, which the reading path uses) and the naive reading loop a newcomer
    writes (Pillow decode + open_clip's preprocess + the tokenizer, per image)."""
    import open_clip
    import simplejpeg
    import torch
    from PIL import Image

    from vlcurate.pipeline.score.shards import samples

    torch.set_num_threads(1)
    pairs = [(s["jpg"], s["txt"].decode()) for _, s in samples(shards[0], lambda i: i < n)]
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    def naive():
        for data, caption in pairs:
            preprocess(Image.open(io.BytesIO(data)))
            tokenizer([caption])

    loops = {
        "(g) bare JPEG decode, Pillow, to RGB": lambda: [
            Image.open(io.BytesIO(d)).convert("RGB") for d, _ in pairs
        ],
        "(g) bare JPEG decode, libjpeg-turbo (simplejpeg)": lambda: [
            simplejpeg.decode_jpeg(d) for d, _ in pairs
        ],
        f"(c0) naive reading loop: Pillow + open_clip preprocess {side} px + tokens": naive,
    }
    rows = []
    for name, loop in loops.items():
        loop()  # warm
        seconds = clock(loop)
        rows.append(
            {
                "row": name,
                "images": len(pairs),
                "seconds": seconds,
                "images_per_s": len(pairs) / seconds,
            }
        )
    torch.set_num_threads(os.cpu_count() or 1)
    return rows


def command_rows(workers: int, sizes=(2000, 10000)) -> list[dict]:
    """The whole ``curate score`` command, CLIP only with a trivial 224 px model (one layer a
    tower: the reading is all that costs), ``workers`` workers, on two shard sets: the marginal
    rate between them leaves out the start (imports, model load) that does not grow with a
    run."""
    import subprocess

    config = ROOT / "benchmarks" / "configs" / "trivial-224.json"
    curate = str(Path(sys.executable).parent / "curate")
    times = {}
    for n in sizes:
        folder = WORK / f"command-{n}"
        write_shards(folder, n, 1000, start=3 * 10**6)
        out = WORK / f"command-out-{n}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        argv = [
            curate,
            "score",
            "--input",
            str(folder),
            "--output",
            str(out),
            "--model",
            str(config),
            "--pretrained",
            "none",
            "--faces",
            "none",
            "--nsfw",
            "none",
            "--watermark",
            "none",
            "--no-phash",
            "--workers",
            str(workers),
            "--device",
            "cpu",
            "--no-progress",
        ]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times[n] = time.perf_counter() - start
    small, large = sizes
    rate = (large - small) / (times[large] - times[small])
    return [
        {
            "row": f"(h) curate score, whole command, {n} images",
            "model": "trivial-224",
            "images": n,
            "seconds": t,
            "images_per_s": n / t,
        }
        for n, t in times.items()
    ] + [
        {
            "row": f"(h) curate score, marginal rate {small} -> {large}",
            "model": "trivial-224",
            "images": large - small,
            "seconds": times[large] - times[small],
            "images_per_s": rate,
        }
    ]


def naive_row(model: str, shards, device: str, n: int) -> dict:
    """Open, preprocess, encode one image and its caption at a time."""
    import torch
    from PIL import Image

    from vlcurate.pipeline.score.clip import ClipScorer

    clip = ClipScorer(model, None, device)
    samples = []
    with tarfile.open(shards[0]) as tar:
        members = [m for m in tar if m.isfile()]
        files = {m.name: tar.extractfile(m).read() for m in members}
    keys = sorted({name.split(".")[0] for name in files})[:n]
    samples = [(files[f"{k}.jpg"], files[f"{k}.txt"].decode()) for k in keys]

    def one(data: bytes, caption: str) -> float:
        image = clip.preprocess(Image.open(io.BytesIO(data))).unsqueeze(0).to(device)
        tokens = clip.tokenizer([caption]).to(device)
        with torch.inference_mode(), clip._autocast():
            a = torch.nn.functional.normalize(clip.net.encode_image(image).float(), dim=-1)
            b = torch.nn.functional.normalize(clip.net.encode_text(tokens).float(), dim=-1)
        return float((a * b).sum())

    for data, caption in samples[:8]:
        one(data, caption)
    seconds = clock(lambda: [one(d, c) for d, c in samples])
    return {
        "row": "(c) naive per-image loop",
        "model": model,
        "images": len(samples),
        "seconds": seconds,
        "images_per_s": len(samples) / seconds,
    }


def detector_rows(shards, n: int, ocr_n: int, device: str = "cpu") -> list[dict]:
    from vlcurate.pipeline.score.images import decode
    from vlcurate.pipeline.score.shards import image_bytes, samples

    data = [image_bytes(s) for _, s in samples(shards[0], lambda i: i < n)]
    images = [decode(d, phash=False)[0] for d in data]
    rows = []

    def add(name, fn, count):
        if count == 0:
            return
        fn(images[:2])
        seconds = clock(lambda: fn(images[:count]))
        rows.append(
            {
                "row": f"(d) {name}",
                "images": count,
                "seconds": seconds,
                "images_per_s": count / seconds,
                "ms_per_image": 1000 * seconds / count,
            }
        )

    add("decode (PIL, to RGB)", lambda _: [decode(d, phash=False) for d in data], len(data))
    import imagehash

    add("pHash (imagehash)", lambda ims: [imagehash.phash(i) for i in ims], len(images))
    from vlcurate.pipeline.score import faces

    haar = faces.HaarFaces()
    add("faces: Haar", lambda ims: [haar.detect(i) for i in ims], len(images))
    if hasattr(faces, "MtcnnFaces"):
        try:
            mtcnn = faces.MtcnnFaces()
            add("faces: MTCNN (ONNX)", lambda ims: [mtcnn.detect(i) for i in ims], len(images))
        except Exception as e:  # not installed here (the GPU machine)
            print(f"MTCNN skipped: {e}", file=sys.stderr)
    import torch

    from vlcurate.pipeline.score import phash
    from vlcurate.pipeline.score.nsfw import OpenNsfw
    from vlcurate.pipeline.score.pixels import square

    arrays = [np.asarray(i) for i in images]

    def our_phash(ims):
        for i in range(0, len(ims), 32):
            phash.hashes(torch.from_numpy(np.stack([phash.thumbnail(a) for a in ims[i : i + 32]])))

    from vlcurate.pipeline.score.mtcnn_torch import TorchMtcnn, letterbox

    batched = TorchMtcnn(device=device)

    def run_batched_faces(ims):
        for i in range(0, len(ims), 32):
            chunk = ims[i : i + 32]
            frames = np.zeros((len(chunk), batched.side, batched.side, 3), np.uint8)
            scales = [letterbox(a, batched.side, out=f) for a, f in zip(chunk, frames, strict=True)]
            sizes = [(a.shape[1], a.shape[0]) for a in chunk]
            batched.detect(torch.from_numpy(frames).to(device), scales, sizes)

    add(
        f"faces: MTCNN batched in torch ({batched.name}, batches of 32)",
        lambda _: run_batched_faces(arrays),
        len(arrays),
    )
    add("pHash (ours: numpy thumbnail + batched DCT)", lambda _: our_phash(arrays), len(arrays))
    squares = torch.from_numpy(np.stack([square(a, 256) for a in arrays]))
    nsfw = OpenNsfw(device=device)

    def run_nsfw(_):
        for i in range(0, len(squares), 32):
            nsfw.score_pixels(squares[i : i + 32].to(device))

    add(f"NSFW: open_nsfw on ready 256 px batches of 32 ({nsfw.runner})", run_nsfw, len(arrays))
    try:
        from vlcurate.pipeline.score.watermark import OcrWatermark

        ocr = OcrWatermark()
        add("watermark: OCR + stock marks", lambda ims: [ocr.detect(i) for i in ims], ocr_n)
    except Exception as e:
        print(f"OCR skipped: {e}", file=sys.stderr)
    return rows


def reading_checks(rows: list[dict]) -> list[dict]:
    """Issue 18's CPU targets for the reading path, as ratios within this run."""
    rate = {r["row"]: r["images_per_s"] for r in rows}
    naive = next((v for k, v in rate.items() if k.startswith("(c0)")), None)
    pillow = rate.get("(g) bare JPEG decode, Pillow, to RGB")
    checks = []

    def check(target, value, goal):
        checks.append({"target": target, "value": value, "goal": goal, "met": value >= goal})

    for row in rows:
        name, value = row["row"], row["images_per_s"]
        if name.startswith("(f)") and row.get("side") == 224:
            if naive:
                check(f"{name} >= 2.5x naive loop", value / naive, 2.5)
            if pillow:
                check(f"{name} >= 0.65x Pillow decode", value / pillow, 0.65)
        if name.startswith("(h) curate score, marginal") and naive:
            check(
                "curate score (trivial 224, marginal) >= 4x naive one-core loop", value / naive, 4
            )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--images", type=int, default=2000, help="images in the timed shards")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    parser.add_argument("--models", default="tiny-clip,ViT-B-32", help="comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch")
    parser.add_argument("--naive-images", type=int, default=300, help="images for row (c)")
    parser.add_argument("--detector-images", type=int, default=200, help="images for row (d)")
    parser.add_argument("--ocr-images", type=int, default=20, help="images for the OCR row")
    parser.add_argument(
        "--full-images", type=int, default=1000, help="images for row (b), the default scorers on"
    )
    parser.add_argument("--full-faces", default="haar", help="face detector for row (b)")
    parser.add_argument(
        "--ceilings", action="store_true", help="add rows (e) CLIP alone, (f) reading alone"
    )
    parser.add_argument(
        "--floor-images", type=int, default=400, help="images for rows (g) decode, (c0) naive"
    )
    parser.add_argument(
        "--command", action="store_true", help="add rows (h): the whole curate score command"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.images, args.shard_size, args.naive_images = 200, 100, 40
        args.detector_images, args.ocr_images, args.full_images = 20, 3, 100
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vlcurate.pipeline.score.stage import ScoreConfig

    shards = write_shards(
        WORK / f"shards-{args.images}-{args.shard_size}", args.images, args.shard_size
    )
    (warm,) = write_shards(WORK / "warm", 2 * args.batch_size, 2 * args.batch_size, start=10**6)
    full_n = min(args.full_images, args.images)
    full_shards = (
        write_shards(WORK / f"full-{full_n}", full_n, full_n, start=2 * 10**6) if full_n else []
    )
    rows = []
    for model in args.models.split(","):
        config = ScoreConfig(
            model=model,
            pretrained=None,
            device=args.device,
            batch_size=args.batch_size,
            workers=args.workers,
            faces="none",
            nsfw="none",
            watermark="none",
            phash=False,
        )
        rows.append(
            pipeline_row("(a) pipeline, CLIP only", shards, warm, config, args.device, args.images)
        )
        print(rows[-1], flush=True)
        if full_n and (model == "tiny-clip" or args.device.startswith("cuda")):
            full = replace(config, faces=args.full_faces, nsfw="open-nsfw", phash=True)
            name = f"(b) pipeline, pHash + faces ({args.full_faces}) + open_nsfw"
            try:
                rows.append(pipeline_row(name, full_shards, warm, full, args.device, full_n))
                print(rows[-1], flush=True)
            except Exception as e:  # a detector this machine's OpenCV lacks
                print(f"{name}: skipped: {type(e).__name__}: {e}", file=sys.stderr)
        if args.ceilings:
            rows += ceiling_rows(config, shards, args.device, args.images)
            print(rows[-2:], flush=True)
        if args.naive_images:
            rows.append(naive_row(model, shards, args.device, args.naive_images))
            print(rows[-1], flush=True)
    if args.floor_images:
        rows += floor_rows(shards, min(args.floor_images, args.shard_size))
        print(rows[-3:], flush=True)
    if args.command:
        rows += command_rows(args.workers)
        print(rows[-1], flush=True)
    if args.detector_images:
        rows += detector_rows(shards, args.detector_images, args.ocr_images, args.device)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print()
    print(f"{'row':<58} {'model':<10} {'images':>7} {'s':>7} {'images/s':>9}")
    for r in rows:
        print(
            f"{r['row']:<58} {r.get('model', '-'):<10} {r['images']:>7} {r['seconds']:>7.2f} "
            f"{r['images_per_s']:>9,.1f}"
        )
    checks = []
    by = {}  # the fastest row of each kind and model
    for r in sorted(rows, key=lambda r: r["images_per_s"]):
        by[(r["row"][:3], r.get("model"))] = r
    if ("(a)", "tiny-clip") in by and ("(c)", "tiny-clip") in by:
        ratio = by[("(a)", "tiny-clip")]["images_per_s"] / by[("(c)", "tiny-clip")]["images_per_s"]
        checks.append(
            {
                "target": "tiny-clip: pipeline >= 3x naive loop",
                "value": ratio,
                "goal": 3,
                "met": ratio >= 3,
            }
        )
    checks += reading_checks(rows)
    if args.device.startswith("cuda") and ("(a)", "ViT-B-32") in by:
        rate = by[("(a)", "ViT-B-32")]["images_per_s"]
        checks.append(
            {
                "target": "ViT-B-32 fp16 on one GPU >= 10,000 images/s",
                "value": rate,
                "goal": 10000,
                "met": rate >= 10000,
            }
        )
        if ("(b)", "ViT-B-32") in by:
            share = by[("(b)", "ViT-B-32")]["images_per_s"] / rate
            checks.append(
                {
                    "target": "every default scorer >= 0.8x CLIP only",
                    "value": share,
                    "goal": 0.8,
                    "met": share >= 0.8,
                }
            )
    for c in checks:
        print(
            f"{c['target']:<50} {c['value']:>10,.2f} goal {c['goal']:,}  "
            f"{'met' if c['met'] else 'NOT MET'}"
        )
    print(machine)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"settings": vars(args), "machine": machine, "rows": rows, "checks": checks},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
