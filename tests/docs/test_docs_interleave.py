"""The assign stage on hand-made documents: bad input gets reasons, never a crash, and every
image node is accounted for."""

import numpy as np
import pytest

from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.docs.interleave import (
    IMAGE_TOO_SMALL,
    IN_DROPPED_DOC,
    NO_IMAGES_LEFT,
    NOT_DOWNLOADED,
    NSFW,
    assign_documents,
    image_table,
)
from vlcurate.pipeline.score.clip import ClipScorer


@pytest.fixture(scope="module")
def scorer():
    return ClipScorer(model="tiny-clip", pretrained=None, device="cpu")


def document(doc_id: str, texts: list[str], n_images: int) -> dict:
    nodes = [{"type": "text", "text": t, "url": None, "alt": None} for t in texts]
    nodes += [
        {"type": "image", "text": None, "url": f"http://x/{doc_id}/{k}.jpg", "alt": "a"}
        for k in range(n_images)
    ]
    return {"doc_id": doc_id, "page_url": f"http://x/{doc_id}", "nodes": nodes}


def image(rng, **fields) -> dict:
    emb = rng.normal(size=64).astype(np.float32)
    return {
        "status": "ok",
        "url": "u",
        "shard": "s.tar",
        "index": 0,
        "nsfw_p": 0.0,
        "face_count": 0,
        "faces": [],
        "phash": f"{rng.integers(2**63):016x}",
        "width": 300,
        "height": 300,
        "embedding": emb / np.linalg.norm(emb),
        **fields,
    }


def check(stats, rows, docs) -> None:
    d = stats.to_dict()
    assert d["in"] == len(docs) == d["kept"] + sum(d["dropped"].values())
    t = d["images"]
    nodes = sum(n["type"] == "image" for doc in docs for n in doc["nodes"])
    assert t["in"] == nodes == len(rows) == t["kept"] + sum(t["dropped"].values())


def test_bad_documents_get_reasons(scorer):
    rng = np.random.default_rng(0)
    long_paragraph = "x" * 100_000  # no spaces, no punctuation
    docs = [
        document("no-text", [], 2),
        document("only-images", [""], 3),
        document("no-images", ["A sentence about nothing at all."], 0),
        document("huge", ["Some text here."], 10_000),
        document("long", [long_paragraph, "The cat sat."], 2),
        document("not-downloaded", ["A cat."], 2),
    ]
    images = {
        d["doc_id"]: {k: image(rng) for k in range(2)}
        for d in docs
        if d["doc_id"] != "not-downloaded"
    }
    images["huge"] = {k: image(rng) for k in range(10_000)}
    config = AssignConfig(min_sim=-1.0)  # random embeddings: keep every match
    kept, stats, rows = assign_documents(docs, images, scorer, config)
    check(stats, rows, docs)
    dropped = stats.to_dict()["dropped"]
    assert dropped[NO_IMAGES_LEFT] == 4  # no text, only images, no images, not downloaded
    assert {r["reason"] for r in rows if r["doc_id"] in ("no-text", "only-images")} >= {
        "no_sentences"
    }
    assert dropped["too_many_images"] == 1  # refused before any similarity is computed
    assert {doc["doc_id"] for doc, _ in kept} == {"long"}
    (record,) = [r for _, r in kept]
    assert all(len(s) <= 1000 for s in record["text_list"]) and len(record["text_list"]) >= 100
    reasons = {r["reason"] for r in rows if r["doc_id"] == "not-downloaded"}
    assert reasons == {NOT_DOWNLOADED}


def test_image_rules_and_dropped_documents(scorer):
    rng = np.random.default_rng(1)
    docs = [document("d", ["A red circle.", "A blue square."], 3)]
    images = {"d": {0: image(rng, width=100), 1: image(rng, nsfw_p=0.5), 2: image(rng)}}
    kept, stats, rows = assign_documents(docs, images, scorer, AssignConfig(min_sim=-1.0))
    check(stats, rows, docs)
    assert [r["reason"] for r in rows] == [IMAGE_TOO_SMALL, NSFW, None]
    assert rows[2]["sentence"] in ("A red circle.", "A blue square.") and len(kept) == 1
    core = AssignConfig(min_sim=-1.0, core=True)  # 2 sentences, 1 image: not mmc4-core
    kept, stats, rows = assign_documents(docs, images, scorer, core)
    check(stats, rows, docs)
    assert not kept and rows[2]["reason"] == IN_DROPPED_DOC
    assert list(stats.to_dict()["dropped"]) == ["core_too_few_sentences"]
    faces = {"d": {**images["d"], 2: image(rng, face_count=1)}}
    kept, stats, _ = assign_documents(
        docs, faces, scorer, AssignConfig(min_sim=-1.0, faces="drop_doc")
    )
    assert not kept and stats.to_dict()["dropped"] == {"faces": 1}


def test_could_have_url_duplicate_marks_pages_seen_twice(scorer):
    rng = np.random.default_rng(2)
    docs = [document(d, ["A red circle."], 1) for d in ("a", "b", "c", "d")]
    docs[1]["page_url"] = docs[0]["page_url"]  # the same page in two snapshots
    docs[3]["page_url"] = None
    images = {d["doc_id"]: {0: image(rng)} for d in docs}
    kept, stats, rows = assign_documents(docs, images, scorer, AssignConfig(min_sim=-1.0))
    check(stats, rows, docs)
    flags = {doc["doc_id"]: record["could_have_url_duplicate"] for doc, record in kept}
    assert flags == {"a": 1, "b": 1, "c": 0, "d": 0}


def test_image_table_carries_doc_and_position():
    table = image_table([document("a", ["t"], 2), document("b", [], 1)])
    assert table.to_pylist() == [
        {"url": "http://x/a/0.jpg", "caption": "a", "doc_id": "a", "image_index": 0},
        {"url": "http://x/a/1.jpg", "caption": "a", "doc_id": "a", "image_index": 1},
        {"url": "http://x/b/0.jpg", "caption": "a", "doc_id": "b", "image_index": 0},
    ]


def test_image_and_document_rules_judge_batches():
    from vlcurate.pipeline.docs.interleave import (
        ASPECT_RATIO,
        FACES,
        AssignedDocumentRules,
        ImageRules,
    )

    rng = np.random.default_rng(3)
    rules = ImageRules(AssignConfig())
    images = [
        image(rng),
        None,
        image(rng, width=100),
        image(rng, width=700),
        image(rng, nsfw_p=0.9),
    ]
    images.append(image(rng, status="decode_error"))
    verdict = rules.judge(images)
    assert verdict.reasons.tolist() == [
        None,
        NOT_DOWNLOADED,
        IMAGE_TOO_SMALL,
        ASPECT_RATIO,
        NSFW,
        "decode_error",
    ]
    placed = {
        "refused": None,
        "text_list": ["s"] * 5,
        "image_info": [{"position": 0, "matched_sim": 0.3}],
    }
    empty = {**placed, "image_info": []}
    refused = {**empty, "refused": "too_many_images"}
    faces = {0: image(rng, face_count=2)}
    batch = [(placed, {0: image(rng)}), (empty, {}), (refused, {}), (placed, faces)]
    drop_faces = AssignedDocumentRules(AssignConfig(faces="drop_doc")).judge(batch)
    assert drop_faces.reasons.tolist() == [None, NO_IMAGES_LEFT, "too_many_images", FACES]
    core = AssignedDocumentRules(AssignConfig(core=True)).judge(batch)
    assert core.reasons.tolist() == [
        "core_too_few_images",
        NO_IMAGES_LEFT,
        "too_many_images",
        "core_too_few_images",
    ]
