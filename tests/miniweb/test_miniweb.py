"""The mini web: deterministic build, truthful manifest, a WARC the extractor reads, and a
loopback server with the hostile behaviours the manifest promises."""

import hashlib
import http.client
import io
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from vlcurate.jobs import miniweb as miniweb_job
from vlcurate.miniweb import (
    EXPECTED_DOWNLOADS,
    KINDS,
    NOAI_HEADER,
    WARC_FILE,
    Manifest,
    build,
    free_port,
    serve,
)
from vlcurate.miniweb.shapes import COLORS
from vlcurate.pipeline.extract.stage import extract_file_to

SLOW_SECONDS = 1.5


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("miniweb")
    port = free_port()
    return out, build(out, seed=0, port=port)


@pytest.fixture(scope="module")
def server(built):
    out, manifest = built
    with serve(out, port=manifest.port, slow_seconds=SLOW_SECONDS) as s:
        yield s


def _site_hashes(out: Path) -> dict[str, str]:
    site = out / "site"
    return {
        str(p.relative_to(site)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(site.rglob("*"))
        if p.is_file()
    }


def _one(manifest: Manifest, **conditions):
    return manifest.where(**conditions)[0]


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers, response.read(), response.url


# --- build -------------------------------------------------------------------------------


def test_build_is_deterministic(tmp_path):
    port = free_port()
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build(a, seed=7, port=port, n_shapes=20)
    build(b, seed=7, port=port, n_shapes=20)
    build(c, seed=8, port=port, n_shapes=20)
    for name in ("manifest.jsonl", "miniweb.json", WARC_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _site_hashes(a) == _site_hashes(b)
    assert (a / "manifest.jsonl").read_bytes() != (c / "manifest.jsonl").read_bytes()


def test_rebuild_replaces_site(tmp_path):
    port = free_port()
    build(tmp_path, seed=1, port=port, n_shapes=30)
    first = _site_hashes(tmp_path)
    build(tmp_path, seed=1, port=port, n_shapes=5)
    assert len(_site_hashes(tmp_path)) < len(first)  # no stale files from the bigger build


def test_manifest_covers_every_case(built):
    out, manifest = built
    counts = manifest.counts()
    assert set(counts["kind"]) == set(KINDS)
    assert set(counts["expected_download"]) == set(EXPECTED_DOWNLOADS)
    assert counts["kind"]["shape"] == 200
    assert len({s.id for s in manifest.samples}) == len(manifest.samples)
    assert len({s.image_url for s in manifest.samples}) == len(manifest.samples)
    assert {s.language for s in manifest.where(kind="non_english")} == {"fr", "de", "es"}
    assert {"IMG_2031.JPG", "click here", "12345", ""} <= {
        s.alt for s in manifest.where(kind="junk_alt")
    }
    assert all(s.mismatched and s.alt != s.caption_true for s in manifest.where(kind="mismatch"))
    elements, styles = zip(*(s.markup.split("+")[:2] for s in manifest.samples), strict=True)
    assert set(elements) == set(
        "img srcset lazy lazy_placeholder picture picture_source_only".split()
    )
    assert set(styles) == {"absolute", "root", "dot", "protocol", "base"}
    faces = {s.path: s.faces for s in manifest.where(kind="photo")}
    assert faces["img/photos/astronaut.jpg"] == faces["img/photos/grace-hopper.jpg"] == 1
    assert Manifest.load(out).samples == manifest.samples


def test_served_files_match_manifest(built):
    out, manifest = built
    for s in manifest.samples:
        if s.path is None:
            assert s.expected_download in ("http_404", "redirect_success", "private_address")
            continue
        data = (out / "site" / s.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == s.sha256, s.id
        if s.expected_download in ("success", "robots_noai", "timeout"):
            image = Image.open(io.BytesIO(data))
            image.load()
            assert image.size == (s.width, s.height), s.id


def test_duplicates(built):
    out, manifest = built
    by_id = manifest.by_id()
    copies = manifest.where(kind="duplicate") + manifest.where(kind="near_duplicate")
    kinds = Counter(s.duplicate_kind for s in copies)
    assert kinds == dict.fromkeys(["exact", "resized", "reencoded", "cropped"], 5)
    for s in copies:
        original = by_id[s.duplicate_of]
        assert s.image_url != original.image_url
        assert s.caption_true == original.caption_true
        assert (s.sha256 == original.sha256) == (s.duplicate_kind == "exact")
    watermarked = manifest.where(kind="watermark")
    assert watermarked and all(s.watermark for s in watermarked)


def _close(pixel, color, tolerance):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, color, strict=True))


def test_shape_truth_matches_pixels_and_caption(built):
    out, manifest = built
    shapes = [
        s for s in manifest.samples if s.shapes and s.path and s.expected_download == "success"
    ]
    assert len(shapes) > 200
    for s in shapes:
        image = Image.open(out / "site" / s.path).convert("RGB")
        tolerance = 2 if s.path.endswith(".png") else 40
        if s.duplicate_kind not in ("cropped", "resized"):  # boxes are in original pixels
            assert _close(image.getpixel((1, 1)), COLORS[s.background], tolerance), s.id
            for group in s.shapes:
                assert len(group["boxes"]) == group["count"]
                for x0, y0, x1, y1 in group["boxes"]:
                    centre = ((x0 + x1) // 2, (y0 + y1) // 2)
                    assert _close(image.getpixel(centre), COLORS[group["color"]], tolerance), s.id
        if s.language == "en" and not s.mismatched:
            for group in s.shapes:
                assert group["color"] in s.caption_true and group["kind"] in s.caption_true


# --- crawl -------------------------------------------------------------------------------


def test_extractor_finds_every_pair(built, tmp_path):
    out, manifest = built
    stats = extract_file_to(str(out / WARC_FILE), str(tmp_path))
    pairs = pq.read_table(tmp_path / "pairs").to_pylist()
    got = {(p["page_url"], p["url"], p["caption"]) for p in pairs}
    expected = {
        (s.page_url, s.image_url, " ".join(s.alt.split()))
        for s in manifest.samples
        if s.alt.strip() and s.image_url.startswith(("http://", "https://"))
    }
    assert len(pairs) == len(got) == len(expected)
    assert got == expected
    private = {s.image_url for s in manifest.where(expected_download="private_address")}
    assert private <= {p["url"] for p in pairs}
    assert stats["kept"] == len(manifest.pages)
    assert stats["dropped"] == {"not_html": 1, "http_status_not_200": 1}
    assert stats["images"]["dropped"] == {"no_alt_text": 2}
    langs = {p["page_url"]: p["page_lang"] for p in pairs}
    assert {langs[s.page_url] for s in manifest.where(kind="non_english")} == {"fr", "de", "es"}


def test_warc_is_valid_for_warcio(built):
    from warcio.archiveiterator import ArchiveIterator

    out, manifest = built
    types = Counter()
    with open(out / WARC_FILE, "rb") as f:
        for record in ArchiveIterator(f, check_digests="raise"):
            record.content_stream().read()
            types[record.rec_type] += 1
    pages = len(manifest.pages) + 2  # robots.txt and a 404
    assert types == {"warcinfo": 1, "request": pages, "response": pages}


# --- server ------------------------------------------------------------------------------


def test_serves_photo_and_page(built, server):
    _, manifest = built
    photo = _one(manifest, kind="photo", path="img/photos/astronaut.jpg")
    status, headers, data, _ = _get(photo.image_url)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(data)).size == (photo.width, photo.height) == (512, 512)
    status, headers, data, _ = _get(photo.page_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert photo.image_url.encode() in data or b"astronaut.jpg" in data


def test_404(built, server):
    missing = _one(built[1], expected_download="http_404")
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(missing.image_url)
    assert e.value.code == 404


def test_redirect(built, server):
    moved = _one(built[1], expected_download="redirect_success")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", moved.image_url.removeprefix(server.url))
    response = connection.getresponse()
    assert response.status == 302 and response.getheader("Location") == moved.redirect_to
    connection.close()
    status, _, data, final_url = _get(moved.image_url)
    assert status == 200 and final_url == moved.redirect_to
    assert hashlib.sha256(data).hexdigest() == moved.sha256


def test_noai_header(built, server):
    noai = _one(built[1], expected_download="robots_noai")
    status, headers, data, _ = _get(noai.image_url)
    assert status == 200 and headers[NOAI_HEADER[0]] == NOAI_HEADER[1] == "noai, noimageai"
    Image.open(io.BytesIO(data)).load()


def test_not_an_image_truncated_and_bomb(built, server):
    manifest = built[1]
    for fake in manifest.where(expected_download="not_an_image"):
        _, headers, data, _ = _get(fake.image_url)
        assert headers["Content-Type"] == fake.content_type and data.startswith(b"<!DOCTYPE html>")
    broken = _one(manifest, expected_download="decode_error")
    _, _, data, _ = _get(broken.image_url)
    assert hashlib.sha256(data).hexdigest() == broken.sha256 and not data.endswith(b"\xff\xd9")
    with pytest.raises(OSError, match="truncated"):
        Image.open(io.BytesIO(data)).load()
    bomb = _one(manifest, expected_download="too_large")
    _, _, data, _ = _get(bomb.image_url)
    assert len(data) < 2000 and (bomb.width, bomb.height) == (40000, 40000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))


def test_slow_url_times_out(built, server):
    slow = _one(built[1], expected_download="timeout")
    start = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _get(slow.image_url, timeout=0.5)
    assert time.monotonic() - start < SLOW_SECONDS
    status, _, data, _ = _get(slow.image_url, timeout=SLOW_SECONDS + 5)  # slow, not broken
    assert status == 200 and hashlib.sha256(data).hexdigest() == slow.sha256


def test_server_stays_inside_site(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/../manifest.jsonl")
    assert connection.getresponse().status == 404
    connection.close()


def test_private_addresses_are_never_served(built, server):
    for s in built[1].where(expected_download="private_address"):
        assert not s.image_url.startswith(server.url) and s.path is None
    assert not any("meta-data" in path for path in server.requests)


def test_serve_on_a_free_port(built):
    with serve(built[0]) as s:
        assert s.port > 0 and s.url == f"http://127.0.0.1:{s.port}"
        assert _get(s.url + "/robots.txt")[0] == 200
        assert _get(s.url + "/")[2].startswith(b"<!DOCTYPE html>")


# --- command line ------------------------------------------------------------------------


def test_cli_builds(tmp_path, capsys):
    port = free_port()
    code = miniweb_job.main(
        ["--output", str(tmp_path), "--seed", "3", "--port", str(port), "--n-shapes", "5"]
    )
    assert code == 0
    assert Manifest.load(tmp_path).port == port
    assert (tmp_path / WARC_FILE).exists()
    assert "image references" in capsys.readouterr().out
