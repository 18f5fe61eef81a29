"""Interleaved-document filters: each rule at its threshold, the ratios on hand-made strings,
the image-URL rules, the accounting, bad input, and the real WARC fixtures."""

import dataclasses
from collections import Counter

import pytest

from vlcurate.pipeline.docs import filters as F
from vlcurate.pipeline.docs import rules as R
from vlcurate.pipeline.docs.config import DocFilterConfig
from vlcurate.pipeline.docs.filters import (
    DocumentFilter,
    filter_document,
    filter_documents,
    frequent_urls,
)
from vlcurate.pipeline.docs.measures import (
    char_repetition_ratio,
    normalise,
    special_char_ratio,
    word_list_ratio,
    word_repetition_ratio,
)
from vlcurate.pipeline.docs.rules import ImageNodeRules, TextNodeRules
from vlcurate.pipeline.docs.words import FLAGGED_WORDS, STOPWORDS
from vlcurate.pipeline.extract.stage import ExtractConfig, docs_table, extract_warc
from vlcurate.pipeline.stats import StageStats
from vlcurate.pipeline.storage import expand_inputs

# Every rule switched off, so a test can switch one back on.
LENIENT = DocFilterConfig(
    min_node_words=0,
    max_node_words=10**9,
    max_node_char_repetition=1.0,
    max_node_word_repetition=1.0,
    max_node_special_chars=1.0,
    min_node_stopwords=0.0,
    max_node_flagged_words=1.0,
    min_doc_words=0,
    max_doc_words=10**9,
    max_doc_word_repetition=1.0,
    max_doc_special_chars=1.0,
    min_doc_stopwords=0.0,
    min_lang_score=0.0,
    languages=[],
    min_images=0,
    max_images=10**9,
)

PROSE = (
    "The museum opened a new wing this spring, and it was full of visitors who had come to see "
    "the paintings that were hidden in storage for many years before the renovation."
)
PROSE2 = (
    "After the storm passed, the fishermen returned to the harbour and spent most of the "
    "evening repairing their nets while their children played on the beach nearby."
)
IMAGE = {"type": "image", "text": None, "url": "https://example.com/photos/harbour.jpg", "alt": ""}


def lenient(**changes) -> DocFilterConfig:
    return dataclasses.replace(LENIENT, **changes)


def text(t) -> dict:
    return {"type": "text", "text": t, "url": None, "alt": None}


def node_reason(config: DocFilterConfig, t) -> str | None:
    return TextNodeRules(config).judge([t]).reasons[0]


def url_reason(rules: ImageNodeRules, url) -> str | None:
    return rules.judge([url]).reasons[0]


def unique_words(n: int, start: int = 0) -> list[str]:
    return [f"w{i}" for i in range(start, start + n)]


# --- measures on hand-made strings ------------------------------------------------------------
def test_char_repetition_ratio_by_hand():
    assert char_repetition_ratio("abcabc", 3) == 2 / 4  # abc bca cab abc: abc twice
    assert char_repetition_ratio("abcdef", 3) == 0.0
    assert char_repetition_ratio("ab", 3) == 0.0  # no 3-grams at all
    assert char_repetition_ratio("", 10) == 0.0
    assert char_repetition_ratio("aaaa", 2) == 1.0  # aa aa aa
    # lower-cased, whitespace runs collapsed: "ab ab" -> ab, "b ", " a", ab
    assert char_repetition_ratio("AB \n\t ab", 2) == 2 / 4


def test_word_repetition_ratio_by_hand():
    words = "a b c d e a b c d e".split()  # 6 five-grams, (a b c d e) twice
    assert word_repetition_ratio(words, 5) == 2 / 6
    assert word_repetition_ratio(["a", "b", "a", "b"], 2) == 2 / 3  # ab ba ab: ab twice, ba once
    assert word_repetition_ratio(["a", "b", "a", "c"], 2) == 0.0
    assert word_repetition_ratio(["a"] * 4, 5) == 0.0  # fewer words than n
    assert word_repetition_ratio([], 5) == 0.0


def test_special_char_ratio_by_hand():
    assert special_char_ratio("ab, 1!") == 3 / 6  # ",", "1", "!"; the space is not special
    assert special_char_ratio("") == 0.0
    assert special_char_ratio("東京 タワー") == 0.0  # letters of any script
    assert special_char_ratio("e\u0301t\u00e9") == 0.0  # combining accent, precomposed é
    assert special_char_ratio("😀 a") == 1 / 3
    assert special_char_ratio("2024") == 1.0


def test_normalise_and_word_lists():
    assert normalise("“Don’t,”") == "don't"
    assert normalise("—") == ""
    assert normalise("(The)") == "the"
    assert word_list_ratio(["the", "cat", "of", "x"], STOPWORDS) == 2 / 4
    assert word_list_ratio([], STOPWORDS) == 0.0
    assert 150 <= len(STOPWORDS) <= 250 and 10 <= len(FLAGGED_WORDS) <= 40
    assert not STOPWORDS & FLAGGED_WORDS


# --- text-node rules at their thresholds ------------------------------------------------------
def test_node_word_count_bounds():
    c = lenient(min_node_words=4, max_node_words=1000)
    assert node_reason(c, "one two three four") is None
    assert node_reason(c, "one two three") == R.NODE_TOO_SHORT
    assert node_reason(c, " ".join(unique_words(1000))) is None
    assert node_reason(c, " ".join(unique_words(1001))) == R.NODE_TOO_LONG
    assert node_reason(c, "") == R.NODE_TOO_SHORT
    assert node_reason(c, None) == R.NODE_TOO_SHORT


def test_node_char_repetition_threshold():
    c = lenient(node_char_ngram=3, max_node_char_repetition=0.1)
    at = "abc" + "defghijklmnopqrs" + "abc"  # 20 three-grams, abc twice: 0.1
    past = "abc" + "defghijklmnopqr" + "abc"  # 19 three-grams, abc twice: 0.105
    assert char_repetition_ratio(at, 3) == 0.1
    assert node_reason(c, at) is None
    assert node_reason(c, past) == R.NODE_CHAR_REPETITION
    assert DocFilterConfig().node_char_ngram == 10


def test_node_word_repetition_threshold():
    c = lenient(max_node_word_repetition=0.1)
    head = "a b c d e".split()
    at = head + unique_words(14) + head  # 24 words, 20 five-grams, (a b c d e) twice: 0.1
    past = head + unique_words(13) + head  # 19 five-grams: 0.105
    assert word_repetition_ratio(at, 5) == 0.1
    assert node_reason(c, " ".join(at)) is None
    assert node_reason(c, " ".join(past)) == R.NODE_WORD_REPETITION


def test_node_special_characters_threshold():
    c = lenient(max_node_special_chars=0.3)
    assert node_reason(c, "abcdefg!!!") is None  # 3 / 10
    assert node_reason(c, "abcdef!!!") == R.NODE_SPECIAL_CHARS  # 3 / 9


def test_node_stopwords_threshold():
    c = lenient(min_node_stopwords=0.3)
    assert node_reason(c, " ".join(["the", "of", "and", *unique_words(7)])) is None  # 3 / 10
    low = " ".join(["the", "of", "and", *unique_words(8)])  # 3 / 11
    assert node_reason(c, low) == R.NODE_TOO_FEW_STOPWORDS


def test_node_flagged_words_threshold():
    c = lenient(max_node_flagged_words=0.01)
    assert node_reason(c, " ".join(["porn", *unique_words(99)])) is None  # 1 / 100
    assert node_reason(c, " ".join(["Porn!", *unique_words(98)])) == R.NODE_FLAGGED_WORDS


def test_defaults_are_obelics_and_mmc4():
    c = DocFilterConfig()
    assert (c.min_node_words, c.max_node_words, c.min_doc_words, c.max_doc_words) == (
        4,
        1000,
        10,
        2000,
    )
    assert (c.max_node_char_repetition, c.max_node_word_repetition) == (0.1, 0.1)
    assert (c.max_node_special_chars, c.min_node_stopwords, c.max_node_flagged_words) == (
        0.3,
        0.3,
        0.01,
    )
    assert (c.max_doc_word_repetition, c.max_doc_special_chars, c.min_doc_stopwords) == (
        0.2,
        0.275,
        0.35,
    )
    assert (c.min_lang_score, c.languages, c.min_images, c.max_images) == (0.8, ["en"], 1, 30)
    assert sorted(c.image_extensions) == ["jpeg", "jpg", "png"]
    assert all(f.metadata.get("help") for f in dataclasses.fields(DocFilterConfig))
    assert node_reason(c, PROSE) is None


def test_config_becomes_cli_flags():
    import argparse

    from vlcurate.jobs.options import add_config_flags, config_from_args

    parser = argparse.ArgumentParser()
    add_config_flags(parser, DocFilterConfig)
    args = parser.parse_args(["--max-images", "5", "--image-extensions", "jpg", "webp"])
    config = config_from_args(DocFilterConfig, args)
    assert config.max_images == 5 and config.image_extensions == ["jpg", "webp"]
    assert config.min_doc_stopwords == 0.35


# --- document rules at their thresholds -------------------------------------------------------
def doc_reason(config, *texts, images=1, banned=frozenset()):
    nodes = [text(t) for t in texts] + [IMAGE] * images
    return filter_document({"doc_id": "d", "nodes": nodes}, config, banned)[1]


def test_doc_word_count_bounds():
    c = lenient(min_doc_words=10, max_doc_words=2000)
    assert doc_reason(c, "a b c d e", "f g h i j") is None  # 10 words over two nodes
    assert doc_reason(c, "a b c d e", "f g h i") == R.DOC_TOO_SHORT
    assert doc_reason(c, " ".join(unique_words(1000)), " ".join(unique_words(1000, 1000))) is None
    assert doc_reason(c, " ".join(unique_words(2001))) == R.DOC_TOO_LONG


def test_doc_word_repetition_threshold():
    c = lenient(max_doc_word_repetition=0.2)
    head = "a b c d e f".split()  # two five-grams, each seen twice: 4 repeats
    # 4 of 20 five-grams are repeats: 0.2; the n-grams run across node boundaries
    at = head + unique_words(6) + head + unique_words(6, 6)  # 24 words
    past = head + unique_words(6) + head + unique_words(5, 6)  # 23 words, 19 five-grams
    assert word_repetition_ratio(at, 5) == 0.2
    assert doc_reason(c, " ".join(at[:12]), " ".join(at[12:])) is None
    assert doc_reason(c, " ".join(past[:12]), " ".join(past[12:])) == R.DOC_WORD_REPETITION


def test_doc_special_characters_threshold():
    c = lenient(max_doc_special_chars=0.275)
    # nodes joined by "\n": 11 special of 40 characters is 0.275
    assert doc_reason(c, "a" * 14 + "!" * 5, "b" * 14 + "?" * 6) is None
    assert doc_reason(c, "a" * 13 + "!" * 5, "b" * 14 + "?" * 6) == R.DOC_SPECIAL_CHARS  # 11/39


def test_doc_stopwords_threshold():
    c = lenient(min_doc_stopwords=0.35)
    stop = ["the", "of", "and", "to", "in", "it", "is"]
    assert (
        doc_reason(c, " ".join(stop[:4] + unique_words(6)), " ".join(stop[4:] + unique_words(7)))
        is None
    )  # 7/20
    assert doc_reason(c, " ".join(stop + unique_words(14))) == R.DOC_TOO_FEW_STOPWORDS  # 7 / 21


class FakeLid:
    """Stands in for fastText so the language score can sit exactly at the threshold."""

    def __init__(self, label, score):
        self.f = self
        self.top = [(score, f"__label__{label}")]

    def predict(self, text, k, threshold, on_error):
        assert "\n" not in text[:-1]
        return self.top


def test_language_threshold_and_allowed_list():
    def reason(config, label, score):
        judge = DocumentFilter(config)
        judge.document._model = FakeLid(label, score)
        return judge({"nodes": [text(PROSE), IMAGE]})[1]

    c = lenient(min_lang_score=0.8, languages=["en"])
    assert reason(c, "en", 0.8) is None
    assert reason(c, "en", 0.79) == R.DOC_LANGUAGE_UNCERTAIN
    assert reason(c, "fr", 0.99) == R.DOC_LANGUAGE_NOT_WANTED
    assert reason(lenient(min_lang_score=0.8), "fr", 0.99) is None  # empty list keeps any


def test_language_with_the_bundled_model():
    c = lenient(min_lang_score=0.8, languages=["en"])
    french = (
        "Le musée a ouvert une nouvelle aile ce printemps, et elle était pleine de visiteurs "
        "venus voir les tableaux cachés dans les réserves pendant de nombreuses années."
    )
    assert doc_reason(c, PROSE) is None
    assert doc_reason(c, french) == R.DOC_LANGUAGE_NOT_WANTED
    assert doc_reason(lenient(languages=["fr"], min_lang_score=0.8), french) is None


def test_image_count_rules():
    c = lenient(min_images=1, max_images=30)
    assert doc_reason(c, PROSE, images=30) is None
    assert doc_reason(c, PROSE, images=31) == R.DOC_TOO_MANY_IMAGES
    assert doc_reason(c, PROSE, images=1) is None
    assert doc_reason(c, PROSE, images=0) == R.DOC_NO_IMAGES
    assert doc_reason(lenient(min_images=2), PROSE, images=1) == R.DOC_TOO_FEW_IMAGES
    assert doc_reason(lenient(min_images=0), PROSE, images=0) is None
    assert doc_reason(c, images=3) == R.DOC_NO_TEXT
    # images removed by the URL rules do not count
    assert doc_reason(c, PROSE, images=31, banned={IMAGE["url"]}) == R.DOC_NO_IMAGES


# --- image-node rules -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, reason",
    [
        ("https://a.com/x/photo.jpg", None),
        ("https://a.com/x/PHOTO.JPEG", None),
        ("https://a.com/x/photo.png?w=300&f=.gif", None),  # the query string is ignored
        ("https://a.com/x/photo.png#frag.gif", None),
        ("https://a.com/x/photo.jpg;jsessionid=1", None),
        ("https://logo.example.com/photo.jpg", None),  # the host is not the path
        ("https://a.com/photo.jpg?from=icon", None),
        ("https://a.com/x/photo.gif?f=.jpg", R.IMAGE_FORMAT),
        ("https://a.com/x/photo.webp", R.IMAGE_FORMAT),
        ("https://a.com/x/photo.svg", R.IMAGE_FORMAT),
        ("https://a.com/x/photo", R.IMAGE_FORMAT),  # no extension
        ("https://a.com/x/", R.IMAGE_FORMAT),
        ("https://a.com/images.d/photo", R.IMAGE_FORMAT),  # a dot in a folder is not one
        ("https://a.com/assets/Site-LOGO.png", R.IMAGE_URL_WORDS),
        ("https://a.com/social/share-button.jpg", R.IMAGE_URL_WORDS),
        ("https://a.com/icons/home.png", R.IMAGE_URL_WORDS),
        ("https://a.com/wp-content/plugins/x/y.jpg", R.IMAGE_URL_WORDS),
        ("https://a.com/widgets/y.jpg", R.IMAGE_URL_WORDS),
        (None, R.IMAGE_NO_URL),
        ("", R.IMAGE_NO_URL),
        ("   ", R.IMAGE_NO_URL),
        ("http://[::1/x.jpg", R.IMAGE_NO_URL),  # urlsplit raises
    ],
)
def test_image_url_rules(url, reason):
    assert url_reason(ImageNodeRules(DocFilterConfig()), url) == reason


def test_image_rules_are_configurable():
    obelics = DocFilterConfig(image_extensions=["jpg", "jpeg", "png", "webp"])
    assert url_reason(ImageNodeRules(obelics), "https://a.com/x/photo.webp") is None
    keep = DocFilterConfig(keep_no_extension=True)
    assert url_reason(ImageNodeRules(keep), "https://a.com/x/photo") is None
    assert url_reason(ImageNodeRules(keep), "https://a.com/x/photo.gif") == R.IMAGE_FORMAT
    assert (
        url_reason(ImageNodeRules(DocFilterConfig(image_url_words=[])), "https://a.com/logo.png")
        is None
    )


def test_frequent_urls_and_banned_images():
    counts = {"u10": 10, "u11": 11, "u1": 1}
    assert frequent_urls(counts) == {"u11"}
    assert frequent_urls(counts, max_count=0) == {"u10", "u11", "u1"}
    assert frequent_urls({}) == set()
    banned = frequent_urls({IMAGE["url"]: 11, "https://a.com/b.jpg": 3})
    rules = ImageNodeRules(DocFilterConfig(), banned)
    assert url_reason(rules, IMAGE["url"]) == R.IMAGE_FREQUENT_URL
    assert url_reason(rules, "https://a.com/b.jpg") is None


# --- accounting -------------------------------------------------------------------------------
def mixed_docs() -> list[dict]:
    good = {"doc_id": "good", "nodes": [text(PROSE), IMAGE, text("Menu"), text(PROSE2)]}
    logos = {"doc_id": "logos", "nodes": [text(PROSE), {**IMAGE, "url": "https://a.com/logo.png"}]}
    short = {"doc_id": "short", "nodes": [text("Home About Contact Us"), IMAGE]}
    return [good, logos, short, {"doc_id": "empty", "nodes": []}]


def test_filter_document_keeps_order_and_counts_every_node():
    good = mixed_docs()[0]
    out, reason, drops = filter_document(good, LENIENT)
    assert reason is None and out["nodes"] == good["nodes"] and not drops
    out, reason, drops = filter_document(good, DocFilterConfig())
    assert reason is None and out["doc_id"] == "good"
    assert out["nodes"] == [text(PROSE), IMAGE, text(PROSE2)]
    assert drops == Counter({R.NODE_TOO_SHORT: 1})
    assert good["nodes"][2] == text("Menu")  # the input is not changed
    out, reason, drops = filter_document(mixed_docs()[1], DocFilterConfig())
    assert (out, reason) == (None, R.DOC_NO_IMAGES)
    assert drops == Counter({R.IMAGE_URL_WORDS: 1, R.TEXT_IN_DROPPED_DOC: 1})


def check_identities(stats: dict) -> None:
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    for name in ("nodes", "text_nodes", "image_nodes"):
        t = stats[name]
        assert t["in"] == t["kept"] + sum(t["dropped"].values()), name
    assert stats["nodes"]["in"] == stats["text_nodes"]["in"] + stats["image_nodes"]["in"]


def test_filter_documents_accounting():
    kept, stats = filter_documents(mixed_docs(), DocFilterConfig())
    check_identities(stats)
    assert [d["doc_id"] for d in kept] == ["good"]
    assert stats["stage"] == F.STAGE
    assert (stats["in"], stats["kept"]) == (4, 1)
    assert stats["dropped"] == {R.DOC_NO_IMAGES: 1, R.DOC_NO_TEXT: 1, R.DOC_TOO_SHORT: 1}
    assert stats["nodes"]["in"] == 8 and stats["nodes"]["kept"] == 3
    assert stats["image_nodes"]["dropped"] == {R.IMAGE_URL_WORDS: 1, R.IMAGE_IN_DROPPED_DOC: 1}
    assert stats["text_nodes"]["dropped"] == {R.NODE_TOO_SHORT: 1, R.TEXT_IN_DROPPED_DOC: 2}
    # accumulate into a StageStats of one's own
    total = StageStats(F.STAGE)
    filter_documents(mixed_docs(), DocFilterConfig(), stats=total)
    filter_documents(mixed_docs(), DocFilterConfig(), stats=total)
    assert total.main.seen == 8 and total.tally("nodes").seen == 16


# --- bad input ----------------------------------------------------------------------------------
BAD_DOCS = {
    "no nodes": {"doc_id": "x", "nodes": []},
    "nodes None": {"doc_id": "x", "nodes": None},
    "no nodes key": {"doc_id": "x"},
    "only images": {"nodes": [IMAGE] * 3},
    "empty strings": {"nodes": [text(""), text("   "), {**IMAGE, "url": ""}]},
    "None text": {"nodes": [text(None), {"type": "image", "url": None, "alt": None}]},
    "100 KB, no spaces": {"nodes": [text("x" * 100_000), IMAGE]},
    "100 KB, no punctuation": {"nodes": [text(("lorem ipsum dolor " * 6000)[:100_000]), IMAGE]},
    "100 KB of one random word run": {"nodes": [text("qwertyuiop" * 10_000), IMAGE]},
    "10,000 images": {"nodes": [text(PROSE)] + [IMAGE] * 10_000},
    "10,000 distinct images": {
        "nodes": [text(PROSE)] + [{**IMAGE, "url": f"https://a.com/{i}.jpg"} for i in range(10_000)]
    },
    "non-Latin": {"nodes": [text("東京タワーは東京都港区にある電波塔です。 " * 5), IMAGE]},
    "Arabic": {"nodes": [text("هذا نص عربي قصير عن المتحف الجديد في المدينة " * 3), IMAGE]},
    "emoji": {"nodes": [text("😀 🎉 🔥 👍 " * 50), IMAGE]},
    "malformed nodes": {"nodes": [None, {}, ("text",), 42, {"type": "video"}, text(PROSE), IMAGE]},
    "tuple nodes": {"nodes": [("text", PROSE, None, None), ("image", None, IMAGE["url"], "")]},
    "not a dict": None,
}


@pytest.mark.parametrize("name", list(BAD_DOCS))
def test_bad_input_returns_with_reasons(name):
    doc = BAD_DOCS[name]
    out, reason, drops = filter_document(doc, DocFilterConfig())
    assert (out is None) == (reason is not None)
    assert reason is None or reason in R.DOC_REASONS
    assert set(drops) <= set(R.TEXT_REASONS) | set(R.IMAGE_REASONS)
    nodes = (doc or {}).get("nodes") or []
    assert len(nodes) == (len(out["nodes"]) if out else 0) + sum(drops.values())
    kept, stats = filter_documents([doc], DocFilterConfig())
    check_identities(stats)


def test_bad_input_reasons():
    def reason(name):
        return filter_document(BAD_DOCS[name], DocFilterConfig())[1]

    assert reason("no nodes") == reason("nodes None") == reason("only images") == R.DOC_NO_TEXT
    assert reason("10,000 images") == R.DOC_TOO_MANY_IMAGES
    assert reason("tuple nodes") is None
    drops = filter_document(BAD_DOCS["malformed nodes"], DocFilterConfig())[2]
    assert drops[R.NODE_MALFORMED] == 5
    drops = filter_document(BAD_DOCS["100 KB, no spaces"], DocFilterConfig())[2]
    assert drops[R.NODE_TOO_SHORT] == 1
    drops = filter_document(BAD_DOCS["100 KB, no punctuation"], DocFilterConfig())[2]
    assert drops[R.NODE_TOO_LONG] == 1
    drops = filter_document(BAD_DOCS["emoji"], DocFilterConfig())[2]
    assert drops[R.NODE_TOO_LONG] == 0 and sum(drops.values()) >= 1


# --- the real thing: the bundled WARC fixtures --------------------------------------------------
@pytest.fixture(scope="module")
def warc_docs(warcs) -> list[dict]:
    docs = []
    for path in expand_inputs([str(warcs / "*.warc*")]):
        stats = StageStats("extract")
        docs.extend(doc for _pairs, doc in extract_warc(path, ExtractConfig(), stats))
    return docs


def test_real_documents(warc_docs):
    assert len(warc_docs) > 20
    kept, stats = filter_documents(warc_docs, DocFilterConfig())
    check_identities(stats)
    assert stats["in"] == len(warc_docs)
    assert 0 < stats["kept"] < stats["in"] and stats["kept"] == len(kept)
    assert set(stats["dropped"]) <= set(R.DOC_REASONS) and len(stats["dropped"]) >= 2
    assert stats["text_nodes"]["dropped"] and stats["image_nodes"]["dropped"]
    rules = ImageNodeRules(DocFilterConfig())
    for doc in kept:
        kinds = Counter(n[0] for n in doc["nodes"])
        assert kinds["text"] >= 1 and 1 <= kinds["image"] <= 30
        assert all(url_reason(rules, n[2]) is None for n in doc["nodes"] if n[0] == "image")
    # the same documents read back as parquet rows (nodes as dicts) give the same answer
    kept_rows, stats_rows = filter_documents(docs_table(warc_docs).to_pylist(), DocFilterConfig())
    assert stats_rows == stats
    assert [d["doc_id"] for d in kept_rows] == [d["doc_id"] for d in kept]


# --- the filter protocol: a batch in, a reason per item out -----------------------------------
def test_every_rule_judges_a_batch_with_one_reason_per_item():
    c = DocFilterConfig()
    texts = TextNodeRules(c).judge([PROSE, "Menu", None, PROSE2])
    assert texts.reasons.tolist() == [None, R.NODE_TOO_SHORT, R.NODE_TOO_SHORT, None]
    assert texts.keep.tolist() == [True, False, False, True]
    assert texts.columns["words"][0] == [normalise(w) for w in PROSE.split()]
    urls = ImageNodeRules(c).judge([IMAGE["url"], "https://a.com/logo.png", None])
    assert urls.reasons.tolist() == [None, R.IMAGE_URL_WORDS, R.IMAGE_NO_URL]
    docs = DocumentFilter(lenient(min_images=1)).judge(mixed_docs())
    assert docs.reasons.tolist() == [None, R.DOC_NO_IMAGES, None, R.DOC_NO_TEXT]
    assert [d is None for d in docs.columns["documents"]] == [False, True, False, True]
    assert len(TextNodeRules(c).judge([])) == len(DocumentFilter(c).judge([])) == 0
    # a batch gives what one item at a time gives
    one_by_one = [filter_document(d, c) for d in mixed_docs()]
    batch = DocumentFilter(c).judge(mixed_docs())
    assert [r for _, r, _ in one_by_one] == batch.reasons.tolist()
    assert [drops for _, _, drops in one_by_one] == batch.columns["node_drops"]
