"""VisualProbe-lite: deterministic high-resolution scenes where the answer needs zooming.

Mini-o3's Visual Probe questions ask about a small thing in a large, cluttered image. Here a scene
is a grey canvas with coloured shapes; each shape carries a small coloured dot (its *mark*). The
question names the target by its attributes ("What colour is the dot on the purple triangle?"),
and the answer is the colour of that dot: the decisive detail, about 2 px wide when the whole
canvas is squeezed into the preset's max pixels, readable only after zooming in.

Sizes are set in pixels *of the full view* (the canvas resized to max pixels) as they would be if
every quadrant zoom doubled what a view shows, which it does when min pixels = max pixels (`tiny`:
every crop is resized to the same view). What a view shows follows three thresholds on apparent
size (the tiny model perceives in words): a shape's colour can be made out from 6 px ("a purple
spot"), its shape from 14 px, its dot from 7 px. A budget like Mini-o3's (`full`: 40,000 to
2,000,000 pixels) shrinks a crop while it holds more than max pixels and enlarges it only below min
pixels: in between, a tile is shown at the canvas's own resolution, and zooming deeper shows nothing
larger. So each size is scaled for the depth at which it is meant to be read, at the scale the
actual budget gives that depth (`depth_unit`): large bodies take shape one zoom in, small bodies and
their coarse dots two, fine dots three. Under a doubling budget this is the full-view rule; under
any other, the rules of `seen` hold at the same depths, except where depth three shows no more than
depth two: there a fine dot is as large as a coarse one and is read at depth two.

The tile hierarchy is the kit's search space: each view splits into four quadrant tiles, written as
ordinary Mini-o3 `bbox_2d` boxes relative to the view they are cut from. Objects sit inside cells of
the third tile level, so no tile of the hierarchy cuts an object in two.

This module describes a scene: its objects, its picture, what each view of it shows and the words for
that. `dataset.py` turns scenes into the kit's records and files; `scene_from_meta` rebuilds a scene
from a record.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from .pixels import smart_resize

COLOUR_RGB = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 215, 40),
    "purple": (150, 60, 190), "orange": (245, 140, 30), "pink": (240, 120, 190), "cyan": (40, 200, 210),
}  # fmt: skip
BACKGROUND = (128, 128, 128)

# Sizes in pixels of the full view (the canvas at the preset's max pixels) when every zoom doubles them.
LARGE, SMALL = 8.0, 4.0  # object bodies: large ones are visible at once, small ones after a zoom
MARK_COARSE, MARK_FINE = 0.5, 0.25  # dot diameter as a fraction of the body (fine: one zoom deeper)
# Apparent sizes (pixels of a view) from which the colour, the shape and the dot can be made out.
SPOT_PX, SHAPE_PX, MARK_PX = 6.0, 14.0, 7.0
LEVELS = 3  # tile levels; objects are placed inside cells of the deepest one

TILE_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right")
TILE_BOXES = ((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0))

Region = tuple[int, int, int, int]  # (left, top, right, bottom) in canvas pixels


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    mark: str  # colour of the dot at its centre
    box: Region
    mark_frac: float
    role: str  # "target", "decoy" (same colour, other shape) or "distractor"

    @property
    def size(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def mark_size(self) -> float:
        return self.size * self.mark_frac

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        if self.shape == "triangle":  # centroid of an upward triangle
            return (x0 + x1) / 2, y0 + 2 * (y1 - y0) / 3
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Difficulty:
    """What makes a scene easy, medium or hard; the numbers are stored with every record."""

    distractors: tuple[int, int]  # other objects (not sharing the target's colour), inclusive range
    decoys: tuple[int, int]  # same colour as the target, another shape: must be checked and rejected
    same_shape: bool  # distractors may share the target's shape
    mark_frac: float  # the target's dot: coarse (readable two zooms in) or fine (three)
    large_share: float  # fraction of distractors that are large (visible in the full view)


DIFFICULTIES = {
    "easy": Difficulty((3, 5), (0, 0), False, MARK_COARSE, 0.5),
    "medium": Difficulty((6, 10), (1, 1), True, MARK_COARSE, 0.4),
    "hard": Difficulty((8, 12), (2, 3), True, MARK_FINE, 0.3),
}


@dataclass
class Scene:
    canvas: int
    objects: list[SceneObject]
    difficulty: str
    seed: int
    view_side: int  # side of the full view at the pixel budget the scene was sized for
    clutter: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list)

    @property
    def target(self) -> SceneObject:
        return next(o for o in self.objects if o.role == "target")

    @property
    def question(self) -> str:
        return f"What colour is the dot on the {self.target.name}?"

    @property
    def answer(self) -> str:
        return self.target.mark

    def render(self) -> Image.Image:
        image = Image.new("RGB", (self.canvas, self.canvas), BACKGROUND)
        draw = ImageDraw.Draw(image)
        for kind, xy, grey in self.clutter:  # low-contrast grey clutter: texture, never a colour
            if kind == "rect":
                draw.rectangle(xy, fill=(grey, grey, grey))
            else:
                draw.line(xy, fill=(grey, grey, grey), width=max(1, self.canvas // 300))
        for obj in self.objects:
            x0, y0, x1, y1 = obj.box
            rgb = COLOUR_RGB[obj.colour]
            if obj.shape == "circle":
                draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=rgb)
            elif obj.shape == "square":
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=rgb)
            else:
                draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=rgb)
            cx, cy = obj.centre
            r = obj.mark_size / 2
            draw.ellipse((cx - r, cy - r, cx + r - 1, cy + r - 1), fill=COLOUR_RGB[obj.mark])
        return image


# ----------------------------------------------------------------------------------------------
# Views: what a region of the canvas shows at a pixel budget
# ----------------------------------------------------------------------------------------------


def sub_region(region: Region, bbox: tuple[float, float, float, float]) -> Region:
    """The canvas region of a relative box inside a view (the crop tool's mapping: truncate, clamp)."""
    left, top, right, bottom = region
    w, h = right - left, bottom - top
    x0, y0, x1, y1 = (min(max(int(v * s), 0), s) for v, s in zip(bbox, (w, h, w, h), strict=True))
    return (left + x0, top + y0, left + x1, top + y1)


def view_scale(region: Region, min_pixels: int, max_pixels: int) -> float:
    """View pixels per canvas pixel once the region is resized into the pixel budget."""
    w, h = region[2] - region[0], region[3] - region[1]
    rh, rw = smart_resize(h, w, min_pixels, max_pixels)
    return min(rw / w, rh / h)


def depth_unit(canvas: int, depth: int, min_pixels: int, max_pixels: int) -> float:
    """Canvas pixels per full-view pixel for a size meant to be read `depth` quadrant zooms in.

    Such a size should show `2**depth` times larger in a tile of that depth than in the full view; this
    is the factor that makes it do so at the actual budget (the canvas side over the full view's side
    when every zoom doubles the view, as in `tiny`).
    """
    region: Region = (0, 0, canvas, canvas)
    for _ in range(depth):
        region = sub_region(region, TILE_BOXES[0])
    return 2**depth / view_scale(region, min_pixels, max_pixels)


def seen(scene: Scene, region: Region, min_pixels: int, max_pixels: int) -> list[tuple[SceneObject, str]]:
    """Objects a view shows, each with how much of it can be made out: 'spot', 'shape' or 'mark'.

    An object belongs to a view when its centre lies inside the region.
    """
    scale = view_scale(region, min_pixels, max_pixels)
    out = []
    for obj in scene.objects:
        cx, cy = obj.centre
        if not (region[0] <= cx < region[2] and region[1] <= cy < region[3]):
            continue
        body = obj.size * scale
        if body < SPOT_PX:
            continue
        level = "spot" if body < SHAPE_PX else ("mark" if obj.mark_size * scale >= MARK_PX else "shape")
        out.append((obj, level))
    return out


def describe(seen_objects: list[tuple[SceneObject, str]], colours: tuple[str, ...], shapes: tuple[str, ...]) -> str:
    """The canonical words for a view: readable objects first (in colour, shape order), then spots.

    e.g. "purple triangle with a red dot, blue square; spots: green orange". The order and wording are
    fixed so that a view has exactly one right description, the one target a tiny model can learn.
    """
    order = {c: i for i, c in enumerate(colours)}
    shape_order = {s: i for i, s in enumerate(shapes)}
    readable = sorted(
        ((o, lv) for o, lv in seen_objects if lv != "spot"),
        key=lambda t: (order[t[0].colour], shape_order[t[0].shape], order[t[0].mark]),
    )
    parts = [f"{o.name} with {article(o.mark)} {o.mark} dot" if lv == "mark" else o.name for o, lv in readable]
    spots = sorted({o.colour for o, lv in seen_objects if lv == "spot"}, key=order.__getitem__)
    text = ", ".join(parts)
    if spots:
        text += ("; " if text else "") + "spots: " + " ".join(spots)
    return text or "nothing"


def lookup(seen_objects: list[tuple[SceneObject, str]], colour: str, shapes: tuple[str, ...]) -> str:
    """The look-up line after a description, for a presence question about `colour`: "green: triangle, spot."

    The description alone decides the answer, but the rule is a conjunction (colour and shape on one
    object, else a spot of the colour) that a 4-layer model learns slowly; written out, each step is a
    one-word match (pretraining writes it when `base.presence_lookup` is on; the base's model card says
    what it changed).
    The colour stays lower case: the same token as in the question, so the line starts with a copy.
    """
    order = {s: i for i, s in enumerate(shapes)}
    found = sorted({o.shape for o, lv in seen_objects if o.colour == colour and lv != "spot"}, key=order.__getitem__)
    found += ["spot"] if any(o.colour == colour and lv == "spot" for o, lv in seen_objects) else []
    return f"{colour}: {', '.join(found) or 'none'}."


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def full_region(scene: Scene) -> Region:
    return (0, 0, scene.canvas, scene.canvas)


def tile_of(region: Region, obj: SceneObject) -> int:
    """Index of the quadrant tile of `region` that holds the object's centre."""
    cx, cy = obj.centre
    mx, my = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    return 2 * int(cy >= my) + int(cx >= mx)


def next_tile(full, region):
    """The tile a depth-first search over quadrants zooms after rejecting `region` (None: none left, or not a tile)."""
    while region != full:
        w, h = 2 * (region[2] - region[0]), 2 * (region[3] - region[1])
        if w <= 0 or h <= 0:
            return None
        x, y = full[0] + (region[0] - full[0]) // w * w, full[1] + (region[1] - full[1]) // h * h
        siblings = [sub_region((x, y, x + w, y + h), box) for box in TILE_BOXES]
        if region not in siblings:
            return None
        if siblings.index(region) < 3:
            return siblings[siblings.index(region) + 1]
        region = (x, y, x + w, y + h)
    return None


def tile_path(scene: Scene, min_pixels: int, max_pixels: int) -> list[dict]:
    """The oracle's zooms through the tile hierarchy: quadrant after quadrant until the dot is readable.

    Each step is a Mini-o3 call: the box relative to the view it is cut from, and that view's name
    (`original_image`, then `observation_1`, ... : observation k is the k-th zoom-in image).
    """
    target, region, steps = scene.target, full_region(scene), []
    while True:
        scale = view_scale(region, min_pixels, max_pixels)
        if target.mark_size * scale >= MARK_PX or len(steps) >= 6:
            return steps
        i = tile_of(region, target)
        source = "original_image" if not steps else f"observation_{len(steps)}"
        region = sub_region(region, TILE_BOXES[i])
        steps.append({"tile": TILE_NAMES[i], "bbox_2d": list(TILE_BOXES[i]), "source": source, "region": list(region)})


def direct_box(scene: Scene, min_pixels: int, max_pixels: int) -> list[float]:
    """One zoom straight to the target: the largest square box around it where the dot is readable."""
    target, c = scene.target, scene.canvas
    cx, cy = target.centre
    for side in range(c, 27, -max(1, c // 200)):  # shrink until the dot is readable in the rounded box
        x0 = min(max(0, cx - side / 2), c - side)
        y0 = min(max(0, cy - side / 2), c - side)
        box = [round(x0 / c, 2), round(y0 / c, 2), round((x0 + side) / c, 2), round((y0 + side) / c, 2)]
        if target.mark_size * view_scale(sub_region(full_region(scene), box), min_pixels, max_pixels) >= MARK_PX:
            return box
    return box


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


def generate(
    seed: int,
    difficulty: str,
    canvas: int,
    min_pixels: int,
    max_pixels: int,
    colours: tuple[str, ...],
    shapes: tuple[str, ...],
) -> Scene:
    """One scene, fully determined by its arguments (the vocabulary comes from the preset's data)."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; choose one of {list(DIFFICULTIES)}")
    unknown = [c for c in colours if c not in COLOUR_RGB]
    if unknown or len(colours) < 4 or len(shapes) < 2:
        raise ValueError(f"need >= 4 known colours and >= 2 shapes, got colours={colours}, shapes={shapes}")
    spec, rng = DIFFICULTIES[difficulty], random.Random(f"visualprobe-lite/{difficulty}/{seed}")
    view_side = smart_resize(canvas, canvas, min_pixels, max_pixels)[1]
    unit = {depth: depth_unit(canvas, depth, min_pixels, max_pixels) for depth in (1, 2, 3)}
    cells = 2**LEVELS
    cell = canvas // cells
    large, small = round(LARGE * unit[1]), round(SMALL * unit[2])  # shapes one zoom in, and two
    fine = min(MARK_COARSE, MARK_FINE * unit[3] / unit[2])  # a fine dot is read one zoom deeper than a coarse one
    target_frac = fine if spec.mark_frac == MARK_FINE else spec.mark_frac
    if large + 4 > cell:
        raise ValueError(f"canvas {canvas} is too small for its {cells}x{cells} cells at this pixel budget")

    colour, shape = rng.choice(colours), rng.choice(shapes)
    others = [c for c in colours if c != colour]
    specs = [(colour, shape, small, target_frac, "target")]
    for _ in range(rng.randint(*spec.decoys)):
        specs.append((colour, rng.choice([s for s in shapes if s != shape]), small, MARK_COARSE, "decoy"))
    for _ in range(rng.randint(*spec.distractors)):
        shape_pool = shapes if spec.same_shape else [s for s in shapes if s != shape] or shapes
        size = large if rng.random() < spec.large_share else small
        specs.append((rng.choice(others), rng.choice(shape_pool), size, MARK_COARSE, "distractor"))

    objects = []
    for (c, s, size, frac, role), k in zip(specs, rng.sample(range(cells * cells), len(specs)), strict=True):
        gx, gy = (k % cells) * cell, (k // cells) * cell
        margin = max(2, cell // 20)
        x, y = gx + rng.randint(margin, cell - size - margin), gy + rng.randint(margin, cell - size - margin)
        mark = rng.choice([m for m in colours if m != c])
        objects.append(SceneObject(c, s, mark, (x, y, x + size, y + size), frac, role))
    clutter = []
    for _ in range(rng.randint(12, 20)):
        grey = rng.randint(108, 150)
        if rng.random() < 0.5:
            x, y, w, h = (rng.randint(0, canvas) for _ in range(4))
            clutter.append(("rect", (x, y, x + w // 3, y + h // 3), grey))
        else:
            clutter.append(("line", tuple(rng.randint(0, canvas) for _ in range(4)), grey))
    return Scene(canvas, objects, difficulty, seed, view_side, clutter)


def scene_from_meta(meta: dict, difficulty: str) -> Scene:
    """Rebuild a scene's objects from a record's meta (for views, descriptions and teachers)."""
    c = meta["canvas"]
    objects = [
        SceneObject(
            o["colour"], o["shape"], o["mark"], tuple(round(v * c) for v in o["box"]), o["mark_frac"], o["role"]
        )
        for o in meta["objects"]
    ]
    return Scene(c, objects, difficulty, meta["seed"], meta["view_side"])
