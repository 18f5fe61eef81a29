"""`curate docs filter` (Spark): the real WARC fixtures' and the mini web's documents through the
mmc4 and OBELICS recipes, and the corpus-wide count of image URLs."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlcurate import miniweb
from vlcurate.jobs import cli
from vlcurate.jobs import extract as extract_job
from vlcurate.pipeline.extract.stage import ExtractConfig
from vlcurate.schemas.extract import DOC_SCHEMA

pytestmark = [pytest.mark.spark]

TEXT = (
    "The small harbour town was quiet in the winter, and most of the boats were pulled up "
    "on the beach where the fishermen mended their nets and talked about the weather."
)


def doc(doc_id: str, urls: list[str]) -> dict:
    nodes = [{"type": "text", "text": TEXT, "url": None, "alt": None}]
    nodes += [{"type": "image", "text": None, "url": u, "alt": ""} for u in urls]
    return {
        "doc_id": doc_id,
        "page_url": f"http://example.com/{doc_id}",
        "title": None,
        "page_lang": "en",
        "charset": "utf-8",
        "nodes": nodes,
        "warc_path": "x.warc.gz",
        "warc_record_id": f"<urn:uuid:{doc_id}>",
        "warc_offset": 0,
    }


def check_identities(stats: dict) -> None:
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    for tally in ("nodes", "text_nodes", "image_nodes"):
        t = stats[tally]
        assert t["in"] == t["kept"] + sum(t["dropped"].values()), tally


def test_image_urls_seen_more_than_ten_times_in_the_corpus_go(spark, tmp_path):
    """11 documents over 2 files share one image URL (11 > 10: removed everywhere, so those
    documents lose their only image); 10 share another (kept)."""
    common, allowed = "http://cdn.example.com/banner.jpg", "http://cdn.example.com/photo.jpg"
    docs = [doc(f"a{i}", [common]) for i in range(11)] + [
        doc(f"b{i}", [allowed]) for i in range(10)
    ]
    (tmp_path / "in" / "docs").mkdir(parents=True)
    for part, rows in enumerate((docs[::2], docs[1::2])):
        pq.write_table(
            pa.Table.from_pylist(rows, schema=DOC_SCHEMA),
            tmp_path / "in" / "docs" / f"part-{part}.parquet",
        )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\nversion: 1\nsource: test\nfilters: []\ndocs: {languages: [], min_lang_score: 0}\n"
    )
    out = tmp_path / "out"
    argv = [
        "docs",
        "filter",
        "--input",
        str(tmp_path / "in"),
        "--recipe",
        str(recipe),
        "--output",
        str(out),
        "--no-progress",
    ]
    assert cli.main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    check_identities(stats)
    assert stats["frequent_image_urls"] == 1
    assert stats["image_nodes"]["dropped"]["image_frequent_url"] == 11
    assert stats["dropped"] == {"no_images": 11} and stats["kept"] == 10
    kept = pq.read_table(out / "docs").to_pylist()
    assert sorted(d["doc_id"] for d in kept) == sorted(f"b{i}" for i in range(10))
    assert all(n["url"] == allowed for d in kept for n in d["nodes"] if n["type"] == "image")
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["part-0.json", "part-1.json"]
    assert cli.main(argv) == 0  # a rerun finds every file done and gives the same stats
    again = json.loads((out / "stats.json").read_text())
    assert again.pop("units_resumed") == 2 and stats.pop("units_resumed") == 0
    assert again == stats


@pytest.mark.parametrize("recipe", ["mmc4", "obelics"])
def test_real_warc_documents(spark, warcs, tmp_path, recipe):
    files = sorted(str(p) for p in warcs.glob("*.warc*"))
    extract_job.run(files, str(tmp_path / "extract"), ExtractConfig(), progress=False)
    out = tmp_path / "docs"
    assert (
        cli.main(
            [
                "docs",
                "filter",
                "-i",
                str(tmp_path / "extract"),
                "-r",
                recipe,
                "-o",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    stats = json.loads((out / "stats.json").read_text())
    check_identities(stats)
    assert stats["in"] == len(pq.read_table(tmp_path / "extract" / "docs"))
    assert 0 < stats["kept"] < stats["in"]
    assert stats["recipe"] == f"{recipe}/1"
    kept = pq.read_table(out / "docs")
    assert kept.schema.equals(DOC_SCHEMA, check_metadata=False) and len(kept) == stats["kept"]
    allowed = {"mmc4": (".png", ".jpg", ".jpeg"), "obelics": (".png", ".jpg", ".jpeg", ".webp")}
    for d in kept.to_pylist():
        images = [n["url"] for n in d["nodes"] if n["type"] == "image"]
        assert 1 <= len(images) <= 30
        assert all(u.split("?")[0].lower().endswith(allowed[recipe]) for u in images), images


def test_mini_web_documents(spark, tmp_path):
    web = tmp_path / "web"
    miniweb.build(web, seed=0, port=miniweb.free_port(), n_shapes=20)
    extract_job.run(
        [str(web / miniweb.WARC_FILE)], str(tmp_path / "extract"), ExtractConfig(), progress=False
    )
    out = tmp_path / "docs"
    assert (
        cli.main(
            [
                "docs",
                "filter",
                "-i",
                str(tmp_path / "extract"),
                "-r",
                "mmc4",
                "-o",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    stats = json.loads((out / "stats.json").read_text())
    check_identities(stats)
    assert stats["in"] > 0 and stats["text_nodes"]["in"] > 0 and stats["image_nodes"]["in"] > 0


def test_a_recipe_without_a_docs_section_is_refused(tmp_path, capsys):
    assert (
        cli.main(["docs", "filter", "-i", str(tmp_path), "-r", "laion", "-o", str(tmp_path / "o")])
        == 2
    )
    assert "has no docs: section" in capsys.readouterr().err
