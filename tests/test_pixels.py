"""Tests for mini_o3_lite.pixels: Qwen2.5-VL's smart_resize, tokens per image and turns that fit."""

from __future__ import annotations

import math
import random

import pytest
from transformers import Qwen2VLImageProcessor
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize

from mini_o3_lite import pixels
from mini_o3_lite.pixels import (
    MINI_O3_MAX_PIXELS,
    MINI_O3_MIN_PIXELS,
    QWEN_DEFAULT_MAX_PIXELS,
    QWEN_DEFAULT_MIN_PIXELS,
    grid,
    max_visual_tokens,
    mini_o3_argument,
    smart_resize,
    turns_that_fit,
    visual_tokens,
)

# Worked examples of Qwen2.5-VL's resize arithmetic: (W, H, min_pixels, max_pixels) -> (resized W, H), tokens.
WORKED_EXAMPLES = [
    ((3840, 2160, 40_000, 2_000_000), (1876, 1036), 2_479),
    ((3840, 2160, 3_136, 12_845_056), (3836, 2156), 10_549),
    ((3840, 2160, 3_136, 1_003_520), (1316, 728), 1_222),
    ((7680, 4320, 40_000, 2_000_000), (1876, 1036), 2_479),
    ((7680, 4320, 3_136, 12_845_056), (4760, 2688), 16_320),
    ((1024, 1024, 40_000, 2_000_000), (1036, 1036), 1_369),
]

NAMED_BUDGETS = [
    (QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS),
    (MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS),
    (56 * 56, 28 * 28 * 1280),  # transformers' processor default
    (112 * 112, 112 * 112),  # the tiny preset: every view becomes 16 tokens
]


def test_constants_match_qwen_and_mini_o3():
    assert pixels.FACTOR == 28
    assert (QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS) == (3_136, 12_845_056)
    assert (MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) == (40_000, 2_000_000)


def _random_side(rng: random.Random) -> int:
    # Log-uniform in [28, 10000]: small crops and 8K scenes are both well represented.
    return min(10_000, max(28, round(math.exp(rng.uniform(math.log(28), math.log(10_000))))))


def _random_budget(rng: random.Random) -> tuple[int, int]:
    if rng.random() < 0.3:
        return rng.choice(NAMED_BUDGETS)
    hi = rng.randint(28 * 28, 20_000_000)
    lo = rng.randint(1, hi) if rng.random() < 0.5 else rng.randint(1, min(hi, 200_000))
    return lo, hi


def test_smart_resize_equals_transformers_on_random_cases():
    rng = random.Random(20250907)
    branches = {"down": 0, "up": 0, "round": 0}
    cases = 0
    while cases < 6_000:
        height, width = _random_side(rng), _random_side(rng)
        if max(height, width) / min(height, width) > 200:
            continue
        lo, hi = _random_budget(rng)
        ours = smart_resize(height, width, lo, hi)
        theirs = hf_smart_resize(height, width, 28, lo, hi)
        assert ours == theirs, (height, width, lo, hi)
        h, w = ours
        assert h % 28 == 0 and w % 28 == 0 and h >= 28 and w >= 28
        rounded = round(height / 28) * 28 * round(width / 28) * 28
        branches["down" if rounded > hi else "up" if rounded < lo else "round"] += 1
        cases += 1
    # Every branch of the algorithm was exercised many times, not just the common one.
    assert min(branches.values()) >= 300, branches


@pytest.mark.parametrize("lo, hi", NAMED_BUDGETS)
def test_smart_resize_equals_transformers_at_named_budgets(lo, hi):
    rng = random.Random(lo ^ hi)
    for _ in range(500):
        height, width = rng.randint(28, 10_000), rng.randint(28, 10_000)
        if max(height, width) / min(height, width) > 200:
            continue
        assert smart_resize(height, width, lo, hi) == hf_smart_resize(height, width, 28, lo, hi)


@pytest.mark.parametrize("height, width", [(28, 5_601), (5_601, 28), (30, 6_001), (10_000, 49)])
def test_both_refuse_aspect_ratio_above_200(height, width):
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(height, width, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS)
    with pytest.raises(ValueError):
        hf_smart_resize(height, width, 28, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS)


def test_aspect_ratio_of_exactly_200_is_accepted():
    expected = hf_smart_resize(28, 5_600, 28, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS)
    assert smart_resize(28, 5_600, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS) == expected == (28, 5_600)


@pytest.mark.parametrize("height, width", [(0, 100), (100, 0), (-28, 56)])
def test_non_positive_sizes_raise(height, width):
    with pytest.raises(ValueError, match="positive"):
        smart_resize(height, width, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS)


@pytest.mark.parametrize("image, resized, tokens", WORKED_EXAMPLES)
def test_worked_examples_from_the_facts_table(image, resized, tokens):
    width, height, lo, hi = image
    h, w = smart_resize(height, width, lo, hi)
    assert (w, h) == resized
    assert visual_tokens(height, width, lo, hi) == tokens
    assert (w // 28) * (h // 28) == tokens
    row = pixels.budget(width, height, lo, hi, context_length=32_768)
    assert row.resized == resized and row.tokens == tokens
    assert row.images_that_fit == 32_768 // tokens


def test_grid_is_patches_before_the_merge():
    # 3840 x 2160 at Mini-o3's budget -> 1876 x 1036 pixels -> 134 x 74 patches of 14 px -> 67 x 37 tokens.
    assert grid(2160, 3840, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) == (1, 74, 134)
    assert grid(1024, 1024, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) == (1, 74, 74)
    assert grid(300, 200, 112 * 112, 112 * 112) == (1, 8, 6)
    t, h, w = grid(4320, 7680, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS)
    assert t * h * w // 4 == visual_tokens(4320, 7680, QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS) == 16_320


def test_visual_tokens_small_images_are_scaled_up_to_min_pixels():
    # A 28 x 28 crop at Mini-o3's min of 40,000 pixels: beta = sqrt(40000 / 784), each side ceil(7.14) * 28 = 224.
    assert smart_resize(28, 28, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) == (224, 224)
    assert visual_tokens(28, 28, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) == 64
    # The tiny preset fixes every view at 112 x 112 pixels = 4 x 4 = 16 tokens.
    assert visual_tokens(1000, 1000, 112 * 112, 112 * 112) == 16
    assert visual_tokens(56, 56, 112 * 112, 112 * 112) == 16


def test_max_visual_tokens():
    assert max_visual_tokens(2_000_000) == 2_551
    assert max_visual_tokens(QWEN_DEFAULT_MAX_PIXELS) == 16_384
    assert max_visual_tokens(112 * 112) == 16
    assert max_visual_tokens(1_003_520) == 1_280


def test_max_visual_tokens_bounds_every_image():
    rng = random.Random(7)
    for _ in range(2_000):
        height, width = _random_side(rng), _random_side(rng)
        if max(height, width) / min(height, width) > 200:
            continue
        # Below the max, min_pixels can push an elongated image over the bound; use min << max.
        assert visual_tokens(height, width, MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS) <= max_visual_tokens(
            MINI_O3_MAX_PIXELS
        )


def test_turns_that_fit_hand_computed():
    # free = 1000 - 100 - 200 = 700; each turn costs 50 + 100 = 150 -> 4 turns (600), a 5th would need 750.
    assert turns_that_fit(1000, 100, 200, 50, 100) == 4
    assert turns_that_fit(1000, 100, 200, 50, 100, reserve=100) == 4  # free 600 = exactly 4 turns
    assert turns_that_fit(1000, 100, 200, 50, 100, reserve=101) == 3  # free 599
    assert turns_that_fit(1000, 100, 200, 0, 100) == 7
    assert turns_that_fit(1000, 900, 200, 50, 100) == 0  # the first image alone overflows: never negative
    # Mini-o3's context: 32,768 - 2,000 reserve - 600 prompt - 2,479 first image = 27,689 free;
    # a turn = 150 text + 2,479 observation = 2,629 -> 10 turns.
    assert turns_that_fit(32_768, 600, 2_479, 150, 2_479, reserve=2_000) == 10


def test_mini_o3_argument_exact_numbers():
    # 3840 x 2160: 2,479 tokens at Mini-o3's budget, 10,549 at Qwen's default (facts table).
    # mini_o3: free 32,768 - 2,000 - 600 - 2,479 = 27,689; per turn 150 + 2,479 = 2,629 -> 10.
    # qwen:    free 32,768 - 2,000 - 600 - 10,549 = 19,619; per turn 150 + 10,549 = 10,699 -> 1.
    assert mini_o3_argument() == {
        "mini_o3_image_tokens": 2_479,
        "mini_o3_turns": 10,
        "qwen_default_image_tokens": 10_549,
        "qwen_default_turns": 1,
    }


def test_mini_o3_argument_8k_image():
    # 7680 x 4320: 2,479 tokens at 2M (10 turns); at Qwen's default 16,320 tokens:
    # free 32,768 - 2,000 - 600 - 16,320 = 13,848 < one turn of 16,470 -> 0 turns.
    row = mini_o3_argument(width=7680, height=4320)
    assert row == {
        "mini_o3_image_tokens": 2_479,
        "mini_o3_turns": 10,
        "qwen_default_image_tokens": 16_320,
        "qwen_default_turns": 0,
    }
    assert row["mini_o3_turns"] > row["qwen_default_turns"] + 5


@pytest.mark.parametrize("width, height", [(200, 300), (640, 480), (97, 1013), (1500, 700)])
@pytest.mark.parametrize("lo, hi", [(28 * 28, 112 * 112), (112 * 112, 112 * 112), (3_136, 200_000)])
def test_grid_matches_the_real_image_processor(make_image, width, height, lo, hi):
    processor = Qwen2VLImageProcessor(min_pixels=lo, max_pixels=hi)
    out = processor(images=[make_image(width, height)], return_tensors="pt")
    assert tuple(out["image_grid_thw"][0].tolist()) == grid(height, width, lo, hi)
    t, h, w = grid(height, width, lo, hi)
    assert out["pixel_values"].shape[0] == t * h * w  # one row per 14-px patch
