"""The node and document rules of the docs filter, each with the one filter protocol
(:mod:`vlcurate.pipeline.verdict`): ``judge(batch) -> Verdict``, a reason per item (``None``:
kept), the rules of a kind checked in the order of its ``reasons`` and the first failing one
given. What each measure means is in :mod:`vlcurate.pipeline.docs.filters`."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from vlcurate.pipeline.docs.config import DocFilterConfig
from vlcurate.pipeline.docs.measures import (
    char_repetition_ratio,
    normalise,
    special_char_ratio,
    word_list_ratio,
    word_repetition_ratio,
)
from vlcurate.pipeline.docs.words import FLAGGED_WORDS, STOPWORDS
from vlcurate.pipeline.verdict import Verdict

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


class TextNodeRules:
    """A batch of node texts (``str`` or None) in; the verdict carries each text's normalised
    words as the column ``words`` (empty for a node dropped before they were needed)."""

    reasons = TEXT_REASONS

    def __init__(self, config: DocFilterConfig):
        self.c = config

    def judge(self, texts: list) -> Verdict:
        reasons, words = [], []
        for text in texts:
            reason, node_words = self._one(text)
            reasons.append(reason)
            words.append(node_words)
        return Verdict.of(reasons, words=words)

    def _one(self, text: str | None) -> tuple[str | None, list[str]]:
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
    """A batch of image URLs (``str`` or None) in; ``banned_urls`` are the corpus-wide
    frequent ones."""

    reasons = IMAGE_REASONS

    def __init__(self, config: DocFilterConfig, banned_urls: frozenset[str] | set[str] = ()):
        self.extensions = {e.lower().lstrip(".") for e in config.image_extensions}
        self.keep_no_extension = config.keep_no_extension
        self.url_words = tuple(w.lower() for w in config.image_url_words if w)
        self.banned = banned_urls or frozenset()

    def judge(self, urls: list) -> Verdict:
        return Verdict.of(self._one(url) for url in urls)

    def _one(self, url: str | None) -> str | None:
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


@dataclass(slots=True)
class DocumentText:
    """What the document rules see of one document: its kept node ``texts``, their normalised
    ``words`` in order, and its number of kept images."""

    texts: list[str]
    words: list[str]
    n_images: int


class DocumentRules:
    """A batch of :class:`DocumentText` in."""

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

    def judge(self, docs: list[DocumentText]) -> Verdict:
        return Verdict.of(self._one(doc) for doc in docs)

    def _one(self, doc: DocumentText) -> str | None:
        c, texts, words, n_images = self.c, doc.texts, doc.words, doc.n_images
        if not texts:
            return DOC_NO_TEXT
        if n_images == 0 and c.min_images > 0:
            return DOC_NO_IMAGES
        if n_images < c.min_images:
            return DOC_TOO_FEW_IMAGES
        if n_images > c.max_images:
            return DOC_TOO_MANY_IMAGES
        if len(words) < c.min_doc_words:
            return DOC_TOO_SHORT
        if len(words) > c.max_doc_words:
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
