"""The select stage's report.html: self-contained, escaped, every reason shown, and it renders in
headless Chromium (Debian's ``chromium``; ``make chromium`` installs it)."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from vlcurate.pipeline.report import pick, thumbnail, write_report

skimage_data = pytest.importorskip("skimage.data")

XSS = "<script>alert(1)</script>"
REASONS = {"low_clip": 20, "nsfw": 12, "watermark": 8}  # and 20 kept: 60 rows
PER_REASON = 6
FUNNEL = [
    (
        "extract",
        {
            "in": 1000,
            "kept": 300,
            "dropped": {"no_image": 650, "not_html": 50},
            "unit": "WARC response record",
        },
    ),
    (
        "filter",
        {
            "in": 300,
            "kept": 80,
            "dropped": {"caption_too_short": 150, "bad_language": 70},
            "unit": "pair",
        },
    ),
    ("select", {"in": 60, "kept": 20, "dropped": REASONS, "unit": "sample"}),
]
THRESHOLDS = {"clip_tiny_clip_sim": [("min 0.28", 0.28)], "nsfw_p": [("max 0.5", 0.5)]}
MODELS = [{"role": "CLIP", "name": "tiny-clip", "weights": "random (not pretrained)"}]
NOTE = "CLIP weights are random: similarities mean nothing"


def _jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(getattr(skimage_data, name)()).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _table() -> pa.Table:
    reasons = [None] * 10 + [""] * 10 + [r for r, n in REASONS.items() for _ in range(n)]
    rng = np.random.default_rng(1)
    n = len(reasons)
    clip = rng.uniform(0.1, 0.45, n).round(3).tolist()
    clip[3] = None
    captions = [f"caption {i} & more" for i in range(n)]
    captions[0] = f"a cat {XSS}"
    return pa.table(
        {
            "uid": [f"u{i:03d}" for i in range(n)],
            "caption": captions,
            "url": [f"http://example.com/{i}.jpg" for i in range(n)],
            "reason": reasons,
            "clip_tiny_clip_sim": pa.array(clip, pa.float32()),
            "nsfw_p": rng.uniform(0, 1, n).round(3).tolist(),
            "watermark_p": pa.array([None] * n, pa.float64()),  # all null: no histogram
            "face_count": rng.integers(0, 3, n).tolist(),
            "width": [640] * n,
            "height": [480] * n,
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Write the report once; the second picked row gets garbage bytes, the third none at all."""
    photos = [_jpeg(name) for name in ("astronaut", "chelsea", "coffee")]
    calls = []

    def images(rows):
        calls.append([r["uid"] for r in rows])
        out = {r["uid"]: photos[i % 3] for i, r in enumerate(rows)}
        out[rows[1]["uid"]] = b"\xff\xd8 this is not a jpeg"
        del out[rows[2]["uid"]]
        return out

    table = _table()
    path = tmp_path_factory.mktemp("report") / "out" / "report.html"
    write_report(
        str(path),
        title="demo recipe (demo/1) on out/demo <b>",
        funnel=FUNNEL,
        table=table,
        thresholds=THRESHOLDS,
        images=images,
        models=MODELS,
        notes=[NOTE],
        per_reason=PER_REASON,
        seed=0,
    )
    return path, calls, table


def _picked(table: pa.Table) -> list[str]:
    groups = [r or "kept" for r in table.column("reason").to_pylist()]
    uids = table.column("uid").to_pylist()
    return [uids[i] for _, _, idx in pick(groups, PER_REASON, 0) for i in idx]


def test_report_is_self_contained_and_escaped(report):
    path, _, _ = report
    html = path.read_text(encoding="utf-8")
    assert not list(path.parent.glob("*.tmp*"))  # written atomically
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html.lower()  # no JavaScript at all, and the caption's is escaped
    assert "a cat &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "out/demo &lt;b&gt;" in html and "caption 5 &amp; more" in html
    assert NOTE in html and "tiny-clip" in html and "random (not pretrained)" in html


def test_funnel_lists_every_stage_reason_and_unit(report):
    html = report[0].read_text(encoding="utf-8")
    for name, stats in FUNNEL:
        assert f"{name} ({stats['unit']})" in html
        for reason in stats["dropped"]:
            assert f"dropped: {reason}" in html
    assert "65.0%" in html  # no_image: 650 of 1,000 in
    assert "accounting" not in html and 'class="bad"' not in html


def test_histograms_and_thumbnails(report):
    path, calls, table = report
    html = path.read_text(encoding="utf-8")
    picked = _picked(table)
    assert calls == [picked]  # images() called once, with every picked row
    assert len(picked) == 4 * PER_REASON  # kept and each reason have at least PER_REASON rows
    # Histograms for clip, nsfw_p, face_count, width, height; none for all-null watermark_p.
    assert re.findall(r'alt="([^"]+)"', html)[:6] == [
        "funnel",
        "clip_tiny_clip_sim",
        "nsfw_p",
        "face_count",
        "width",
        "height",
    ]
    # Every picked row is a tile; garbage bytes and missing bytes show a placeholder instead.
    assert html.count('class="tile"') == len(picked)
    assert html.count('<img class="thumb"') == len(picked) - 2
    assert "undecodable image" in html and "no image" in html
    # Groups: kept first, then reasons by count, descending.
    heads = re.findall(r"<h3>([^:]+):", html)
    assert heads == ["kept", "low_clip", "nsfw", "watermark"]


def test_pick_is_deterministic_and_thumbnail_small():
    groups = ["kept"] * 30 + ["a"] * 3 + ["b"] * 9
    assert pick(groups, 5, seed=7) == pick(groups, 5, seed=7)
    assert pick(groups, 5, seed=7) != pick(groups, 5, seed=8)
    assert [(g, n, len(i)) for g, n, i in pick(groups, 5, 0)] == [
        ("kept", 30, 5),
        ("b", 9, 5),
        ("a", 3, 3),
    ]
    uri = thumbnail(_jpeg("astronaut"))
    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert im.format == "JPEG" and max(im.size) == 160
    assert thumbnail(b"GIF89a garbage") is None and thumbnail(None) is None


def _chromium(*args: str, tmp) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which(exe):
        pytest.fail("chromium is not installed; `make chromium` installs it (Debian's chromium)")
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    flags += [f"--user-data-dir={tmp}", "--enable-logging=stderr", "--v=0", "--no-first-run"]
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _console_errors(stderr: str) -> list[str]:
    """Console lines ("Uncaught ...", console.error) come as ``INFO:CONSOLE`` or ``ERROR:CONSOLE``;
    the report has no JavaScript, so any console line at all is a fault."""
    return [line for line in stderr.splitlines() if "Uncaught" in line or ":CONSOLE" in line]


def test_report_renders_in_headless_chromium(report, tmp_path):
    path = report[0]
    shot = tmp_path / "shot.png"
    run = _chromium(
        f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri(), tmp=tmp_path / "p1"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not _console_errors(run.stderr)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200) and pixels.std() > 10  # not a blank page

    dom = _chromium("--dump-dom", path.as_uri(), tmp=tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console_errors(dom.stderr)
    html = path.read_text(encoding="utf-8")
    assert dom.stdout.count("<img") == html.count("<img") > 20
    assert dom.stdout.count('<img class="thumb"') == html.count('<img class="thumb"')
    assert "a cat &lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
