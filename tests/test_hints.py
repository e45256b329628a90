"""Tile hints (kit-only scaffold): boxes that are functions of the view alone, and a teacher whose calls copy them."""

from __future__ import annotations

import re

import pytest

from mini_o3_lite import dataset, hints, scenes, teacher
from mini_o3_lite.presets import load_preset


@pytest.mark.parametrize("box, expected", [
    ((0.0, 0.0, 0.5, 0.5),
     "Tiles: this view [0.0, 0.0, 0.5, 0.5], zoom in [0.0, 0.0, 0.25, 0.25], next tile [0.5, 0.0, 1.0, 0.5]."),
    # the fourth of four quadrants: the search goes back up to the parent's next sibling
    ((0.125, 0.125, 0.25, 0.25), "Tiles: this view [0.125, 0.125, 0.25, 0.25], next tile [0.25, 0.0, 0.5, 0.25]."),
    ((0.75, 0.25, 1.0, 0.5),  # the last quadrant of the top-right one: next is the bottom-left quadrant
     "Tiles: this view [0.75, 0.25, 1.0, 0.5], zoom in [0.75, 0.25, 0.875, 0.375], next tile [0.0, 0.5, 0.5, 1.0]."),
    ((0.875, 0.875, 1.0, 1.0), "Tiles: this view [0.875, 0.875, 1.0, 1.0]."),  # the last tile of all, deepest level
    ((0.0, 0.0, 1.0, 1.0), None),  # the original is not a tile
    ((0.25, 0.25, 0.75, 0.75), None),  # the right size but not on the grid
    ((0.1, 0.1, 0.6, 0.6), None),
    ((0.0, 0.0, 0.0625, 0.0625), None),  # finer than the deepest level
])
def test_hint_text(box, expected):
    assert hints.hint_text(box) == expected


def test_image_boxes_compose_relative_zooms_and_skip_failed_calls():
    calls = [{"valid": True, "bbox": [0.5, 0.0, 1.0, 0.5], "source": "original_image", "size": [512, 512]},
             {"valid": False, "error": "bad box"},
             {"valid": True, "bbox": [0.0, 0.5, 0.5, 1.0], "source": "observation_1", "size": [256, 256]},
             None]
    assert hints.image_boxes(calls) == [(0.0, 0.0, 1.0, 1.0), (0.5, 0.0, 1.0, 0.5), (0.5, 0.25, 0.75, 0.5)]


def test_teacher_calls_copy_the_hint_its_decision_names(tiny_processor):
    preset = load_preset("tiny", tile_hints=True)
    records, images = dataset.make_split(preset.data, "train", preset.min_pixels, preset.max_pixels, n=16)
    kept, _, _ = teacher.scripted_trajectories(records, [images[r.id] for r in records], tiny_processor, preset,
                                               teacher.TeacherConfig(), max_turns=preset.max_turns_eval)
    copies = 0
    for t in kept:
        for obs, turn in zip(t.messages[3::2], t.messages[4::2], strict=False):
            hint, text = obs["content"][-1]["text"].split("\n")[-1], turn["content"][0]["text"]
            box = re.search(r'"bbox_2d": (\[[^\]]*\])', text)
            if box:  # "<verdict>: next tile [B]." then the call zooms B, and the hint wrote "next tile [B]"
                words = re.search(r"(zoom in|next tile|this view) (\[[^\]]*\])\.</think>", text)
                assert words and words.group(2) == box.group(1) and f"{words.group(1)} {words.group(2)}" in hint
                copies += 1
    assert copies >= 30
    with pytest.raises(ValueError, match="absolute_boxes"):
        teacher.search_turns(scenes.scene_from_meta(records[0].meta, records[0].difficulty), preset, False, False)
