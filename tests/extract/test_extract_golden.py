"""Golden expectations for the real Common Crawl / crawler WARC files in tests/data/warc.

Counts were checked against the raw files (``zcat FILE | grep -ao '<img[^>]*>'``) and the rows
below by hand against the HTML of each page.
"""

import pyarrow.parquet as pq
import pytest

from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to, shard_name
from vlcurate.schemas.extract import DOC_SCHEMA, PAIR_SCHEMA

# file: (response records, pages kept, image elements, pairs, images dropped by reason)
GOLDEN = {
    "whirlwind.warc.gz": (1, 1, 13, 7, {"no_alt_text": 6}),
    "dolma-sample-0000.warc.gz": (22, 22, 240, 169, {"no_alt_text": 71}),
    "dolma-sample-0001.warc.gz": (15, 15, 149, 118, {"no_alt_text": 23, "non_http_url": 8}),
    "warcio-example.warc.gz": (1, 1, 0, 0, {}),
    "warcio-example-iana.org-chunked.warc": (1, 1, 0, 0, {}),
    "clipped.warc.gz": (1, 0, 0, 0, {}),  # its only record is cut short: truncated_record
}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, warcs):
    out = tmp_path_factory.mktemp("golden")
    stats = {name: extract_file_to(str(warcs / name), str(out)) for name in GOLDEN}
    return out, stats


def _rows(out, kind, name, warcs):
    return pq.read_table(out / kind / f"{shard_name(str(warcs / name))}.parquet").to_pylist()


@pytest.mark.parametrize("name", GOLDEN)
def test_counts(extracted, name):
    _, stats = extracted
    records, kept, images, pairs, image_drops = GOLDEN[name]
    s = stats[name]
    assert (s["in"], s["kept"], s["images"]["in"], s["pairs"], s["docs"]) == (
        records,
        kept,
        images,
        pairs,
        kept,
    )
    assert s["images"]["dropped"] == image_drops
    assert s["in"] == s["kept"] + sum(s["dropped"].values())


def test_whirlwind_pairs_match_the_html(extracted, warcs):
    out, _ = extracted
    rows = _rows(out, "pairs", "whirlwind.warc.gz", warcs)
    wm = "https://upload.wikimedia.org/wikipedia/commons/thumb"
    assert [(r["position"], r["caption"], r["url"], r["width"], r["height"]) for r in rows] == [
        (
            1,
            "Biquipedia",
            "https://an.wikipedia.org/static/images/mobile/copyright/wikipedia-wordmark-an.svg",
            None,
            None,
        ),
        (
            2,
            "A enciclopedia libre",
            "https://an.wikipedia.org/static/images/mobile/copyright/wikipedia-tagline-an.svg",
            120,
            14,
        ),
        (
            4,
            "Escudo d'armas",
            f"{wm}/0/0a/Escudo_de_Escopete_%28Guadalajara%29.svg/140px-Escudo_de_Escopete_%28Guadalajara%29.svg.png",
            70,
            122,
        ),
        (
            8,
            "Escopete ubicada en Castiella-La Mancha",
            f"{wm}/9/9c/Castilla-La_Mancha-loc.svg/500px-Castilla-La_Mancha-loc.svg.png",
            250,
            252,
        ),
        (9, "Escopete", f"{wm}/d/d2/Map_pointer.svg/24px-Map_pointer.svg.png", 12, 12),
        (
            11,
            "Wikimedia Foundation",
            "https://an.wikipedia.org/static/images/footer/wikimedia-button-2x.png",
            88,
            31,
        ),
        (
            12,
            "Powered by MediaWiki",
            "https://an.wikipedia.org/static/images/footer/poweredby_mediawiki_176x62.png",
            88,
            31,
        ),
    ]
    first = rows[0]
    assert first["page_url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert first["page_lang"] == "an"
    assert first["warc_record_id"] == "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>"
    assert first["warc_offset"] == 1023 and first["warc_path"].endswith("whirlwind.warc.gz")
    assert {r["source"] for r in rows} == {"warc"}


def test_whirlwind_document(extracted, warcs):
    out, _ = extracted
    (doc,) = _rows(out, "docs", "whirlwind.warc.gz", warcs)
    assert doc["title"] == "Escopete - Biquipedia, a enciclopedia libre"
    assert doc["charset"] == "utf-8" and doc["page_lang"] == "an"
    nodes = doc["nodes"]
    assert nodes[0] == {"type": "text", "text": "Ir al contenido", "url": None, "alt": None}
    # the header logo is boilerplate; the coat of arms is the first content image with alt text
    images = [n for n in nodes if n["type"] == "image"]
    assert "Biquipedia" not in [n["alt"] for n in images]
    assert images[1]["alt"] == "Escudo d'armas"
    assert any(
        n["type"] == "text" and n["text"] == "Municipio de Castiella-La Mancha" for n in nodes
    )


def test_relative_url_row_on_a_dolma_page(extracted, warcs):
    out, _ = extracted
    rows = _rows(out, "pairs", "dolma-sample-0000.warc.gz", warcs)
    (row,) = [r for r in rows if r["caption"] == "kyle_lo_profile.jpg"]
    # <img src="/assets/img/kyle_lo_profile.jpg" width="auto" height="auto"
    #      alt="kyle_lo_profile.jpg">
    assert row["url"] == "https://kyleclo.com/assets/img/kyle_lo_profile.jpg"
    assert row["page_url"] == "https://kyleclo.com/"  # WARC-Target-URI was "<https://kyleclo.com/>"
    assert (row["width"], row["height"]) == (None, None)


def test_outputs_follow_the_schemas(extracted, warcs):
    out, _ = extracted
    name = shard_name(str(warcs / "dolma-sample-0001.warc.gz"))
    assert pq.read_schema(out / "pairs" / f"{name}.parquet").equals(
        PAIR_SCHEMA, check_metadata=False
    )
    assert pq.read_schema(out / "docs" / f"{name}.parquet").equals(DOC_SCHEMA, check_metadata=False)
    assert (
        pq.read_schema(out / "pairs" / f"{name}.parquet").metadata[b"schema_version"]
        == b"extract/2"
    )


def test_clipped_page_is_extracted_when_asked(tmp_path, warcs):
    stats = extract_file_to(
        str(warcs / "clipped.warc.gz"), str(tmp_path), ExtractConfig(keep_truncated=True)
    )
    assert (stats["kept"], stats["images"]["in"], stats["truncated_kept"]) == (1, 7, 1)
