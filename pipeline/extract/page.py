"""One decoded HTML page -> image-alt-text pairs and an interleaved document (selectolax/lexbor).

Pairs are read from the whole page (LAION and cc2dataset keep every ``<img>`` with alt text).
The document is read from a simplified DOM: boilerplate elements are removed, inline elements
are unwrapped and their text merged, so every remaining text node is one block of text; images
are swapped for position markers, so a single C-level ``text()`` call returns text and images in
page order.
"""

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from vlcurate.pipeline.extract.urls import base_url, image_url
from vlcurate.schemas.extract import IMAGE_NO_ALT

# Removed with everything inside them before the document is read.
BOILERPLATE_TAGS = (
    "script style noscript template nav header footer form aside iframe svg math canvas button "
    "select input textarea label object embed menu dialog video audio map"
).split()
# Unwrapped (tag removed, text kept) so that their text joins the surrounding block.
INLINE_TAGS = (
    "a abbr acronym b bdi bdo big cite code data del dfn em font i ins kbd mark nobr q s samp "
    "small span strike strong sub sup time tt u var wbr picture"
).split()

_INLINE_SELECTOR = ",".join(INLINE_TAGS)
_BLOCK_SEP = "\ue002"  # between text nodes in text(): a private-use character, not whitespace
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"  # private-use characters around an image index
_MARKER = re.compile(f"{_MARK_OPEN}img(\\d+){_MARK_CLOSE}")
# C0 controls (bar whitespace, which split() collapses), DEL and U+FFFD (the parser turns NUL
# and undecodable bytes into it), dropped from text.
_STRIP_CONTROLS = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127, 0xFFFD])
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_MAX_INT32 = 2**31 - 1


def clean_text(text: str, max_chars: int | None = None) -> str:
    """Remove control characters and collapse whitespace."""
    if _CONTROLS.search(text):
        text = text.translate(_STRIP_CONTROLS)
    text = " ".join(text.split())
    return text[:max_chars] if max_chars else text


def pair_uid(caption: str, url: str) -> str:
    """cc2dataset's uid: md5 of alt text + URL."""
    return hashlib.md5((caption + url).encode("utf-8", "surrogatepass")).hexdigest()


def _dimension(value: str | None) -> int | None:
    """An ``<img width>`` attribute as an int: ``"300"`` and ``"300px"`` yes, ``"50%"`` no."""
    if not value:
        return None
    value = value.strip().lower().removesuffix("px").strip()
    if not value.isdigit() or len(value) > 9:
        return None
    number = int(value)
    return number if 0 < number <= _MAX_INT32 else None


@dataclass(slots=True)
class PageContent:
    title: str | None
    lang: str | None
    pairs: list[dict]  # url, caption, width, height, position, uid
    nodes: list[tuple]  # ("text", text, None, None) or ("image", None, url, alt)
    image_drops: Counter = field(default_factory=Counter)
    images_seen: int = 0


def extract_page(
    html: str | bytes, page_url: str, max_alt_chars: int = 1000, max_url_length: int = 2048
):
    """Parse one page (``str``, or UTF-8 ``bytes``). ``page_url`` must be absolute; it is the
    base for relative URLs."""
    tree = LexborHTMLParser(html)
    pictures = (b"<picture", b"<PICTURE") if isinstance(html, bytes) else ("<picture", "<PICTURE")
    has_picture = pictures[0] in html or pictures[1] in html
    root = tree.root
    lang = None
    if root is not None and root.tag == "html":
        lang = clean_text(root.attributes.get("lang") or "", 35).lower() or None
    title_node = tree.css_first("title")
    title = clean_text(title_node.text(), 1000) or None if title_node is not None else None
    base_node = tree.css_first("base[href]")
    base = base_url(page_url, base_node.attributes.get("href") if base_node is not None else None)
    images = tree.css("img")
    pairs, drops, image_of = _pairs(images, base, has_picture, max_alt_chars, max_url_length)
    nodes = _document(tree, image_of)
    return PageContent(title, lang, pairs, nodes, drops, len(images))


def _pairs(images, base: str, has_picture: bool, max_alt_chars: int, max_url_length: int):
    """Every image element on the page -> pair rows, the reasons of those without a pair, and
    ``mem_id -> (url, alt)`` of the images with a URL (for the document pass)."""
    pairs, drops = [], Counter()
    image_of = {}
    for position, img in enumerate(images):
        attrs = img.attributes
        extra = ()
        if has_picture:
            parent = img.parent
            if parent is not None and parent.tag == "picture":
                extra = [s.attributes.get("srcset") or "" for s in parent.css("source")]
        url, reason = image_url(attrs, base, extra, max_url_length)
        if url is None:
            drops[reason] += 1
            continue
        alt = clean_text(attrs.get("alt") or "", max_alt_chars)
        image_of[img.mem_id] = (url, alt)
        if not alt:
            drops[IMAGE_NO_ALT] += 1
            continue
        pairs.append(
            {
                "uid": pair_uid(alt, url),
                "url": url,
                "caption": alt,
                "width": _dimension(attrs.get("width")),
                "height": _dimension(attrs.get("height")),
                "position": position,
            }
        )
    return pairs, drops, image_of


def _document(tree, image_of: dict) -> list[tuple]:
    """The simplified DOM: text blocks and images in page order."""
    body = tree.body
    if body is None:
        return []
    tree.strip_tags(BOILERPLATE_TAGS, recursive=True)
    doc_images = []
    for img in body.css("img"):
        info = image_of.get(img.mem_id)
        if info is None:
            img.decompose()
            continue
        img.replace_with(f"{_BLOCK_SEP}{_MARK_OPEN}img{len(doc_images)}{_MARK_CLOSE}{_BLOCK_SEP}")
        doc_images.append(info)
    for inline in body.css(_INLINE_SELECTOR):  # one C-level query, faster than unwrap_tags
        inline.unwrap()
    body.merge_text_nodes()
    text = body.text(separator=_BLOCK_SEP, skip_empty=True)
    if _CONTROLS.search(text):
        text = text.translate(_STRIP_CONTROLS)
    nodes = []
    for block in text.split(_BLOCK_SEP):
        if _MARK_OPEN in block and _MARKER.search(block):
            pieces = _MARKER.split(block)  # text, index, text, index, ..., text
            for i, piece in enumerate(pieces):
                if i % 2:
                    nodes.append(("image", None, *doc_images[int(piece)]))
                elif piece := " ".join(piece.split()):
                    nodes.append(("text", piece, None, None))
        elif block := " ".join(block.split()):
            nodes.append(("text", block, None, None))
    return nodes
