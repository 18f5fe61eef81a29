"""The settings of the interleaved-document stages, typed and checked when constructed (from a
recipe's ``docs:`` and ``assign:`` sections, or from code): a word count is >= 0 and a minimum
at most its maximum, a ratio is in [0, 1], a similarity in [-1, 1], a language list is a list.
A bad value raises :class:`vlcurate.pipeline.config.ConfigError` naming the field."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config


def _f(default, help: str, **bounds):
    """A field with its help text and range (``min``, ``max``, ``at_most``, ``choices``)."""
    meta = {"help": help, **bounds}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


RATIO = {"min": 0, "max": 1}


@dataclass
class DocFilterConfig(Config):
    """Every threshold of the document filters. Defaults: OBELICS (text, document, images per
    document) and mmc4 (png/jpg only, URL words). Bounds are inclusive: a value exactly at a
    threshold passes."""

    section: ClassVar[str] = "docs"

    min_node_words: int = _f(
        4, "text nodes with fewer words are removed", min=0, at_most="max_node_words"
    )
    max_node_words: int = _f(1000, "text nodes with more words are removed", min=0)
    node_char_ngram: int = _f(10, "n of the character n-grams of the node repetition rule", min=1)
    max_node_char_repetition: float = _f(0.1, "text nodes with a higher ratio are removed", **RATIO)
    node_word_ngram: int = _f(5, "n of the word n-grams of the node repetition rule", min=1)
    max_node_word_repetition: float = _f(0.1, "text nodes with a higher ratio are removed", **RATIO)
    max_node_special_chars: float = _f(0.3, "text nodes with a higher ratio are removed", **RATIO)
    min_node_stopwords: float = _f(
        0.3, "text nodes with a lower stopword ratio are removed", **RATIO
    )
    max_node_flagged_words: float = _f(0.01, "text nodes with a higher ratio are removed", **RATIO)
    min_doc_words: int = _f(
        10,
        "documents with fewer words (after node rules) are dropped",
        min=0,
        at_most="max_doc_words",
    )
    max_doc_words: int = _f(2000, "documents with more words are dropped", min=0)
    doc_word_ngram: int = _f(5, "n of the word n-grams of the document repetition rule", min=1)
    max_doc_word_repetition: float = _f(0.2, "documents with a higher ratio are dropped", **RATIO)
    max_doc_special_chars: float = _f(0.275, "documents with a higher ratio are dropped", **RATIO)
    min_doc_stopwords: float = _f(
        0.35, "documents with a lower stopword ratio are dropped", **RATIO
    )
    min_lang_score: float = _f(
        0.8, "documents whose top fastText score is lower are dropped", **RATIO
    )
    languages: list[str] = _f(["en"], "ISO 639 codes of the languages kept; empty keeps any")
    lang_model: str | None = _f(None, "a fastText .bin/.ftz path; default: bundled lid.176")
    image_extensions: list[str] = _f(
        ["png", "jpg", "jpeg"], "image URL path extensions kept (mmc4; OBELICS adds webp)"
    )
    keep_no_extension: bool = _f(False, "keep image URLs whose path has no extension")
    image_url_words: list[str] = _f(
        ["logo", "button", "icon", "plugin", "widget"],
        "image URLs whose path contains one of these (any case) are removed",
    )
    min_images: int = _f(
        1,
        "documents with fewer images (after node rules) are dropped",
        min=0,
        at_most="max_images",
    )
    max_images: int = _f(30, "documents with more images (after node rules) are dropped", min=0)
    max_url_count: int = _f(10, "image URLs seen more often across the corpus are removed", min=0)


@dataclass
class AssignConfig(Config):
    """A recipe's ``assign:`` section: the per-image rules, mmc4's assignment of images to
    sentences, and the document rules after it."""

    section: ClassVar[str] = "assign"

    min_sim: float = _f(
        0.15,
        "drop images whose best sentence similarity is below this (mmc4: 0.15)",
        min=-1,
        max=1,
    )
    phash_max_distance: int = _f(
        0, "within-document pHash dedup, Hamming bits (mmc4: 0, exact)", min=0, max=64
    )
    max_images: int = _f(
        1000, "refuse documents with more images, before any similarity is computed", min=0
    )
    max_sentences: int = _f(5000, "refuse documents with more sentences, likewise", min=0)
    max_sentence_chars: int = _f(1000, "longer sentences are cut", min=1)
    batch_size: int = _f(64, "CLIP batch size", min=1)
    min_side: int | None = _f(150, "drop images with a shorter side (mmc4: 150 px)", min=0)
    max_aspect_ratio: float | None = _f(
        2.0, "drop images with long/short side above (mmc4: 2)", min=1
    )
    nsfw_max: float | None = _f(0.1, "drop images with nsfw_p above this (mmc4: 0.1)", **RATIO)
    faces: str = _f(
        "keep",
        "keep, or drop_doc: drop documents with a face (mmc4 fewer-faces)",
        choices=("keep", "drop_doc"),
    )
    core: bool = _f(
        False,
        "keep only mmc4-core documents: 4-40 sentences, 2-15 images, >= 75% "
        "of assignments with similarity > 0.25",
    )


@dataclass
class ShardConfig(Config):
    """How ``curate docs assign`` cuts its output into shards."""

    section: ClassVar[str] = "docs assign"

    docs_per_shard: int = _f(
        100, "input documents per shard (a shard holds those of them that are kept)", min=1
    )
