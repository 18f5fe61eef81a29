"""Lay the samples out on HTML pages and write the markup a real site would use.

Every sample appears on exactly one page. Image elements vary the way the web does: plain
``<img>``, ``srcset`` (the largest candidate is the real image, smaller ones are served
thumbnails), lazy loading (``data-src`` with a placeholder ``src``), ``<picture><source>``, and
absolute, root-relative, dot-relative, protocol-relative and ``<base href>``-relative URLs.
Each sample's ``page_url`` and ``markup`` (``element+url_style``) are set here.
"""

import html
import random
import re
from dataclasses import dataclass

from vlcurate.miniweb import images, text
from vlcurate.miniweb.catalog import Catalog
from vlcurate.miniweb.manifest import Sample

ELEMENTS = ("img", "img", "lazy", "srcset", "img", "lazy_placeholder", "img", "srcset", "lazy")
URL_STYLES = ("absolute", "absolute", "root", "dot", "absolute", "protocol", "root")
PICTURES = {5: "picture", 41: "picture_source_only"}  # index among ordinary samples -> element
BASE_PAGE = 3  # this page has <base href="/img/">
THUMB_WIDTH = 160
_DATA_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
_URL_STYLE_HINTS = {"dot", "root", "absolute", "protocol"}


@dataclass(slots=True)
class Page:
    url: str
    path: str  # relative to site/
    lang: str
    charset: str
    title: str
    html: bytes


def _chunks(rng: random.Random, samples: list[Sample]) -> list[list[Sample]]:
    out, i = [], 0
    while i < len(samples):
        k = rng.randint(5, 10)
        out.append(samples[i : i + k])
        i += k
    return out


def _ordinary(sample: Sample) -> bool:
    """Served locally, decodes, and gets a varied element (srcset, lazy, picture)."""
    return sample.expected_download == "success" and sample.path is not None


class _Renderer:
    """Writes one page's image elements; remembers the thumbnails ``srcset`` needs."""

    def __init__(self, cat: Catalog, port_host: str):
        self.cat, self.host = cat, port_host
        self.n_ordinary = 0
        self.n_local = 0

    def ref(self, path: str, style: str) -> str:
        return {
            "absolute": f"{self.cat.base}/{path}",
            "root": f"/{path}",
            "dot": f"../{path}",
            "protocol": f"//{self.host}/{path}",
            "base": path.removeprefix("img/"),
        }[style]

    def element(self, sample: Sample, base_page: bool) -> str:
        hint = sample.markup
        if sample.path is None and not sample.image_url.startswith(self.cat.base):
            element, style, path = "img", "absolute", None  # private and foreign hosts
        else:
            path = sample.path or sample.image_url.removeprefix(self.cat.base + "/")
            if _ordinary(sample):
                element = PICTURES.get(self.n_ordinary, ELEMENTS[self.n_ordinary % len(ELEMENTS)])
                self.n_ordinary += 1
            else:
                element = "img"
            style = URL_STYLES[self.n_local % len(URL_STYLES)]
            self.n_local += 1
            if hint in _URL_STYLE_HINTS:
                style = hint
            if base_page and path.startswith("img/"):
                style = "base"
        alt_hint = f"+{hint}" if hint in ("empty_alt", "no_alt_attribute") else ""
        sample.markup = f"{element}+{style}{alt_hint}"
        real = sample.image_url if path is None else self.ref(path, style)
        alt = "" if hint == "no_alt_attribute" else f' alt="{html.escape(sample.alt)}"'
        return self._markup(element, real, alt, sample, path, style)

    def _markup(self, element, real, alt, sample, path, style) -> str:
        src = html.escape(real)
        if element == "img":
            size = ""
            if style == "absolute" and sample.width:
                size = f' width="{sample.width}" height="{sample.height}"'
            return f'<img src="{src}"{alt}{size} loading="lazy">'
        if element == "lazy":
            return f'<img class="lazyload" src="{_DATA_GIF}" data-src="{src}"{alt}>'
        if element == "lazy_placeholder":
            return f'<img class="lazy" src="/static/placeholder.gif" data-original="{src}"{alt}>'
        if element == "srcset":
            thumb_path = f"img/thumbs/{sample.id}-{THUMB_WIDTH}w.jpg"
            if thumb_path not in self.cat.files:
                self.cat.put(thumb_path, images.thumbnail(self.cat.files[path], THUMB_WIDTH))
            thumb = html.escape(self.ref(thumb_path, style if style != "base" else "root"))
            return (
                f'<img src="{thumb}" srcset="{thumb} {THUMB_WIDTH}w, {src} {sample.width}w" '
                f'sizes="(max-width: 600px) 100vw, 600px"{alt}>'
            )
        if element == "picture":
            source = f'<source srcset="{src}" type="image/jpeg">'
            return f'<picture>{source}<img src="{src}"{alt}></picture>'
        # picture_source_only: the <img> has no URL of its own, only its <source> does
        return f'<picture><source srcset="{src} 1x"><img{alt}></picture>'


# One per sample of a page (a page has at most 10). A short sentence that holds the caption, as a
# caption-like sentence is what a CLIP matches best, and a second one of filler that gives the
# paragraph enough words and function words for OBELICS's node rules (stopwords >= 0.3,
# character repetition <= 0.1); no two descriptions of a page share their words around the
# caption (word 5-gram repetition). Longer one-sentence templates matched fewer pictures to
# their own description with the mini web's CLIP (17 of 30 on the road test, against 20 now).
_SHOWS = (
    "This picture shows {}. One of our readers made it for this page.",
    "Here you can see {}. It was one of the first pictures on the site.",
    "The next image has {}. We think that it works well.",
    "In this photo: {}. It is small, but you can open it in full size.",
    "Look closely and you will find {}. It took a while to get it right.",
    "Next is {}. This is one of our favourites.",
    "Our next picture has {}. You can use it in your own class.",
    "Below the text is {}. We made it with a free drawing tool.",
    "This one shows {}. It was sent to us by a teacher.",
    "And here is {}. There will be more of these next week.",
)


def _description(sample: Sample, i: int) -> str:
    """A sentence of the page that says what an English image shows, as real pages do near
    their pictures (what mmc4 assigns images to); none for other samples. Uses no randomness,
    so the layout is the same with or without it."""
    if sample.language not in (None, "en") or not sample.caption_true:
        return ""
    return f"<p>{html.escape(_SHOWS[i % len(_SHOWS)].format(sample.caption_true))}</p>"


# How many sentences each language had when paragraphs were drawn from the layout's generator:
# ``_paragraph`` still makes those draws, so the layout of a seed stays what it was.
_LAYOUT_POOL = {"en": 12, "fr": 4, "de": 4, "es": 4}
_SLOT = re.compile(r"\{(\w+)\}")


class _Filler:
    """A page's filler prose, drawn from a generator of its own: sentences from
    ``text.FILLER`` with their slots filled from ``text.FILLER_SLOTS``. Templates and the values
    of every slot are dealt from shuffled decks, so a page repeats none until it has used all."""

    def __init__(self, rng: random.Random, lang: str):
        self.rng, self.lang = rng, lang
        self.slots = text.FILLER_SLOTS[lang]
        self.decks: dict[str, list[str]] = {}

    def _deal(self, key: str, values: tuple[str, ...]) -> str:
        deck = self.decks.get(key)
        if not deck:
            deck = self.decks[key] = list(values)
            self.rng.shuffle(deck)
        return deck.pop()

    def sentence(self) -> str:
        template = self._deal("", text.FILLER[self.lang])
        out = _SLOT.sub(lambda m: self._deal(m[1], self.slots[m[1]]), template)
        return out[0].upper() + out[1:]


def _paragraph(rng: random.Random, filler: _Filler) -> str:
    k = rng.randint(1, 3)
    rng.sample(range(_LAYOUT_POOL[filler.lang]), k)  # the layout's draws, kept: see above
    return " ".join(filler.sentence() for _ in range(k))


def _render_page(
    rng: random.Random, renderer: _Renderer, index: int, lang: str, samples: list[Sample], n: int
) -> Page:
    charset = text.CHARSETS[lang]
    filler = _Filler(random.Random(f"text-{renderer.cat.seed}-{index}"), lang)
    title = f"{text.TITLES[lang][index % len(text.TITLES[lang])]} #{index}"
    base_page = index == BASE_PAGE
    nav = "".join(f'<li><a href="/#{w.lower()}">{html.escape(w)}</a></li>' for w in text.NAV[lang])
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="lead">{html.escape(_paragraph(rng, filler))}</p>',
    ]
    for i, sample in enumerate(samples):
        if rng.random() < 0.6:
            body.append(f"<p>{html.escape(_paragraph(rng, filler))}</p>")
        element = renderer.element(sample, base_page)
        if rng.random() < 0.5:
            body.append(
                f"<figure>{element}<figcaption>{text.FIGURE[lang]} {i + 1}</figcaption></figure>"
            )
        else:
            body.append(f"<p>{html.escape(_paragraph(rng, filler))} {element}</p>")
        if lang == "en":
            body.append(_description(sample, i))
    titles = text.TITLES["en"]
    related = "".join(
        f'<li><a href="/pages/{j:03d}.html">{titles[j % len(titles)]}</a></li>'
        for j in sorted({(index + 1) % n, (index + 7) % n})
    )
    document = "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="{lang}">',
            f'<head>\n<meta charset="{charset}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)} | Mini Web Gallery</title>",
            '<link rel="stylesheet" href="/static/site.css">',
            *(['<base href="/img/">'] if base_page else []),
            "<script>window.dataLayer = window.dataLayer || [];</script>",
            "</head>\n<body>",
            f'<header><a class="brand" href="/">Mini Web Gallery</a><nav><ul>{nav}</ul></nav>'
            "</header>",
            "<main>\n<article>",
            *body,
            "</article>",
            f'<aside class="related"><h2>Related</h2><ul>{related}</ul></aside>',
            "</main>",
            f"<footer><p>{html.escape(text.FOOTER[lang])}</p></footer>",
            '<script src="/static/lazy.js" async></script>',
            "</body>\n</html>\n",
        ]
    )
    path = f"pages/{index:03d}.html"
    url = f"{renderer.cat.base}/{path}"
    for sample in samples:
        sample.page_url = url
    return Page(url, path, lang, charset, title, document.encode(charset))


def layout(cat: Catalog) -> list[Page]:
    """Shuffle the samples onto pages (English ones first, then one page per other language)
    and render them; every page is also written to ``cat.files``."""
    rng = cat.rng
    english = [s for s in cat.samples if s.kind != "non_english"]
    rng.shuffle(english)
    groups = [("en", chunk) for chunk in _chunks(rng, english)]
    for lang in ("fr", "de", "es"):
        chunk = [s for s in cat.samples if s.kind == "non_english" and s.language == lang]
        if chunk:
            groups.append((lang, chunk))
    renderer = _Renderer(cat, cat.base.removeprefix("http://"))
    pages = [
        _render_page(rng, renderer, i, lang, chunk, len(groups))
        for i, (lang, chunk) in enumerate(groups)
    ]
    for page in pages:
        cat.put(page.path, page.html)
    return pages


def index_html(pages: list[Page]) -> bytes:
    """``site/index.html``: links to every page."""
    links = "".join(f'<li><a href="/{p.path}">{html.escape(p.title)}</a></li>\n' for p in pages)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Mini Web Gallery'
        f"</title></head>\n<body><h1>Mini Web Gallery</h1>\n<ul>\n{links}</ul></body></html>\n"
    ).encode()
