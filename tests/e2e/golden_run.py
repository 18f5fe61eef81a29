"""The golden run: `curate run demo` and `curate run mmc4` on the mini web (seed 0), reduced to
what must not change when the code is reshaped: every stage's accounting (stats.json tallies and
counts), the final samples (URL and caption), and the interleaved documents. The mini web is
served on one fixed port, ``PORT``: the uids hash the URL, port included, and the dedup breaks
ties between identical images by uid, so another port may keep the other copy of a duplicate.

    python tests/e2e/golden_run.py OUT_DIR     # record into tests/e2e/golden/

``tests/e2e/test_golden.py`` runs the same roads and compares with the record.
"""

import json
import os
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

GOLDEN = Path(__file__).parent / "golden"
# Settings chosen so nothing depends on the machine's load: slow URLs answer after 8 s, past
# the 4 s timeout; every other answer has 4 s.
DOWNLOAD_ARGS = (
    "--image-size 128 --processes 1 --threads 16 --timeout 4 --samples-per-shard 50"
    " --host-concurrency 16 --host-delay 0"  # our own loopback server
)
SCORE_ARGS = "--model tiny-clip --pretrained miniweb --device cpu --workers 1 --batch-size 64"
ROADS = {
    "demo": {"n_shapes": 40, "score_args": SCORE_ARGS + " --watermark-min-clip 0.35"},
    "mmc4": {"n_shapes": 30, "score_args": SCORE_ARGS + " --watermark none"},
}
VOLATILE = {"resumed", "inputs"}
PORT = 38419


def _imports():
    if os.environ.get("GOLDEN_OLD_LAYOUT"):  # recording with the code before the reshaping
        from pipeline.miniweb import WARC_FILE, build, free_port, serve
        from pipeline.train.miniweb_clip import train_miniweb_clip

        from jobs import cli
    else:
        from vlcurate.jobs import cli
        from vlcurate.miniweb import WARC_FILE, build, free_port, serve
        from vlcurate.miniweb.clip import train_miniweb_clip
    return cli, WARC_FILE, build, free_port, serve, train_miniweb_clip


def unported(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "miniweb", text)


def run_road(road: str, root: Path) -> Path:
    cli, WARC_FILE, build, _, serve, train_miniweb_clip = _imports()
    train_miniweb_clip(progress=False)  # --pretrained miniweb (cached after the first time)
    port = PORT
    build(root / "web", seed=0, port=port, n_shapes=ROADS[road]["n_shapes"])
    out = root / "out"
    with serve(root / "web", port=port, slow_seconds=8):
        code = cli.main(
            [
                "run",
                road,
                "--input",
                str(root / "web" / WARC_FILE),
                "--output",
                str(out),
                "--master",
                "local[2]",
                "--no-progress",
                "--allow-private-network",
                f"127.0.0.1:{port}",
                "--download-args",
                DOWNLOAD_ARGS,
                "--score-args",
                ROADS[road]["score_args"],
            ]
        )
    assert code == 0, f"curate run {road} failed ({code})"
    return out


def accounting(stats: dict) -> dict:
    """The tallies and plain counts of a stats.json; names, paths, settings and floats go."""
    kept = {}
    for key, value in stats.items():
        if key in VOLATILE or key.startswith("_"):
            continue
        if key in ("in", "kept") or (isinstance(value, int) and not isinstance(value, bool)):
            kept[key] = value
        elif key == "dropped" or (isinstance(value, dict) and {"in", "kept"} <= value.keys()):
            kept[key] = value
    return kept


def interleaved_documents(folder: Path) -> list[dict]:
    docs = []
    for tar in sorted(folder.glob("*.tar")):
        with tarfile.open(tar) as t:
            for member in sorted(t.getmembers(), key=lambda m: m.name):
                if not member.name.endswith(".json"):
                    continue
                doc = json.loads(unported(t.extractfile(member).read().decode()))
                docs.append(
                    {
                        "url": doc.get("url"),
                        "text_list": doc["text_list"],
                        "images": [
                            [i["raw_url"], i["matched_text_index"], round(i["matched_sim"], 3)]
                            for i in doc["image_info"]
                        ],
                    }
                )
    return sorted(docs, key=lambda d: d["url"] or "")


def capture(out: Path) -> dict:
    record = {"stages": {}}
    for stats in sorted(out.glob("*/stats.json")):
        record["stages"][stats.parent.name] = accounting(json.loads(stats.read_text()))
    sidecars = sorted((out / "final").glob("0*.parquet"))
    if sidecars:
        rows = [
            r for f in sidecars for r in pq.read_table(f, columns=["url", "caption"]).to_pylist()
        ]
        record["final_samples"] = sorted([unported(r["url"]), r["caption"]] for r in rows)
        uids = np.load(out / "final" / "uids.npy")
        record["final_uids"] = [f"{a:016x}{b:016x}" for a, b in uids.tolist()]
    if (out / "interleaved").exists():
        record["documents"] = interleaved_documents(out / "interleaved")
    return record


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    for road in ROADS:
        record = capture(run_road(road, work / road))
        (GOLDEN / f"{road}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{road}: {json.dumps(record['stages'])[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
