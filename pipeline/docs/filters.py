"""Rules for interleaved documents (``docs/`` rows, see ``schemas/extract.py``), with OBELICS's
published thresholds (and mmc4's image-URL rules) as defaults.

Three kinds of rule (:mod:`vlcurate.pipeline.docs.rules`, each with ``judge(batch) ->
Verdict``), applied in this order by :class:`DocumentFilter` to a batch of documents:

1. image nodes (``ImageNodeRules``): a failing image node is removed from the document;
2. text nodes (``TextNodeRules``): a failing text node is removed from the document;
3. the document (``DocumentRules``), on what is left: a failing document is dropped whole.

Thresholds are :class:`vlcurate.pipeline.docs.config.DocFilterConfig`. Definitions
(:mod:`vlcurate.pipeline.docs.measures` says the same, precisely):

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

from collections import Counter
from collections.abc import Iterable

from vlcurate.pipeline.docs.config import DocFilterConfig
from vlcurate.pipeline.docs.rules import (
    IMAGE_IN_DROPPED_DOC,
    NODE_MALFORMED,
    TEXT_IN_DROPPED_DOC,
    TEXT_REASONS,
    DocumentRules,
    DocumentText,
    ImageNodeRules,
    TextNodeRules,
)
from vlcurate.pipeline.stats import StageStats
from vlcurate.pipeline.verdict import Verdict

STAGE = "docs_filter"
TEXT, IMAGE, OTHER = 0, 1, 2  # node kinds


def frequent_urls(url_counts: dict[str, int], max_count: int = 10) -> set[str]:
    """The image URLs counted more than ``max_count`` times across the corpus: pass them to
    the image rules as ``banned_urls``."""
    return {url for url, count in url_counts.items() if count > max_count}


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
    """All three kinds of rule, set up once. :meth:`judge` takes a batch of documents and
    gives a reason per document (``None``: kept) with the columns ``documents`` (each kept
    document with its failing nodes removed, else None), ``node_drops`` (a Counter of node
    reasons per document) and ``texts`` (the :class:`DocumentText` the document rules saw)."""

    def __init__(self, config: DocFilterConfig, banned_urls: frozenset[str] | set[str] = ()):
        self.text = TextNodeRules(config)
        self.image = ImageNodeRules(config, banned_urls)
        self.document = DocumentRules(config)

    def __call__(self, doc: dict) -> tuple[dict | None, str | None, Counter]:
        """One document: ``(kept document or None, its drop reason or None, node drops)``."""
        verdict = self.judge([doc])
        columns = verdict.columns
        return columns["documents"][0], verdict.reasons[0], columns["node_drops"][0]

    def judge(self, docs: list) -> Verdict:
        plans, texts, urls = _plan(docs)
        text_verdict = self.text.judge(texts)
        node_reasons = {
            TEXT: text_verdict.reasons.tolist(),
            IMAGE: self.image.judge(urls).reasons.tolist(),
        }
        words = text_verdict.columns["words"]
        parts = [_kept_nodes(plan, node_reasons, texts, words) for plan in plans]
        summaries = [text for _, text, _ in parts]
        reasons = self.document.judge(summaries).reasons
        documents = [
            _kept_document(doc, nodes, text, reason, dropped)
            for doc, (nodes, text, dropped), reason in zip(docs, parts, reasons, strict=True)
        ]
        node_drops = [dropped for _, _, dropped in parts]
        columns = {"documents": documents, "node_drops": node_drops, "texts": summaries}
        return Verdict(reasons, columns)


def _plan(docs: list) -> tuple[list[list[tuple]], list, list]:
    """Every node of every document as ``(node, kind, index)``, the index into the flat batch
    of node texts or image URLs its kind is judged in."""
    plans, texts, urls = [], [], []
    for doc in docs:
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        plan = []
        for node in nodes or ():
            kind, text, url = _node_fields(node)
            if kind == "image":
                plan.append((node, IMAGE, len(urls)))
                urls.append(url)
            elif kind == "text":
                plan.append((node, TEXT, len(texts)))
                texts.append(text)
            else:
                plan.append((node, OTHER, -1))
        plans.append(plan)
    return plans, texts, urls


def _kept_nodes(plan: list[tuple], node_reasons: dict, texts: list, words: list):
    """One document's kept nodes, what the document rules see of it, and its node drops."""
    kept, seen, dropped = [], DocumentText([], [], 0), Counter()
    for node, kind, i in plan:
        reason = node_reasons[kind][i] if kind != OTHER else NODE_MALFORMED
        if reason is not None:
            dropped[reason] += 1
            continue
        kept.append(node)
        if kind == IMAGE:
            seen.n_images += 1
        else:
            seen.texts.append(texts[i])
            seen.words.extend(words[i])
    return kept, seen, dropped


def _kept_document(doc, nodes: list, text: DocumentText, reason, dropped: Counter) -> dict | None:
    """The document with only its kept ``nodes``, or None (its kept nodes then counted as
    dropped with it)."""
    if reason is None:
        return {**doc, "nodes": nodes}
    if text.n_images:
        dropped[IMAGE_IN_DROPPED_DOC] += text.n_images
    if len(nodes) > text.n_images:
        dropped[TEXT_IN_DROPPED_DOC] += len(nodes) - text.n_images
    return None


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
    verdict = DocumentFilter(config, banned_urls).judge(list(rows))
    columns = verdict.columns
    kept = []
    for reason, out, text, node_drops in zip(
        verdict.reasons, columns["documents"], columns["texts"], columns["node_drops"], strict=True
    ):
        if out is None:
            stats.main.drop(reason)
        else:
            stats.main.keep()
            kept.append(out)
            tallies["image_nodes"].keep(text.n_images)
            tallies["text_nodes"].keep(len(out["nodes"]) - text.n_images)
            tallies["nodes"].keep(len(out["nodes"]))
        for node_reason, n in node_drops.items():
            tallies["nodes"].drop(node_reason, n)
            kind = "text_nodes" if node_reason in text_reasons else "image_nodes"
            tallies[kind].drop(node_reason, n)
    return kept, stats.to_dict()
