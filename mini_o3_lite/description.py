"""The view description, the first sentence of every agent turn: "I see <what the view shows>."

The agent says what the latest view shows, in fixed words, before it decides (papers/design.md says
why). The scripted teacher writes these sentences, the base model is pretrained on them, and
evaluation reads them back to tell a perception error from a decision error; this module is the one
place that writes them and the one place that splits a turn's thought into description and decision.
"""

from __future__ import annotations

from . import protocol, scenes


def sentence(seen: list, colours: tuple[str, ...], shapes: tuple[str, ...]) -> str:
    """The description of a view whose objects are `seen` (`scenes.seen`): "I see <scenes.describe>."."""
    return f"I see {scenes.describe(seen, colours, shapes)}."


def of_view(scene: scenes.Scene, region: scenes.Region, preset) -> tuple[str, list]:
    """(description, seen objects) of `region` as a perfect perceiver sees it at the preset's pixel budget."""
    seen = scenes.seen(scene, region, preset.min_pixels, preset.max_pixels)
    return sentence(seen, preset.data.colours, preset.data.shapes), seen


def split(text: str) -> tuple[str, str] | None:
    """(description, decision) of a turn's thought, or None when the turn has no `<think>`.

    The description is the thought's first sentence without its full stop ("I see a red square");
    the decision is the rest ("No blue here: next tile."), or "" when there is none.
    """
    think = protocol.extract_think(text)
    if think is None:
        return None
    description, _, decision = think.partition(".")
    return description, decision.strip()


def read(text: str) -> str | None:
    """The description a turn starts with, without its full stop; None when the turn has no `<think>`."""
    parts = split(text)
    return None if parts is None else parts[0]
