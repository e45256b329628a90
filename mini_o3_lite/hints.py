"""Tile hints: a kit-only scaffold that writes the boxes a depth-first tile search zooms next.

Mini-o3's observation turn names the new image and nothing else; its 7B agent works out the next
box itself. The kit's 4-layer tiny model cannot: it learns to *copy* a box it has seen in the
conversation but not to compute a box's successor, and without help its searches run out of turns
repeating boxes. So with `Preset.tile_hints` (tiny only) the environment ends each observation turn
of a tile view with three boxes, all functions of that view's box alone (never of the search so far,
the scene or the target):

    Tiles: this view [0.25, 0.0, 0.5, 0.25], zoom in [0.25, 0.0, 0.375, 0.125], next tile [0.5, 0.0, 0.75, 0.25].

`zoom in` is the view's first quadrant (absent at the deepest tile level), `next tile` the tile a
depth-first search over quadrants visits after this view and everything inside it (`scenes.next_tile`:
the next sibling, else an ancestor's next sibling; absent after the last one). The agent still decides,
from what it sees, whether to zoom in, move on or answer; the scripted teacher writes its decision
ending with the same words and box ("No red here: next tile [..]."), so the call is a copy.
The copy is practised before SFT: the tiny base's pretraining includes the agent's step after a zoom,
hint and all (`fragments.py`), since SFT from a base that never saw hints does not learn it. The `full`
preset keeps Mini-o3's observation text. What the hints measured: `papers/experiments.md`.
"""

from __future__ import annotations

from . import protocol, scenes

UNIT = 2**scenes.LEVELS  # the deepest tiles are 1/UNIT of the image wide
Box = tuple[float, float, float, float]


def compose(outer: Box, inner) -> Box:
    """The box of the original that `inner` (relative to the view `outer`) covers."""
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    return (outer[0] + inner[0] * w, outer[1] + inner[1] * h, outer[0] + inner[2] * w, outer[1] + inner[3] * h)


def image_boxes(calls: list) -> list[Box]:
    """The box of the original that each image of a trajectory shows: image 0 is the original, image k
    the k-th executed zoom (a valid call that cut a view records its `size`)."""
    boxes: list[Box] = [(0.0, 0.0, 1.0, 1.0)]
    for call in calls:
        if call and "size" in call:
            boxes.append(compose(boxes[protocol.source_index(call["source"])], call["bbox"]))
    return boxes


def _tile(box: Box) -> tuple[int, int, int, int] | None:
    """The view as a tile of the hierarchy, in units of the deepest tile; None for any other box."""
    units = [v * UNIT for v in box]
    if any(abs(u - round(u)) > 1e-6 for u in units):
        return None
    x0, y0, x1, y1 = (round(u) for u in units)
    w = x1 - x0
    if w != y1 - y0 or w not in (UNIT // 2**k for k in range(1, scenes.LEVELS + 1)) or x0 % w or y0 % w:
        return None
    return x0, y0, x1, y1


def hint_text(box: Box) -> str | None:
    """"Tiles: this view [..], zoom in [..], next tile [..]." for a tile view; None for any other box."""
    tile = _tile(box)
    if tile is None:
        return None
    frac = lambda r: tuple(v / UNIT for v in r)  # noqa: E731
    parts = [f"this view {protocol.box_text(frac(tile))}"]
    if tile[2] - tile[0] > 1:
        parts.append(f"zoom in {protocol.box_text(frac(scenes.sub_region(tile, scenes.TILE_BOXES[0])))}")
    following = scenes.next_tile((0, 0, UNIT, UNIT), tile)
    if following is not None:
        parts.append(f"next tile {protocol.box_text(frac(following))}")
    return "Tiles: " + ", ".join(parts) + "."
