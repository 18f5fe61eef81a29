"""Rules for interleaved documents (``docs/`` rows, see ``schemas/extract.py``), with OBELICS's
published thresholds (and mmc4's image-URL rules) as defaults.

Three kinds of rule, applied in this order:

1. image nodes (``ImageNodeRules``): a failing image node is removed from the document;
2. text nodes (``TextNodeRules``): a failing text node is removed from the document;
3. the document (``DocumentRules``), on what is left: a failing document is dropped whole.

Definitions (``normalise`` and the ratio functions below say the same, precisely):

- *words* of a text are its whitespace-separated tokens (``str.split()``); the word count is
  their number. A word's *normalised* form is lower-cased, with ``’`` read as ``'`` and
  punctuation stripped from both ends (it may become empty: ``"—"`` -> ``""``).
- *repetition ratio* with n-grams (of characters or of normalised words): the share of all
  n-grams (one starting at every position) that are occurrences of an n-gram seen more than
  once in the same text. ``abcabc`` has the 3-grams abc, bca, cab, abc: 2 of 4 are repeats,
  0.5. A text with fewer than n units has no n-grams and ratio 0. Characters are counted on
  the lower-cased text with whitespace runs collapsed to one space. (OBELICS's character rule
  sums the counts of the top sqrt(k) distinct n-grams instead; ours does not punish short,
  repetition-free text.)
- *special-character ratio*: characters that are neither letters, combining marks (Unicode
  categories L*, M*) nor whitespace (so digits, punctuation, symbols, emoji, control and
  format characters), divided by all characters, whitespace included. Empty text: 0.
- *stopword ratio* / *flagged-word ratio*: words whose normalised form is in
  ``words.STOPWORDS`` / ``words.FLAGGED_WORDS``, divided by the word count. No words: 0.

Document-level values are computed on the kept text nodes together: the word count is the
sum over nodes, the word n-grams run over the nodes' normalised words in order, and special
characters are counted over the node texts joined by newlines. Language id runs fastText
(the bundled lid.176, as ``vlcurate.pipeline.filters.language``) on the words joined by spaces.

Node accounting: every node of every document is kept, dropped by a node rule, or dropped
with its document (``text_in_dropped_doc`` / ``image_in_dropped_doc``).
"""

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vlcurate.pipeline.docs.words import FLAGGED_WORDS, STOPWORDS
from vlcurate.pipeline.stats import StageStats

STAGE = "doc_filter"

# --- text-node reasons (the node is removed) ------------------------------------------------
NODE_MALFORMED = "node_malformed"  # neither a text nor an image node
NODE_TOO_SHORT = "node_too_short"  # fewer words than min_node_words (also empty / None text)
NODE_TOO_LONG = "node_too_long"
NODE_CHAR_REPETITION = "node_char_repetition"  # character n-gram repetition too high
NODE_WORD_REPETITION = "node_word_repetition"
NODE_SPECIAL_CHARS = "node_special_characters"  # too many special characters
NODE_TOO_FEW_STOPWORDS = "node_too_few_stopwords"
NODE_FLAGGED_WORDS = "node_flagged_words"  # too many flagged words
TEXT_IN_DROPPED_DOC = "text_in_dropped_doc"  # passed the node rules; its document did not
TEXT_REASONS = (
    NODE_MALFORMED,
    NODE_TOO_SHORT,
    NODE_TOO_LONG,
    NODE_CHAR_REPETITION,
    NODE_WORD_REPETITION,
    NODE_SPECIAL_CHARS,
    NODE_TOO_FEW_STOPWORDS,
    NODE_FLAGGED_WORDS,
    TEXT_IN_DROPPED_DOC,
)

# --- image-node reasons (the node is removed) -----------------------------------------------
IMAGE_NO_URL = "image_no_url"  # missing, empty or unparsable URL
IMAGE_FORMAT = "image_format"  # extension (of the URL path) not allowed, or none
IMAGE_URL_WORDS = "image_url_words"  # logo, button, icon, ... in the URL path
IMAGE_FREQUENT_URL = "image_frequent_url"  # in the corpus-wide banned set (frequent_urls)
IMAGE_IN_DROPPED_DOC = "image_in_dropped_doc"
IMAGE_REASONS = (
    IMAGE_NO_URL,
    IMAGE_FORMAT,
    IMAGE_URL_WORDS,
    IMAGE_FREQUENT_URL,
    IMAGE_IN_DROPPED_DOC,
)

# --- document reasons (the whole document is dropped), in the order they are checked --------
DOC_NO_TEXT = "no_text"  # no text node left after the node rules
DOC_NO_IMAGES = "no_images"  # no image node left after the node rules
DOC_TOO_FEW_IMAGES = "too_few_images"  # some, but fewer than min_images
DOC_TOO_MANY_IMAGES = "too_many_images"
DOC_TOO_SHORT = "doc_too_short"  # words
DOC_TOO_LONG = "doc_too_long"
DOC_WORD_REPETITION = "doc_word_repetition"
DOC_SPECIAL_CHARS = "doc_special_characters"
DOC_TOO_FEW_STOPWORDS = "doc_too_few_stopwords"
DOC_LANGUAGE_UNCERTAIN = "doc_language_uncertain"  # top fastText score below min_lang_score
DOC_LANGUAGE_NOT_WANTED = "doc_language_not_wanted"  # top language not in `languages`
DOC_REASONS = (
    DOC_NO_TEXT,
    DOC_NO_IMAGES,
    DOC_TOO_FEW_IMAGES,
    DOC_TOO_MANY_IMAGES,
    DOC_TOO_SHORT,
    DOC_TOO_LONG,
    DOC_WORD_REPETITION,
    DOC_SPECIAL_CHARS,
    DOC_TOO_FEW_STOPWORDS,
    DOC_LANGUAGE_UNCERTAIN,
    DOC_LANGUAGE_NOT_WANTED,
)


def _f(default, help: str, **kw):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class DocFilterConfig:
    """Every threshold of the document filters. Defaults: OBELICS (text, document, images per
    document) and mmc4 (png/jpg only, URL words). Bounds are inclusive: a value exactly at a
    threshold passes."""

    min_node_words: int = _f(4, "text nodes with fewer words are removed")
    max_node_words: int = _f(1000, "text nodes with more words are removed")
    node_char_ngram: int = _f(10, "n of the character n-grams of the node repetition rule")
    max_node_char_repetition: float = _f(0.1, "text nodes with a higher ratio are removed")
    node_word_ngram: int = _f(5, "n of the word n-grams of the node repetition rule")
    max_node_word_repetition: float = _f(0.1, "text nodes with a higher ratio are removed")
    max_node_special_chars: float = _f(0.3, "text nodes with a higher ratio are removed")
    min_node_stopwords: float = _f(0.3, "text nodes with a lower stopword ratio are removed")
    max_node_flagged_words: float = _f(0.01, "text nodes with a higher ratio are removed")
    min_doc_words: int = _f(10, "documents with fewer words (after node rules) are dropped")
    max_doc_words: int = _f(2000, "documents with more words are dropped")
    doc_word_ngram: int = _f(5, "n of the word n-grams of the document repetition rule")
    max_doc_word_repetition: float = _f(0.2, "documents with a higher ratio are dropped")
    max_doc_special_chars: float = _f(0.275, "documents with a higher ratio are dropped")
    min_doc_stopwords: float = _f(0.35, "documents with a lower stopword ratio are dropped")
    min_lang_score: float = _f(0.8, "documents whose top fastText score is lower are dropped")
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
    min_images: int = _f(1, "documents with fewer images (after node rules) are dropped")
    max_images: int = _f(30, "documents with more images (after node rules) are dropped")
    max_url_count: int = _f(10, "image URLs seen more often across the corpus are removed")


def frequent_urls(url_counts: dict[str, int], max_count: int = 10) -> set[str]:
    """The image URLs counted more than ``max_count`` times across the corpus: pass them to
    the image rules as ``banned_urls``."""
    return {url for url, count in url_counts.items() if count > max_count}


# --- measures ---------------------------------------------------------------------------------
_STRIP = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum()) + "“”‘’«»„‚‹›—–…¡¿·•"
_SPECIAL: dict[str, bool] = {}  # per-character cache of is_special


def normalise(word: str) -> str:
    return word.lower().replace("’", "'").strip(_STRIP)


def _is_special(char: str) -> bool:
    special = _SPECIAL.get(char)
    if special is None:
        special = not char.isspace() and unicodedata.category(char)[0] not in "LM"
        _SPECIAL[char] = special
    return special


def special_char_ratio(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)  # one pass in C; then one check per distinct character
    return sum(n for char, n in counts.items() if _is_special(char)) / len(text)


def _repeated_share(grams: Iterable, total: int) -> float:
    if total <= 0:
        return 0.0
    return sum(n for n in Counter(grams).values() if n > 1) / total


def char_repetition_ratio(text: str, n: int = 10) -> float:
    text = " ".join(text.lower().split())
    total = len(text) - n + 1
    return _repeated_share((text[i : i + n] for i in range(total)), total)


def word_repetition_ratio(words: list[str], n: int = 5) -> float:
    """``words``: normalised words."""
    return _repeated_share(zip(*(words[i:] for i in range(n)), strict=False), len(words) - n + 1)


def word_list_ratio(words: list[str], vocabulary: frozenset[str]) -> float:
    """``words``: normalised words."""
    return sum(w in vocabulary for w in words) / len(words) if words else 0.0


# --- rules ----------------------------------------------------------------------------------
class TextNodeRules:
    reasons = TEXT_REASONS

    def __init__(self, config: DocFilterConfig):
        self.c = config

    def judge(self, text: str | None) -> tuple[str | None, list[str]]:
        """``(reason or None, normalised words)``; the rules are checked in the order of
        ``reasons`` and the first failing one is returned."""
        c = self.c
        tokens = text.split() if isinstance(text, str) else []
        if len(tokens) < c.min_node_words:
            return NODE_TOO_SHORT, []
        if len(tokens) > c.max_node_words:
            return NODE_TOO_LONG, []
        if char_repetition_ratio(text, c.node_char_ngram) > c.max_node_char_repetition:
            return NODE_CHAR_REPETITION, []
        words = [normalise(t) for t in tokens]
        if word_repetition_ratio(words, c.node_word_ngram) > c.max_node_word_repetition:
            return NODE_WORD_REPETITION, words
        if special_char_ratio(text) > c.max_node_special_chars:
            return NODE_SPECIAL_CHARS, words
        if word_list_ratio(words, STOPWORDS) < c.min_node_stopwords:
            return NODE_TOO_FEW_STOPWORDS, words
        if word_list_ratio(words, FLAGGED_WORDS) > c.max_node_flagged_words:
            return NODE_FLAGGED_WORDS, words
        return None, words


class ImageNodeRules:
    reasons = IMAGE_REASONS

    def __init__(self, config: DocFilterConfig, banned_urls: frozenset[str] | set[str] = ()):
        self.extensions = {e.lower().lstrip(".") for e in config.image_extensions}
        self.keep_no_extension = config.keep_no_extension
        self.url_words = tuple(w.lower() for w in config.image_url_words if w)
        self.banned = banned_urls or frozenset()

    def judge(self, url: str | None) -> str | None:
        if not isinstance(url, str) or not url.strip():
            return IMAGE_NO_URL
        try:
            path = urlsplit(url.strip()).path
        except ValueError:
            return IMAGE_NO_URL
        name = path.rsplit("/", 1)[-1].split(";", 1)[0]  # ;jsessionid=... is not the extension
        if "." in name:
            if name.rsplit(".", 1)[1].lower() not in self.extensions:
                return IMAGE_FORMAT
        elif not self.keep_no_extension:
            return IMAGE_FORMAT
        lowered = path.lower()
        if any(word in lowered for word in self.url_words):
            return IMAGE_URL_WORDS
        if url in self.banned:
            return IMAGE_FREQUENT_URL
        return None


class DocumentRules:
    reasons = DOC_REASONS

    def __init__(self, config: DocFilterConfig):
        self.c = config
        self._model = None

    def _language(self, text: str) -> tuple[str | None, float]:
        if self._model is None:
            from vlcurate.pipeline.filters.language import load_fasttext

            self._model = load_fasttext(self.c.lang_model)
        top = self._model.f.predict(text + "\n", 1, 0.0, "replace")
        return (top[0][1].removeprefix("__label__"), top[0][0]) if top else (None, 0.0)

    def judge(self, texts: list[str], words: list[str], n_tokens: int, n_images: int):
        """The reason to drop a document with these kept node ``texts`` (their normalised
        ``words``, ``n_tokens`` words in all) and ``n_images`` kept images, or ``None``."""
        c = self.c
        if not texts:
            return DOC_NO_TEXT
        if n_images == 0 and c.min_images > 0:
            return DOC_NO_IMAGES
        if n_images < c.min_images:
            return DOC_TOO_FEW_IMAGES
        if n_images > c.max_images:
            return DOC_TOO_MANY_IMAGES
        if n_tokens < c.min_doc_words:
            return DOC_TOO_SHORT
        if n_tokens > c.max_doc_words:
            return DOC_TOO_LONG
        if word_repetition_ratio(words, c.doc_word_ngram) > c.max_doc_word_repetition:
            return DOC_WORD_REPETITION
        if special_char_ratio("\n".join(texts)) > c.max_doc_special_chars:
            return DOC_SPECIAL_CHARS
        if word_list_ratio(words, STOPWORDS) < c.min_doc_stopwords:
            return DOC_TOO_FEW_STOPWORDS
        if c.min_lang_score > 0 or c.languages:
            language, score = self._language(" ".join(" ".join(texts).split()))
            if score < c.min_lang_score:
                return DOC_LANGUAGE_UNCERTAIN
            if c.languages and language not in c.languages:
                return DOC_LANGUAGE_NOT_WANTED
        return None


def _node_fields(node) -> tuple:
    """``(type, text, url)`` of a node given as a dict (parquet rows) or as a
    ``(type, text, url, alt)`` tuple (``vlcurate.pipeline.extract.stage`` rows); ``(None,) * 3``
    if neither."""
    if isinstance(node, dict):
        return node.get("type"), node.get("text"), node.get("url")
    if isinstance(node, tuple | list) and len(node) >= 3:
        return node[0], node[1], node[2]
    return None, None, None


class DocumentFilter:
    """All three kinds of rule, set up once; call it on one document at a time."""

    def __init__(self, config: DocFilterConfig, banned_urls: frozenset[str] | set[str] = ()):
        self.text = TextNodeRules(config)
        self.image = ImageNodeRules(config, banned_urls)
        self.document = DocumentRules(config)

    def __call__(self, doc: dict) -> tuple[dict | None, str | None, Counter]:
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        kept, texts, words, dropped = [], [], [], Counter()
        n_tokens = n_images = 0
        for node in nodes or ():
            kind, text, url = _node_fields(node)
            if kind == "image":
                reason = self.image.judge(url)
                n_images += reason is None
            elif kind == "text":
                reason, node_words = self.text.judge(text)
                if reason is None:
                    texts.append(text)
                    words.extend(node_words)
                    n_tokens += len(node_words)
            else:
                reason = NODE_MALFORMED
            if reason is None:
                kept.append(node)
            else:
                dropped[reason] += 1
        reason = self.document.judge(texts, words, n_tokens, n_images)
        if reason is not None:
            if n_images:
                dropped[IMAGE_IN_DROPPED_DOC] += n_images
            if len(kept) > n_images:
                dropped[TEXT_IN_DROPPED_DOC] += len(kept) - n_images
            return None, reason, dropped
        return {**doc, "nodes": kept}, None, dropped


def filter_document(
    doc: dict, config: DocFilterConfig, banned_urls: frozenset[str] | set[str] = frozenset()
) -> tuple[dict | None, str | None, Counter]:
    """``(kept document or None, document drop reason or None, node drop reasons)``. The
    kept document is ``doc`` with failing nodes removed. For every document,
    ``len(nodes) == len(kept nodes) + sum(node reasons)`` (a dropped document keeps none)."""
    return DocumentFilter(config, banned_urls)(doc)


def filter_documents(
    rows: Iterable[dict],
    config: DocFilterConfig,
    banned_urls: frozenset[str] | set[str] = frozenset(),
    stats: StageStats | None = None,
) -> tuple[list[dict], dict]:
    """Kept documents and the stats dict: documents in ``in``/``kept``/``dropped``, and the
    tallies ``nodes``, ``text_nodes`` and ``image_nodes``, each with in == kept + dropped.
    Pass ``stats`` to accumulate into a StageStats of your own."""
    stats = stats or StageStats(STAGE)
    tallies = {t: stats.tally(t) for t in ("nodes", "text_nodes", "image_nodes")}
    text_reasons = set(TEXT_REASONS)
    judge = DocumentFilter(config, banned_urls)
    kept = []
    for doc in rows:
        out, reason, node_drops = judge(doc)
        if out is None:
            stats.main.drop(reason)
        else:
            stats.main.keep()
            kept.append(out)
            n_images = sum(_node_fields(n)[0] == "image" for n in out["nodes"])
            tallies["image_nodes"].keep(n_images)
            tallies["text_nodes"].keep(len(out["nodes"]) - n_images)
            tallies["nodes"].keep(len(out["nodes"]))
        for node_reason, n in node_drops.items():
            tallies["nodes"].drop(node_reason, n)
            kind = "text_nodes" if node_reason in text_reasons else "image_nodes"
            tallies[kind].drop(node_reason, n)
    return kept, stats.to_dict()
