"""`curate export` on a real final output of the mini web: LAION's columns from the final
shards' sidecars, img2dataset re-downloading the release from 127.0.0.1 and getting the same
images and captions, stats that add up, resume without half-written files, bad input refused."""

import json
import shutil
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlcurate.jobs import cli
from vlcurate.pipeline.export.murmur import laion_hash
from vlcurate.pipeline.export.stage import export
from vlcurate.pipeline.stage import SettingsMismatch
from vlcurate.schemas import export as schema

pytestmark = [pytest.mark.slow]


def final_samples(final) -> dict:
    """url -> (image bytes, caption, json) of every sample in the final shards."""
    found = {}
    for tar_path in sorted(final.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                key, record = name[: -len(".json")], json.loads(data)
                image = members.get(f"{key}.jpg") or members[f"{key}.png"]
                found[record["url"]] = (image, members[f"{key}.txt"].decode(), record)
    return found


def contents(folder) -> dict:
    return {p.name: pq.read_table(p) for p in sorted(folder.glob("*.parquet"))}


def test_release_has_laions_columns_one_file_per_final_shard(final, tmp_path):
    stats = export(str(final), str(tmp_path / "release"), progress=False)
    manifest = json.loads((final / "manifest.json").read_text())
    names = sorted(f"{s['name']}.parquet" for s in manifest["shards"])
    release = contents(tmp_path / "release")
    assert sorted(release) == names and len(names) >= 2
    samples = final_samples(final)
    for name, table in release.items():
        assert table.schema.equals(schema.LAION_SCHEMA, check_metadata=False)
        meta = table.schema.metadata
        assert meta[b"schema_version"] == b"export/1" and meta[b"clip_model"] == b"tiny-clip"
        sidecar = pq.read_table(final / name).to_pylist()
        assert table["URL"].to_pylist() == [r["url"] for r in sidecar]  # the shard's order
        for row, record in zip(table.to_pylist(), sidecar, strict=True):
            assert row["TEXT"] == record["caption"] == samples[row["URL"]][1]
            assert (row["WIDTH"], row["HEIGHT"]) == (
                record["original_width"],
                record["original_height"],
            )
            assert row["similarity"] == pytest.approx(record["clip_tiny_clip_sim"])
            assert row["punsafe"] == pytest.approx(record["nsfw_p"])
            assert row["pwatermark"] == pytest.approx(record["watermark_p"])
            assert row["hash"] == laion_hash(row["URL"], row["TEXT"])
            assert row["uid"] == record["uid"] and len(row["uid"]) == 32
            assert row["LANGUAGE"] == record["language"] and row["page_url"].endswith(".html")
    assert stats["in"] == stats["kept"] == len(samples) == manifest["counts"]["kept"]
    assert stats["dropped"] == {} and stats["shards"] == len(names)


def test_img2dataset_downloads_the_release_and_gets_the_same_images(web, final, tmp_path):
    from img2dataset import download

    export(str(final), str(tmp_path / "release"), progress=False)
    download(
        url_list=str(tmp_path / "release"),
        input_format="parquet",
        url_col="URL",
        caption_col="TEXT",
        save_additional_columns=["uid", "hash"],
        output_format="webdataset",
        output_folder=str(tmp_path / "again"),
        processes_count=1,
        thread_count=4,
        resize_mode="no",
        encode_quality=95,  # the download stage's default
        number_sample_per_shard=100,
        timeout=4,
        distributor="multiprocessing",
    )
    expected, got = final_samples(final), final_samples(tmp_path / "again")
    assert len(expected) >= 10 and sorted(got) == sorted(expected)
    for url, (image, caption, record) in got.items():
        assert image == expected[url][0], url  # the same bytes
        assert caption == expected[url][1]
        assert record["uid"] == expected[url][2]["uid"]
        assert record["hash"] == laion_hash(url, caption)


def test_stats_add_up_and_a_sample_without_url_is_dropped(final, tmp_path):
    broken = tmp_path / "final"
    shutil.copytree(final, broken)
    table = pq.read_table(broken / "00001.parquet")
    urls = table["url"].to_pylist()
    urls[0] = None
    table = table.set_column(table.schema.get_field_index("url"), "url", pa.array(urls))
    pq.write_table(table, broken / "00001.parquet")
    stats = export(str(broken), str(tmp_path / "release"), progress=False)
    assert stats["dropped"] == {schema.NO_URL: 1}
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["kept"] == sum(t.num_rows for t in contents(tmp_path / "release").values())
    assert json.loads((tmp_path / "release" / "stats.json").read_text()) == stats


def test_a_killed_export_resumes_and_leaves_no_half_written_file(final, tmp_path, monkeypatch):
    out = tmp_path / "release"
    real, calls = pq.ParquetWriter.write_table, []

    def dies_on_the_second_file(self, table, *args, **kw):
        calls.append(table.num_rows)
        real(self, table, *args, **kw)  # part of the file is written, then the run dies
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pq.ParquetWriter, "write_table", dies_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        export(str(final), str(out), progress=False)
    monkeypatch.undo()
    assert [p.name for p in out.glob("*.parquet")] == ["00000.parquet"]
    assert not list(out.rglob("*.tmp-*")) and not (out / "stats.json").exists()
    (out / "00001.parquet.tmp-5ea1ed00").write_bytes(b"PAR1 half")  # what SIGKILL leaves
    stats = export(str(final), str(out), progress=False)
    assert stats["units_resumed"] == 1
    assert not list(out.rglob("*.tmp-*"))
    fresh = tmp_path / "fresh"
    assert export(str(final), str(fresh), progress=False)["kept"] == stats["kept"]
    assert contents(out).keys() == contents(fresh).keys()
    for name, table in contents(out).items():
        assert table.equals(contents(fresh)[name])


def test_another_selection_into_the_same_release_is_refused(final, tmp_path):
    out = tmp_path / "release"
    export(str(final), str(out), progress=False)
    other = tmp_path / "final"
    shutil.copytree(final, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["recipe"]["version"] = 2
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SettingsMismatch, match="input_digest"):
        export(str(other), str(out), progress=False)


def test_bad_input_gets_one_clear_line_and_exit_code_2(final, web, tmp_path, capsys):
    root = web[0]
    cases = {
        str(root / "shards"): "is not a final output (no manifest.json)",  # the raw shards
        str(tmp_path / "nothing"): "does not exist",
        str(final / "manifest.json"): "is a file",
    }
    partial = tmp_path / "partial"
    shutil.copytree(final, partial)
    (partial / "00001.parquet").unlink()
    cases[str(partial)] = "final shard 00001's parquet sidecar"
    for given, message in cases.items():
        out = tmp_path / "release"
        assert cli.main(["export", "--input", given, "--output", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
        assert not out.exists()  # refused before anything was written


def test_cli_exports_and_help_explains_every_flag(final, tmp_path, capsys):
    out = tmp_path / "release"
    argv = ["export", "--format", "laion", "-i", str(final), "-o", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    assert "export (laion)" in capsys.readouterr().out and (out / "00000.parquet").exists()
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    shown = capsys.readouterr().out
    for flag in ("--input", "--output", "--format", "--no-progress", "one of laion"):
        assert flag in shown
    with pytest.raises(SystemExit) as exit:
        cli.main(["export", "--format", "csv", "-i", str(final), "-o", str(out)])
    assert exit.value.code == 2


def test_a_selection_that_kept_nothing_exports_an_empty_release(tmp_path):
    empty = tmp_path / "final"
    empty.mkdir()
    manifest = {"version": "select/1", "recipe": {"name": "r", "version": 1}, "shards": []}
    (empty / "manifest.json").write_text(json.dumps(manifest))
    stats = export(str(empty), str(tmp_path / "release"), progress=False)
    assert (stats["in"], stats["kept"], stats["shards"]) == (0, 0, 0)
    assert not list((tmp_path / "release").glob("*.parquet"))
