"""What the mini web holds: every image reference as a :class:`Sample`, and every served file.

:func:`make_catalog` creates the samples in a fixed order (ids ``mw-0000``, ...) from one seeded
random generator; the page layout comes later (``pages.py``). Hostile cases are in
``hostile.py``.
"""

import hashlib
import mimetypes
import random
from dataclasses import dataclass, field

from vlcurate.miniweb import hostile, images, shapes, text
from vlcurate.miniweb.manifest import Sample

# Photos copied under other URLs, and how (kind, duplicate_kind, transform).
_COPIES = (
    ("duplicate", "exact", lambda data: data),
    ("near_duplicate", "resized", lambda data: images.resized(data, 0.6)),
    ("near_duplicate", "reencoded", lambda data: images.reencoded(data, 35)),
    ("near_duplicate", "cropped", lambda data: images.cropped(data, 0.06)),
)
_COPIED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
_COPIED_SHAPES = 4  # the first shapes, one copy each, in the order of _COPIES
_WATERMARKED_PHOTOS = ("coffee", "rocket", "chelsea", "grace_hopper", "hubble_deep_field", "horse")
_WATERMARK_TEXTS = ("shutterstock", "shutterstock", "iStock", "shutterstock", "dreamstime")
_WATERMARKED_SHAPES = 2
_MISMATCHED_SHAPES = 9


@dataclass
class Catalog:
    """Samples in id order, and the files to write under ``site/`` (path -> bytes)."""

    base: str  # http://127.0.0.1:PORT
    rng: random.Random
    seed: int = 0  # of ``rng``; pages seed their filler text's generators from it
    samples: list[Sample] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def next_id(self) -> str:
        return f"mw-{len(self.samples):04d}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def put(self, path: str, data: bytes) -> None:
        """A file under ``site/`` that no sample refers to directly (a redirect target, ...)."""
        self.files[path] = data

    def add(self, kind: str, alt: str, data: bytes | None, path: str | None, **fields) -> Sample:
        """Add a sample; when ``data`` is given it is served at ``path`` and described (size,
        content type, sha256). ``image_url`` defaults to the URL of ``path``."""
        fields.setdefault("image_url", self.url(path) if path else None)
        sample = Sample(id=self.next_id(), kind=kind, alt=alt, path=path, **fields)
        if data is not None:
            self.files[path] = data
            sample.sha256 = hashlib.sha256(data).hexdigest()
            sample.content_type = sample.content_type or mimetypes.guess_type(path)[0]
            if sample.width is None and sample.content_type.startswith("image/"):
                sample.width, sample.height = images.size_of(data)
        self.samples.append(sample)
        return sample


def _scene_fields(scene: shapes.Scene) -> dict:
    return {"caption_true": shapes.caption(scene), **scene.truth()}


def _scene_bytes(scene: shapes.Scene, fmt: str) -> bytes:
    return images.encode(shapes.draw(scene), fmt)


def _photos(cat: Catalog) -> dict[str, tuple[Sample, bytes]]:
    originals = {}
    for photo in images.PHOTOS:
        image, raw = images.load_photo(photo.name)
        data = raw if raw is not None else images.encode(image, "jpeg")
        path = f"img/photos/{photo.name.replace('_', '-')}.jpg"
        sample = cat.add(
            "photo", photo.caption, data, path, caption_true=photo.caption, faces=photo.faces
        )
        originals[photo.name] = (sample, data)
    return originals


def _shapes(cat: Catalog, n: int) -> list[tuple[Sample, bytes]]:
    out = []
    for i in range(n):
        scene = shapes.random_scene(cat.rng)
        fmt = "png" if i % 3 == 0 else "jpeg"
        data = _scene_bytes(scene, fmt)
        path = f"img/shapes/{cat.next_id()}.{'png' if fmt == 'png' else 'jpg'}"
        fields = _scene_fields(scene)
        out.append((cat.add("shape", fields["caption_true"], data, path, **fields), data))
    return out


def _copy_fields(original: Sample) -> dict:
    keep = ("caption_true", "faces", "shapes", "background", "relation")
    return {k: getattr(original, k) for k in keep}


def _copies(cat: Catalog, originals: list[tuple[Sample, bytes, tuple]]) -> None:
    for original, data, (kind, dup_kind, transform) in originals:
        folder = "mirror" if dup_kind == "exact" else "cdn"
        cat.add(
            kind,
            original.alt,
            transform(data),
            f"img/{folder}/{cat.next_id()}.jpg",
            duplicate_of=original.id,
            duplicate_kind=dup_kind,
            **_copy_fields(original),
        )


def _mismatches(cat: Catalog) -> None:
    for photo, wrong in zip(images.MISMATCH_PHOTOS, text.WRONG_PHOTO_CAPTIONS, strict=True):
        image, _ = images.load_photo(photo.name)
        path = f"img/gallery/{cat.next_id()}.jpg"
        cat.add(
            "mismatch",
            wrong,
            images.encode(image, "jpeg"),
            path,
            caption_true=photo.caption,
            mismatched=True,
        )
    for _ in range(_MISMATCHED_SHAPES):
        scene = shapes.random_scene(cat.rng)
        wrong = shapes.caption(shapes.random_scene(cat.rng))
        while wrong == shapes.caption(scene):
            wrong = shapes.caption(shapes.random_scene(cat.rng))
        path = f"img/gallery/{cat.next_id()}.jpg"
        cat.add(
            "mismatch",
            wrong,
            _scene_bytes(scene, "jpeg"),
            path,
            mismatched=True,
            **_scene_fields(scene),
        )


def _watermarks(cat: Catalog, photos: dict[str, tuple[Sample, bytes]]) -> None:
    for i, name in enumerate(_WATERMARKED_PHOTOS):
        original, data = photos[name]
        mark = _WATERMARK_TEXTS[i % len(_WATERMARK_TEXTS)]
        cat.add(
            "watermark",
            f"{original.caption_true} - stock photo",
            images.watermarked(images.decode(data), mark, 1029384756 + 7 * i),
            f"img/stock/{cat.next_id()}.jpg",
            watermark=True,
            duplicate_of=original.id,
            duplicate_kind="watermarked",
            notes=f"watermark text: {mark}",
            **_copy_fields(original),
        )
    for _ in range(_WATERMARKED_SHAPES):
        scene = shapes.random_scene(cat.rng)
        fields = _scene_fields(scene)
        cat.add(
            "watermark",
            fields["caption_true"],
            images.watermarked(shapes.draw(scene)),
            f"img/stock/{cat.next_id()}.jpg",
            watermark=True,
            notes="watermark text: shutterstock",
            **fields,
        )


def _junk_alts(cat: Catalog) -> None:
    seen_empty = False
    for alt in text.JUNK_ALTS:
        scene = shapes.random_scene(cat.rng)
        markup = None
        if alt == "":
            markup = "no_alt_attribute" if seen_empty else "empty_alt"
            seen_empty = True
        cat.add(
            "junk_alt",
            alt,
            _scene_bytes(scene, "jpeg"),
            f"img/uploads/{cat.next_id()}.jpg",
            language=None,
            markup=markup,
            **_scene_fields(scene),
        )


def _foreign(cat: Catalog) -> None:
    for language, groups, background, relation, mention, alt in text.FOREIGN_SCENES:
        scene = shapes.make_scene(cat.rng, groups, background, relation, mention)
        cat.add(
            "non_english",
            alt,
            _scene_bytes(scene, "jpeg"),
            f"img/galerie/{cat.next_id()}.jpg",
            language=language,
            **_scene_fields(scene),
        )


def make_catalog(seed: int, base: str, n_shapes: int = 200) -> Catalog:
    """Every sample of the mini web, in id order, with the files to serve."""
    cat = Catalog(base, random.Random(seed), seed)
    photos = _photos(cat)
    shape_samples = _shapes(cat, n_shapes)
    originals = [(*photos[name], copy) for name in _COPIED_PHOTOS for copy in _COPIES]
    originals += [
        (*shape_samples[i], _COPIES[i % len(_COPIES)])
        for i in range(min(_COPIED_SHAPES, len(shape_samples)))
    ]
    _copies(cat, originals)
    _mismatches(cat)
    _watermarks(cat, photos)
    _junk_alts(cat)
    _foreign(cat)
    hostile.add_hostile(cat)
    cat.put("static/placeholder.gif", images.placeholder_gif())
    cat.put("robots.txt", b"User-agent: *\nAllow: /\n")
    return cat
