"""Tests for mini_o3_lite.presets: the two presets, overrides the way notebooks pass them, and errors."""

from __future__ import annotations

import dataclasses

import pytest

from mini_o3_lite import presets
from mini_o3_lite.presets import PRESETS, Preset, as_dict, load_preset


@pytest.mark.parametrize("name", ["tiny", "full"])
def test_presets_load(name):
    preset = load_preset(name)
    assert isinstance(preset, Preset)
    assert preset.name == name
    assert preset == PRESETS[name]  # no overrides: the preset as defined
    assert 0 < preset.min_pixels <= preset.max_pixels
    assert preset.max_turns_train <= preset.max_turns_eval
    assert preset.context_reserve < preset.context_length


def test_tiny_and_full_values():
    tiny, full = load_preset("tiny"), load_preset("full")
    assert tiny.model_path is None and tiny.device == "cpu" and tiny.dtype == "float32"
    assert tiny.min_pixels == tiny.max_pixels == 112 * 112  # 16 visual tokens per view
    # full follows Mini-o3: 40,000 - 2,000,000 pixels, 6 training turns, 32K context with a 2,000 reserve.
    assert (full.min_pixels, full.max_pixels) == (40_000, 2_000_000)
    assert (full.max_turns_train, full.max_turns_eval) == (6, 32)
    assert (full.context_length, full.context_reserve) == (32_768, 2_000)
    assert full.dtype == "bfloat16" and full.sft.lora
    assert (full.rl.clip_low, full.rl.clip_high, full.rl.kl_coef) == (0.2, 0.3, 0.0)
    assert full.rl.exceeded == "mask"  # over-turn masking, as Mini-o3


def test_presets_are_frozen():
    preset = load_preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.max_pixels = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.base.steps = 1  # type: ignore[misc]


def test_top_level_override():
    preset = load_preset("tiny", max_turns_eval=32, max_pixels=224 * 224)
    assert preset.max_turns_eval == 32 and preset.max_pixels == 224 * 224
    assert preset.min_pixels == presets.TINY.min_pixels  # untouched knobs keep the preset value
    assert presets.TINY.max_turns_eval == 16  # the shared preset object is not modified


def test_dotted_override():
    preset = load_preset("tiny", **{"base.steps": 10, "rl.exceeded": "keep"})
    assert preset.base.steps == 10 and preset.rl.exceeded == "keep"
    assert preset.base.lr == presets.TINY.base.lr
    assert presets.TINY.base.steps == 2400


def test_dict_section_override_merges_with_dotted():
    preset = load_preset("tiny", base={"steps": 100, "lr": 3e-4}, **{"base.batch_size": 4})
    assert (preset.base.steps, preset.base.lr, preset.base.batch_size) == (100, 3e-4, 4)
    assert preset.base.hidden == presets.TINY.base.hidden


def test_none_is_ignored():
    assert load_preset("tiny", max_pixels=None, **{"base.steps": None}) == presets.TINY
    assert load_preset("full", model_path=None, rl=None) == presets.FULL


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as info:
        load_preset("tiny", max_pixel=5)
    message = str(info.value)
    assert "max_pixel" in message
    for key in ("max_pixels", "min_pixels", "max_turns_train", "base.steps", "rl.exceeded", "data.mix"):
        assert key in message


def test_unknown_nested_key_lists_the_section_keys():
    with pytest.raises(ValueError, match=r"base\.stepz") as info:
        load_preset("tiny", **{"base.stepz": 5})
    assert "base.steps" in str(info.value) and "base.lr" in str(info.value)
    with pytest.raises(ValueError, match="sft.epochs"):
        load_preset("tiny", sft={"epoch": 1})


def test_bad_override_shapes_raise():
    with pytest.raises(ValueError, match="section"):
        load_preset("tiny", base=5)
    with pytest.raises(ValueError, match="sub-settings"):
        load_preset("tiny", **{"max_pixels.x": 5})


def test_unknown_preset_name_raises():
    with pytest.raises(ValueError, match="tiny, full"):
        load_preset("huge")


def test_tuple_fields_stay_tuples():
    preset = load_preset("tiny", **{"data.colours": ["red", "blue"]}, data={"mix": [0.5, 0.25, 0.25]})
    assert preset.data.colours == ("red", "blue") and isinstance(preset.data.colours, tuple)
    assert preset.data.mix == (0.5, 0.25, 0.25) and isinstance(preset.data.mix, tuple)
    assert isinstance(load_preset("full").data.shapes, tuple)
    hash(preset)  # still hashable, like the presets themselves


def test_as_dict_is_plain_nested():
    d = as_dict(load_preset("tiny", **{"base.steps": 7}))
    assert d["name"] == "tiny" and d["base"]["steps"] == 7 and d["max_pixels"] == 112 * 112
    assert isinstance(d["base"], dict) and isinstance(d["rl"], dict)
