"""Qwen2.5-VL's image-resize arithmetic, and what it means for how many turns fit in a context.

Mini-o3's fourth idea is a budget argument: every image (the original and every zoom-in
observation) is resized by Qwen2.5-VL's `smart_resize` into [min_pixels, max_pixels], and costs
(H / 28) * (W / 28) visual tokens in the language model (14-px patches, merged 2 x 2). Lowering
max_pixels from Qwen2.5-VL's 12,845,056 to 2,000,000 makes each image cheaper, so a 32K context
holds a dozen images instead of one or two. This module is that arithmetic, written out so a
notebook can show it; `tests/test_pixels.py` checks `smart_resize` against transformers' own.

The constants are Qwen2.5-VL's (14-px patches merged 2 x 2, so sides are multiples of 28); Qwen3-VL
uses 16-px patches (multiples of 32). Every function takes the patch and merge sizes (or their product,
`factor`) so a checkpoint's own numbers, `modeling.resize_factor(processor)`, can be passed. The
generated scenes (`scenes.py`) are sized with Qwen2.5-VL's 28, since a dataset is drawn before any model
is chosen; under Qwen3-VL's 32 a view's side differs by under 2% at the full preset's budget (1,408 vs
1,400 px for a 4096-px canvas at 2M pixels, 512 vs 504 for a 512-px crop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATCH = 14  # vision-transformer patch side (Qwen2.5-VL)
MERGE = 2  # 2 x 2 patches are merged into one language-model token
FACTOR = PATCH * MERGE  # resized sides are multiples of 28
MAX_ASPECT_RATIO = 200  # Qwen2.5-VL refuses images more elongated than this

QWEN_DEFAULT_MIN_PIXELS = 3_136  # 56 * 56
QWEN_DEFAULT_MAX_PIXELS = 12_845_056  # 14 * 14 * 4 * 16384
MINI_O3_MIN_PIXELS = 40_000
MINI_O3_MAX_PIXELS = 2_000_000
MINI_O3_CONTEXT = 32_768
MINI_O3_CONTEXT_RESERVE = 2_000  # a rollout counts as over the context cap at 32,768 - 2,000


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = FACTOR) -> tuple[int, int]:
    """Return the (height, width) Qwen2.5-VL resizes an image to.

    Both sides are rounded to multiples of `factor`; if the area is then above `max_pixels` the image
    is scaled down (sides floored), if below `min_pixels` scaled up (sides ceiled), keeping the aspect
    ratio as closely as multiples of 28 allow.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"aspect ratio {max(height, width) / min(height, width):.1f} of a {width}x{height} image is above "
            f"{MAX_ASPECT_RATIO}; Qwen2.5-VL cannot take it"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def grid(height: int, width: int, min_pixels: int, max_pixels: int, patch: int = PATCH,
         merge: int = MERGE) -> tuple[int, int, int]:
    """The processor's `image_grid_thw` for one image: (1 frame, rows of patches, columns)."""
    h, w = smart_resize(height, width, min_pixels, max_pixels, patch * merge)
    return 1, h // patch, w // patch


def visual_tokens(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = FACTOR) -> int:
    """Tokens one image costs the language model after resizing and the merge (`factor` = patch x merge)."""
    h, w = smart_resize(height, width, min_pixels, max_pixels, factor)
    return (h // factor) * (w // factor)


def max_visual_tokens(max_pixels: int, factor: int = FACTOR) -> int:
    """Upper bound on tokens per image at a max-pixels budget, whatever the image's shape."""
    return max_pixels // (factor * factor)


def turns_that_fit(
    context_length: int,
    prompt_tokens: int,
    first_image_tokens: int,
    tokens_per_turn: int,
    observation_tokens: int,
    reserve: int = 0,
) -> int:
    """How many assistant turns fit before the context is full.

    The conversation starts with the prompt and the original image; every turn then adds the
    model's text (`tokens_per_turn`, its thought and tool call plus the observation's words) and one
    observation image. The last turn needs no observation after it, but Mini-o3 counts a rollout
    as over the cap when it still calls the tool, so each turn is charged with its observation.
    """
    free = context_length - reserve - prompt_tokens - first_image_tokens
    per_turn = tokens_per_turn + observation_tokens
    return max(0, free // per_turn)


@dataclass(frozen=True)
class Budget:
    """One row of the max-pixels argument: an image size at a pixel budget, and what fits."""

    width: int
    height: int
    min_pixels: int
    max_pixels: int
    resized: tuple[int, int]  # (width, height) after smart_resize
    tokens: int
    images_that_fit: int  # images of this size that fit in the context, text aside


def budget(width: int, height: int, min_pixels: int, max_pixels: int, context_length: int,
           factor: int = FACTOR) -> Budget:
    h, w = smart_resize(height, width, min_pixels, max_pixels, factor)
    tokens = (h // factor) * (w // factor)
    return Budget(width, height, min_pixels, max_pixels, (w, h), tokens, context_length // tokens)


def mini_o3_argument(
    width: int = 3840,
    height: int = 2160,
    context_length: int = MINI_O3_CONTEXT,
    reserve: int = MINI_O3_CONTEXT_RESERVE,
    prompt_tokens: int = 600,
    tokens_per_turn: int = 150,
) -> dict[str, int]:
    """Turns that fit in Mini-o3's context at its max pixels vs at Qwen2.5-VL's default.

    Observations are charged at the worst case (a crop as expensive as the budget allows), which is
    what bounds the number of turns. The text token counts are rough defaults (a system prompt and
    question, a short thought plus a tool call plus the observation's words); pass your own.
    """
    rows = {}
    for label, lo, hi in (
        ("mini_o3", MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS),
        ("qwen_default", QWEN_DEFAULT_MIN_PIXELS, QWEN_DEFAULT_MAX_PIXELS),
    ):
        first = visual_tokens(height, width, lo, hi)
        worst_observation = min(first, max_visual_tokens(hi))
        rows[f"{label}_image_tokens"] = first
        rows[f"{label}_turns"] = turns_that_fit(
            context_length, prompt_tokens, first, tokens_per_turn, worst_observation, reserve
        )
    return rows
