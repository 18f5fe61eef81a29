"""Procedurally drawn scenes of coloured shapes, with exact compositional captions.

A :class:`Scene` is the structured truth (background, groups of identical shapes, an optional
spatial relation between two groups, every shape's box); :func:`caption` turns it into English
("two red circles on a blue background", "a green triangle above a yellow square") and
:func:`draw` into a picture. Shapes keep a margin of 10% from every edge, so a light crop of a
scene still shows everything its caption says.
"""

import math
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

COLORS = {
    "red": (220, 30, 35),
    "green": (35, 160, 65),
    "blue": (35, 75, 205),
    "yellow": (245, 215, 35),
    "orange": (245, 135, 25),
    "purple": (135, 55, 175),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
}
SHAPE_COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black")
BACKGROUNDS = ("white", "black", "gray", "blue", "yellow", "green", "red", "purple")
KINDS = ("circle", "square", "triangle", "star")
NUMBERS = {2: "two", 3: "three", 4: "four"}
RELATIONS = {  # relation -> (caption words, region of the first group, region of the second)
    "above": ("above", "top", "bottom"),
    "below": ("below", "bottom", "top"),
    "left of": ("to the left of", "left", "right"),
    "right of": ("to the right of", "right", "left"),
}
MARGIN = 0.10  # of each side, kept free of shapes
SUPERSAMPLE = 2  # drawn at twice the size and reduced: anti-aliased edges


@dataclass(slots=True)
class Group:
    """``count`` shapes of one kind and colour, with their boxes ``[x0, y0, x1, y1]``."""

    kind: str
    color: str
    count: int
    boxes: list[list[int]] = field(default_factory=list)


@dataclass(slots=True)
class Scene:
    width: int
    height: int
    background: str
    groups: list[Group]
    relation: str | None = None  # between groups[0] and groups[1]
    mention_background: bool = True  # whether the caption names the background

    def truth(self) -> dict:
        """The manifest's structured truth: ``shapes``, ``background``, ``relation``."""
        return {
            "shapes": [
                {"kind": g.kind, "color": g.color, "count": g.count, "boxes": g.boxes}
                for g in self.groups
            ],
            "background": self.background,
            "relation": self.relation,
        }


def _noun_phrase(group: Group) -> str:
    noun = group.kind if group.count == 1 else group.kind + "s"
    if group.count == 1:
        article = "an" if group.color[0] in "aeiou" else "a"
        return f"{article} {group.color} {noun}"
    return f"{NUMBERS[group.count]} {group.color} {noun}"


def caption(scene: Scene) -> str:
    """The exact English caption of a scene."""
    text = _noun_phrase(scene.groups[0])
    if scene.relation:
        text += f" {RELATIONS[scene.relation][0]} {_noun_phrase(scene.groups[1])}"
    if scene.mention_background:
        text += f" on a {scene.background} background"
    return text


def _region(width: int, height: int, where: str | None) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = width * MARGIN, height * MARGIN, width * (1 - MARGIN), height * (1 - MARGIN)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    return {
        None: (x0, y0, x1, y1),
        "top": (x0, y0, x1, my),
        "bottom": (x0, my, x1, y1),
        "left": (x0, y0, mx, y1),
        "right": (mx, y0, x1, y1),
    }[where]


def _place(rng: random.Random, region, count: int) -> list[list[int]]:
    """Split the region into ``count`` cells along its longer side; one shape per cell, so
    shapes never overlap."""
    x0, y0, x1, y1 = region
    horizontal = (x1 - x0) >= (y1 - y0)
    step = ((x1 - x0) if horizontal else (y1 - y0)) / count
    boxes = []
    for i in range(count):
        cx0 = x0 + i * step if horizontal else x0
        cy0 = y0 if horizontal else y0 + i * step
        cw = step if horizontal else x1 - x0
        ch = y1 - y0 if horizontal else step
        size = min(cw, ch) * rng.uniform(0.55, 0.85)
        left = cx0 + rng.uniform(0, cw - size)
        top = cy0 + rng.uniform(0, ch - size)
        boxes.append([round(left), round(top), round(left + size), round(top + size)])
    return boxes


def make_scene(
    rng: random.Random,
    groups: list[tuple[str, str, int]],
    background: str,
    relation: str | None = None,
    mention_background: bool = True,
    size: tuple[int, int] | None = None,
) -> Scene:
    """Lay out ``groups`` of ``(kind, color, count)`` on a canvas of 256-512 px a side."""
    width, height = size or (rng.randint(256, 512), rng.randint(256, 512))
    wheres = (None,) if relation is None else RELATIONS[relation][1:]
    placed = [
        Group(kind, color, count, _place(rng, _region(width, height, where), count))
        for (kind, color, count), where in zip(groups, wheres, strict=True)
    ]
    return Scene(width, height, background, placed, relation, mention_background)


def random_scene(rng: random.Random, size: tuple[int, int] | None = None) -> Scene:
    """One or two groups of 1-4 shapes; two groups stand in a spatial relation."""
    background = rng.choice(BACKGROUNDS)
    colors = [c for c in SHAPE_COLORS if c != background]
    if rng.random() < 0.55:
        group = (rng.choice(KINDS), rng.choice(colors), rng.randint(1, 4))
        return make_scene(rng, [group], background, size=size)
    first = (rng.choice(KINDS), rng.choice(colors))
    second = first
    while second == first:
        second = (rng.choice(KINDS), rng.choice(colors))
    groups = [(*first, rng.randint(1, 2)), (*second, rng.randint(1, 2))]
    relation = rng.choice(list(RELATIONS))
    mention = rng.random() < 0.5
    return make_scene(rng, groups, background, relation, mention_background=mention, size=size)


def _polygon(kind: str, box: list[int], k: int) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = (v * k for v in box)
    if kind == "triangle":
        return [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2  # star: 5 points
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def draw(scene: Scene) -> Image.Image:
    """Render a scene as an RGB image of ``scene.width`` x ``scene.height``."""
    k = SUPERSAMPLE
    image = Image.new("RGB", (scene.width * k, scene.height * k), COLORS[scene.background])
    pen = ImageDraw.Draw(image)
    for group in scene.groups:
        fill = COLORS[group.color]
        for box in group.boxes:
            scaled = [v * k for v in box]
            if group.kind == "circle":
                pen.ellipse(scaled, fill=fill)
            elif group.kind == "square":
                pen.rectangle(scaled, fill=fill)
            else:
                pen.polygon(_polygon(group.kind, box, k), fill=fill)
    return image.reduce(k)
