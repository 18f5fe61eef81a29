"""Interleaved document shards: written atomically, read back with the loader and with
webdataset directly, in mmc4's image-before-its-sentence order."""

import io
import json

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from vlcurate.pipeline.docs.shards import InterleavedDataset, interleaved, order, write_doc_shard

COLOURS = {"red": 0, "green": 1, "blue": 2}


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL -> (3, 16, 16) float tensor in [0, 1]."""
    pixels = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)


def colour_of(t: torch.Tensor) -> str:
    channel = int(t.mean(dim=(1, 2)).argmax())
    return next(name for name, c in COLOURS.items() if c == channel)


def solid(name: str) -> Image.Image:
    return Image.new("RGB", (32, 24), name)


def docs():
    """Two documents: page positions and matched sentences chosen so that page order,
    image_info order and placeholder order all differ somewhere."""
    first = {
        "text_list": ["First sentence.", "Second sentence.", "Third sentence."],
        "image_info": [  # page order; the blue image (page 0) was dropped
            {
                "image_name": "0.jpg",
                "position": 1,
                "matched_text_index": 2,
                "matched_sim": 0.3,
                "raw_url": "http://x/red.jpg",
                "face_detections": None,
            },
            {
                "image_name": "1.jpg",
                "position": 2,
                "matched_text_index": 0,
                "matched_sim": 0.4,
                "raw_url": "http://x/green.jpg",
                "face_detections": None,
            },
        ],
        "similarity_matrix": [[0.1, 0.2, 0.3], [0.4, 0.1, 0.2]],
        "dropped": [{"position": 0, "raw_url": "http://x/blue.jpg", "reason": "low_similarity"}],
    }
    second = {
        "text_list": ["Only.", "Two."],
        "image_info": [
            {"image_name": "0.jpg", "position": 0, "matched_text_index": 1, "matched_sim": 0.5},
            {"image_name": "1.jpg", "position": 1, "matched_text_index": 1, "matched_sim": 0.6},
            {"image_name": "2.jpg", "position": 2, "matched_text_index": 0, "matched_sim": 0.7},
        ],
        "similarity_matrix": [[0.1, 0.5], [0.2, 0.6], [0.7, 0.1]],
        "dropped": [],
    }
    png = Image.new("RGB", (8, 8), "red")
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    return [
        {
            "record": first,
            "images": [solid("blue"), {"image": solid("red")}, solid("green")],
            "doc_id": "doc.one/1",
            "page_url": "http://page/1",
            "warc_path": "a.warc.gz",
            "warc_record_id": "<urn:uuid:1>",
        },
        {
            "record": second,
            "images": [solid("blue"), buf.getvalue(), solid("green")],
            "doc_id": "doc-two",
            "page_url": "http://page/2",
        },
    ]


@pytest.fixture()
def shard(tmp_path):
    path = tmp_path / "out" / "00000.tar"
    assert write_doc_shard(str(path), docs()) == 2
    return path


def test_loader_reads_documents_in_order_with_one_placeholder_per_image(shard):
    out = list(InterleavedDataset(str(shard), to_tensor))
    assert [d["doc_id"] for d in out] == ["doc.one/1", "doc-two"]
    first, second = out
    assert first["text"] == "<image> First sentence. Second sentence. <image> Third sentence."
    assert first["images"].shape == (2, 3, 16, 16)
    assert [colour_of(t) for t in first["images"]] == ["green", "red"]  # placeholder order
    assert first["image_info_index"] == [1, 0]
    assert [first["text"][p : p + 7] for p in first["image_positions"]] == ["<image>"] * 2
    assert second["text"] == "<image> Only. <image> <image> Two."
    assert [colour_of(t) for t in second["images"]] == ["green", "blue", "red"]
    for d in out:
        assert d["text"].count("<image>") == len(d["images"]) == len(d["record"]["image_info"])
    record = first["record"]
    assert record["page_url"] == "http://page/1" and record["warc_path"] == "a.warc.gz"
    assert record["warc_record_id"] == "<urn:uuid:1>"
    assert record["similarity_matrix"] == [[0.1, 0.2, 0.3], [0.4, 0.1, 0.2]]
    assert second["record"]["warc_path"] is None


def test_loader_token_and_tokenizer(shard):
    out = next(
        iter(InterleavedDataset([str(shard)], to_tensor, tokenizer=str.split, image_token="<img>"))
    )
    assert out["tokens"][0] == "<img>" and out["text"].count("<img>") == 2


def test_webdataset_reads_one_sample_per_document_with_numbered_images(shard):
    samples = list(wds.WebDataset(str(shard), shardshuffle=False))
    assert len(samples) == 2
    assert {k for k in samples[0] if not k.startswith("__")} == {"json", "0.jpg", "1.jpg"}
    assert {k for k in samples[1] if not k.startswith("__")} == {"json", "0.jpg", "1.jpg", "2.jpg"}
    assert samples[0]["__key__"] == "00000-000000"
    record = json.loads(samples[0]["json"])
    assert record["doc_id"] == "doc.one/1"
    # members are in image_info order: 0.jpg is the red image (page position 1)
    assert colour_of(to_tensor(Image.open(io.BytesIO(samples[0]["0.jpg"])))) == "red"
    sequence = interleaved(samples[0])
    assert [s if isinstance(s, str) else colour_of(to_tensor(s)) for s in sequence] == [
        "green",
        "First sentence.",
        "Second sentence.",
        "red",
        "Third sentence.",
    ]
    assert order(record) == [("image", 1), ("text", 0), ("text", 1), ("image", 0), ("text", 2)]


def test_document_without_images(tmp_path):
    path = tmp_path / "empty.tar"
    record = {"text_list": ["Just text."], "image_info": [], "similarity_matrix": []}
    write_doc_shard(str(path), [{"record": record, "images": [], "doc_id": "t"}])
    (out,) = InterleavedDataset(str(path), to_tensor)
    assert out["text"] == "Just text." and out["images"].shape == (0, 3, 16, 16)


def test_a_write_that_fails_midway_leaves_no_tar(tmp_path):
    def failing():
        yield docs()[0]
        raise RuntimeError("killed")

    path = tmp_path / "out" / "00001.tar"
    with pytest.raises(RuntimeError, match="killed"):
        write_doc_shard(str(path), failing())
    assert not path.exists()
    assert list((tmp_path / "out").iterdir()) == []  # nor a temporary


def test_assigned_document_round_trip(tmp_path):
    from vlcurate.pipeline.docs.config import AssignConfig
    from vlcurate.pipeline.docs.document import assign_document
    from vlcurate.pipeline.score.clip import ClipScorer

    scorer = ClipScorer(model="tiny-clip", pretrained=None, device="cpu")
    rng = np.random.default_rng(0)
    images = [
        {
            "image": Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
            "url": f"http://x/{i}.jpg",
        }
        for i in range(3)
    ]
    record = assign_document(["One. Two. Three. Four."], images, scorer, AssignConfig(min_sim=-1))
    path = tmp_path / "rt.tar"
    write_doc_shard(str(path), [{"record": record, "images": images, "doc_id": "rt"}])
    (out,) = InterleavedDataset(str(path), to_tensor)
    assert out["images"].shape == (3, 3, 16, 16)
    assert out["text"].count("<image>") == 3
    assert out["record"]["text_list"] == ["One.", "Two.", "Three.", "Four."]
