"""Hostile image references: what a downloader must survive (or refuse) without harm.

Each case is one sample of kind ``hostile`` whose ``expected_download`` says what a careful
downloader should record. ``server.py`` gives the matching behaviour to these URLs.
"""

import hashlib
from typing import TYPE_CHECKING

from vlcurate.miniweb import images, shapes, text

if TYPE_CHECKING:
    from vlcurate.miniweb.catalog import Catalog

NOAI_HEADER = ("X-Robots-Tag", "noai, noimageai")
SLOW_NOTE = "the server sleeps slow_seconds (default 5 s) before it sends anything"

_HTML_BEHIND_IMAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Page not found'
    b"</title></head>\n<body><h1>Sorry, this page has moved</h1><p>The picture you are looking "
    b'for is no longer here. <a href="/">Back to the gallery</a></p></body></html>\n'
)


def _scene(cat: "Catalog") -> tuple[bytes, dict]:
    scene = shapes.random_scene(cat.rng)
    data = images.encode(shapes.draw(scene), "jpeg")
    return data, {"caption_true": shapes.caption(scene), **scene.truth()}


def _missing(cat: "Catalog") -> None:
    refs = (("img/gone/lighthouse-sunset.jpg", "absolute"), ("img/gone/football-park.png", "dot"))
    for (path, markup), alt in zip(refs, text.MISSING_CAPTIONS, strict=True):
        cat.add(
            "hostile",
            alt,
            None,
            None,
            image_url=cat.url(path),
            markup=markup,
            expected_download="http_404",
            notes="no such file: 404 Not Found",
        )


def _slow(cat: "Catalog", n: int = 2) -> None:
    for _ in range(n):
        data, truth = _scene(cat)
        cat.add(
            "hostile",
            truth["caption_true"],
            data,
            f"img/slow/{cat.next_id()}.jpg",
            expected_download="timeout",
            notes=SLOW_NOTE,
            **truth,
        )


def _redirect(cat: "Catalog") -> None:
    data, truth = _scene(cat)
    target = f"img/shapes/{cat.next_id()}-target.jpg"
    cat.put(target, data)
    width, height = images.size_of(data)
    cat.add(
        "hostile",
        truth["caption_true"],
        None,
        None,
        image_url=cat.url(f"img/moved/{cat.next_id()}.jpg"),
        redirect_to=cat.url(target),
        expected_download="redirect_success",
        width=width,
        height=height,
        content_type="image/jpeg",
        sha256=hashlib.sha256(data).hexdigest(),
        notes="302 Found, Location: redirect_to (served under site/ at the target path)",
        **truth,
    )


def _noai(cat: "Catalog", n: int = 2) -> None:
    for _ in range(n):
        data, truth = _scene(cat)
        cat.add(
            "hostile",
            truth["caption_true"],
            data,
            f"img/noai/{cat.next_id()}.jpg",
            expected_download="robots_noai",
            notes=f"{NOAI_HEADER[0]}: {NOAI_HEADER[1]}",
            **truth,
        )


def _not_images(cat: "Catalog") -> None:
    content_types = ("text/html; charset=utf-8", "image/jpeg")
    for content_type, alt in zip(content_types, text.NOT_IMAGE_CAPTIONS, strict=True):
        cat.add(
            "hostile",
            alt,
            _HTML_BEHIND_IMAGE,
            f"img/fake/{cat.next_id()}.jpg",
            content_type=content_type,
            expected_download="not_an_image",
            notes=f"an HTML page served as {content_type}",
        )


def _truncated(cat: "Catalog") -> None:
    data, truth = _scene(cat)
    cut = images.truncated(data)
    cat.add(
        "hostile",
        truth["caption_true"],
        cut,
        f"img/broken/{cat.next_id()}.jpg",
        expected_download="decode_error",
        notes=f"the first {len(cut)} of {len(data)} bytes of a JPEG (no EOI marker); "
        "Content-Length is honest",
        **truth,
    )


def _bomb(cat: "Catalog") -> None:
    data = images.bomb_png()
    cat.add(
        "hostile",
        "a panoramic view of the city skyline",
        data,
        f"img/huge/{cat.next_id()}.png",
        caption_true=None,
        expected_download="too_large",
        notes=f"decompression bomb: a {len(data)}-byte PNG declaring 40000 x 40000 RGB pixels",
    )


def _private(cat: "Catalog") -> None:
    for url, alt in text.PRIVATE_URLS:
        cat.add(
            "hostile",
            alt,
            None,
            None,
            image_url=url,
            expected_download="private_address",
            notes="private, link-local or loopback-alias host: never request it",
        )


def add_hostile(cat: "Catalog") -> None:
    """Add every hostile case to the catalog, in a fixed order."""
    _missing(cat)
    _slow(cat)
    _redirect(cat)
    _noai(cat)
    _not_images(cat)
    _truncated(cat)
    _bomb(cat)
    _private(cat)
