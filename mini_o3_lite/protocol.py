"""The Mini-o3 tool protocol: prompts, parsing of assistant turns, the zoom-in crop, observation turns.

An assistant turn is a thought followed by one action::

    <think>...</think>
    <grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>   # zoom in
    <answer>...</answer>                                                               # or answer

Coordinates are relative to the source image (its width and height are 1.0). ``source`` names the
image to crop: ``original_image`` or ``observation_<i>``, where ``observation_1`` is the first
zoom-in image (Mini-o3 keeps ``[original, obs_1, obs_2, ...]`` and indexes it by ``i``). Every crop
is cut from the full-resolution source, so zooming into a zoom-in never loses pixels.

The behaviour follows Mini-o3's rollout code (``verl/workers/rollout/vllm_rollout/``, see
``papers/protocol_sources.md``); the wording of every prompt is the kit's own. This module is pure
Python + PIL so it can be read, tested and reused without torch.

It is one module, longer than most, because it holds one idea, the format of a turn, in both directions:
what the model is told (prompts, observation and error turns), what it writes (``tool_call_text`` and
``answer_text``), how a turn is read back (``parse_action``) and what a call does (``crop``). The writer
and the reader must agree on every tag and field, so a change to the format is one edit here. About 250
of its lines are code; most of the rest are the rules, written beside the code that applies them.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image

__all__ = [
    "SYSTEM_PROMPT",
    "ORIGINAL_IMAGE",
    "MIN_SIDE",
    "MAX_ASPECT_RATIO",
    "ToolCall",
    "Answer",
    "Invalid",
    "Action",
    "user_prompt",
    "observation_text",
    "error_text",
    "parse_action",
    "source_index",
    "source_name",
    "crop",
    "tool_call_text",
    "answer_text",
    "assistant_text",
    "extract_think",
    "extract_answer",
    "messages_for",
    "observation_message",
    "box_text",
    "error_message",
]

ORIGINAL_IMAGE = "original_image"
MIN_SIDE = 28  # Qwen2.5-VL's patch (14) x merge (2): the smallest side the vision tower accepts
MAX_ASPECT_RATIO = 200  # Mini-o3 (and Qwen2.5-VL's smart_resize) refuse boxes this elongated
_MAX_CALL_CHARS = 2_000  # a real call is ~80 characters; longer content is garbage, not worth parsing

# --------------------------------------------------------------------------------------------------
# Prompts (the kit's wording; same tags, fields and rules as Mini-o3's system prompt)
# --------------------------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You answer questions about an image. Before every action, reason inside <think> and </think>. "
    "If a detail is too small or unclear, zoom in on a region by writing "
    '<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>. '
    "Here (x0, y0) is the top-left and (x1, y1) the bottom-right corner of the region, measured "
    "relative to the image, whose width and height both count as 1.0. "
    '"source" names the image you zoom into: "original_image", or "observation_i" for the i-th '
    "zoom-in image you have received. "
    "When you are sure of the final answer, write it inside <answer> and </answer>."
)


def user_prompt(question: str, choices: list[str] | None = None) -> str:
    """Text that follows the image in the first user turn.

    Mini-o3 sends only the question after the image (``"<image>\\n" + question``): every rule
    lives in the system prompt. Multiple-choice questions get lettered options and a request for
    the letter, so the answer can be checked without a judge.
    """
    text = question.strip()
    if choices:
        options = "\n".join(f"{_letter(i)}. {choice}" for i, choice in enumerate(choices))
        text += f"\nOptions:\n{options}\nAnswer with the letter of the correct option."
    return text


def observation_text(index: int) -> tuple[str, str]:
    """(text before the image, text after the image) of the user turn carrying ``observation_<index>``.

    Mini-o3 names the new image and then reminds the model of its three choices: keep thinking,
    zoom again (on the original or any observation), or answer. The name given here is exactly the
    ``source`` value that zooms into this image.
    """
    if index < 1:
        raise ValueError(f"observations are numbered from 1 (observation_1 is the first zoom-in), got {index}")
    before = f"Here is the zoomed-in region you asked for ({source_name(index)}):\n"
    after = (
        "\nKeep reasoning inside <think> and </think>. To look closer, zoom again with <grounding> on "
        "original_image or on any observation so far. Once you are sure, put the final answer inside "
        "<answer> and </answer>."
    )
    return before, after


def error_text(reason: str) -> str:
    """User turn for an invalid call: the error itself, then a request to adjust and go on thinking.

    Mirrors Mini-o3, which returns the tool's error message followed by an instruction to analyse
    it, adjust the response and continue inside ``<think>``. No image is attached.
    """
    reason = reason.strip() or "the call could not be executed."
    if reason[-1] not in ".!?":
        reason += "."
    return (
        f"The zoom-in tool reported an error: {reason}\n"
        "Look at what went wrong, adjust your call or answer, and continue reasoning inside "
        "<think> and </think>."
    )


# --------------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A well-formed zoom-in request. ``bbox`` is relative and may still poke outside [0, 1]
    (the crop clamps it, as Mini-o3 does); ``raw`` is the turn as it counts (see ``parse_action``)."""

    bbox: tuple[float, float, float, float]
    source: str
    raw: str


@dataclass(frozen=True)
class Answer:
    """A final answer: the stripped text inside the first ``<answer>...</answer>``."""

    text: str
    raw: str


@dataclass(frozen=True)
class Invalid:
    """A turn the environment cannot act on.

    ``is_call`` tells the agent loop what Mini-o3 does next: True when the turn did contain a
    ``<grounding>...</grounding>`` block (Mini-o3 answers with an error turn and the episode goes on;
    the turn still counts as a tool call for the over-turn check), False when it contains neither a
    call nor an answer (Mini-o3 ends the episode; the answer judge then gives reward 0).
    """

    reason: str
    raw: str
    is_call: bool = False


Action = ToolCall | Answer | Invalid

_OPEN_CALL, _CLOSE_CALL = "<grounding>", "</grounding>"
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_OBSERVATION_RE = re.compile(r"observation_([0-9]+)")


def parse_action(text: str, n_observations: int) -> Action:
    """Classify one assistant turn as a ToolCall, an Answer or an Invalid. Never raises.

    ``n_observations`` is how many zoom-in images exist so far, so ``observation_1`` ...
    ``observation_<n_observations>`` are valid sources.

    Rules (Mini-o3 behaviour unless marked *kit*):
    - Generation stops at the first ``</grounding>``, so anything after it is ignored and ``raw``
      ends there.
    - Any complete ``<grounding>...</grounding>`` makes the turn a call, even with an ``<answer>``
      before it. If the turn holds several openings, the last one before ``</grounding>`` counts.
    - ``<think>`` is not required (Mini-o3 checks it only in a format reward whose weight is 0).
    - The call content is a JSON object (Python literal syntax, e.g. single quotes, is also
      accepted, as Mini-o3 ``eval``s it), whitespace anywhere. *kit*: exactly the keys
      ``bbox_2d`` and ``source``.
    - ``bbox_2d`` is 4 finite numbers with x0 < x1 and y0 < y1 (Mini-o3 rejects empty or reversed
      boxes). Values outside [0, 1] are clamped by the crop, as in Mini-o3; a box lying entirely
      outside the image is rejected here, as it would be by the crop.
    - ``source`` is ``original_image`` or ``observation_<i>`` with 0 <= i <= n_observations
      (``observation_0`` is the original image, as in Mini-o3's indexing). *kit*: the whole string
      must match; Mini-o3 would accept trailing characters after the number.
    - Without a complete call: the first ``<answer>...</answer>`` is the answer (trailing text is
      ignored, as the answer judge does); *kit*: an empty answer is Invalid.
    """
    if not isinstance(text, str):
        return Invalid(f"the model output must be a string, got {type(text).__name__}.", str(text))
    try:
        return _parse(text, n_observations)
    except Exception as exc:  # a safety net: parsing must never crash the agent loop
        return Invalid(f"the turn could not be parsed ({type(exc).__name__}: {_show(str(exc))}).", text)


def _parse(text: str, n_observations: int) -> Action:
    close = text.find(_CLOSE_CALL)
    stray_close = False
    if close >= 0:
        text = text[: close + len(_CLOSE_CALL)]  # the stop string: nothing after it was generated
        open_ = text.rfind(_OPEN_CALL, 0, close)
        if open_ >= 0:
            return _parse_call(text[open_ + len(_OPEN_CALL) : close], text, n_observations)
        stray_close = True

    match = _ANSWER_RE.search(text)
    if match is not None:
        answer = match.group(1).strip()
        if not answer:
            return Invalid("the <answer> tag is empty; write the final answer inside it.", text)
        return Answer(answer, text)
    if stray_close:
        return Invalid("found </grounding> without an opening <grounding> tag.", text)
    if _OPEN_CALL in text:
        return Invalid("the <grounding> tag is never closed with </grounding>.", text)
    if "<answer>" in text:
        return Invalid("the <answer> tag is never closed with </answer>.", text)
    return Invalid("the turn has neither a <grounding> call nor an <answer>.", text)


def _parse_call(content: str, raw: str, n_observations: int) -> ToolCall | Invalid:
    def bad(reason: str) -> Invalid:
        return Invalid(reason, raw, is_call=True)

    content = content.strip()
    if not content:
        return bad("the <grounding> call is empty; it must hold a JSON object with bbox_2d and source.")
    if len(content) > _MAX_CALL_CHARS:
        return bad(f"the <grounding> call is {len(content)} characters long; a call is one short JSON object.")
    obj = _load_object(content)
    if not isinstance(obj, dict):
        return bad(f"the <grounding> call is not a JSON object: {_show(content)}.")
    missing = [key for key in ("bbox_2d", "source") if key not in obj]
    if missing:
        return bad(f"the <grounding> call lacks the key(s) {', '.join(missing)}: {_show(content)}.")
    extra = sorted(str(key) for key in obj if key not in ("bbox_2d", "source"))
    if extra:
        return bad(f"the <grounding> call has unexpected key(s) {', '.join(extra)}; use only bbox_2d and source.")

    bbox = _as_bbox(obj["bbox_2d"])
    if isinstance(bbox, str):
        return bad(bbox)
    x0, y0, x1, y1 = bbox
    if x0 >= x1:
        return bad(f"bbox_2d {_fmt_box(bbox)} has x0 >= x1; x0 is the left edge and must be smaller than x1.")
    if y0 >= y1:
        return bad(f"bbox_2d {_fmt_box(bbox)} has y0 >= y1; y0 is the top edge and must be smaller than y1.")
    if x0 >= 1 or y0 >= 1 or x1 <= 0 or y1 <= 0:
        return bad(f"bbox_2d {_fmt_box(bbox)} lies outside the image; relative coordinates run from 0 to 1.")

    source = obj["source"]
    if not isinstance(source, str):
        return bad(f'source must be a string such as "original_image", got {_show(source)}.')
    index = _source_index_or_none(source)
    if index is None:
        return bad(f'source {_show(source)} is not "original_image" or "observation_<i>".')
    if index > n_observations:
        if n_observations == 0:
            available = "only original_image exists so far"
        else:
            available = f"the available observations are observation_1 to observation_{n_observations}"
        return bad(f"source {_show(source)} does not exist yet; {available}.")
    return ToolCall(bbox, source, raw)


def _load_object(content: str) -> Any:
    """JSON first; then a Python literal, which also reads single quotes (Mini-o3 ``eval``s the box)."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(content)
    except Exception:  # literal_eval raises many types (SyntaxError, ValueError, MemoryError, ...)
        return None


def _as_bbox(value: Any) -> tuple[float, float, float, float] | str:
    """Four finite numbers as floats, or a sentence saying what is wrong."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        return f"bbox_2d must be a list of 4 numbers [x0, y0, x1, y1], got {_show(value)}."
    numbers = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"bbox_2d must hold 4 numbers, got {_show(value)} ({_show(v)} is not a number)."
        try:
            number = float(v)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            return f"bbox_2d must hold finite numbers, got {_show(value)}."
        numbers.append(number)
    return (numbers[0], numbers[1], numbers[2], numbers[3])


def _source_index_or_none(source: str) -> int | None:
    if source == ORIGINAL_IMAGE:
        return 0
    match = _OBSERVATION_RE.fullmatch(source)
    return int(match.group(1)) if match else None


def source_index(source: str) -> int:
    """Index of ``source`` in the list of images ``[original, observation_1, observation_2, ...]``.

    0 for ``original_image`` (and for ``observation_0``, which Mini-o3 reads the same way), i for
    ``observation_i``. Raises ValueError for anything else; ``parse_action`` has already rejected
    such sources, so the agent loop never sees the error.
    """
    index = _source_index_or_none(source)
    if index is None:
        raise ValueError(f"not a source name: {source!r} (expected 'original_image' or 'observation_<i>')")
    return index


def source_name(index: int) -> str:
    """Inverse of ``source_index``: 0 -> ``original_image``, i -> ``observation_i``."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    return ORIGINAL_IMAGE if index == 0 else f"observation_{index}"


# --------------------------------------------------------------------------------------------------
# The crop
# --------------------------------------------------------------------------------------------------


def crop(image: Image.Image, bbox: tuple[float, float, float, float], min_side: int = MIN_SIDE) -> Image.Image | str:
    """Cut the relative ``bbox`` out of ``image`` at full resolution, or return why it cannot be cut.

    Mini-o3's rule, step by step: scale the relative box by the source's pixel size, truncate to
    integers, clamp to the image, require at least one pixel in each direction, reject an aspect
    ratio of 200 or more, and crop without resampling. ``image`` must be the full-resolution
    original or observation (never the downsized copy shown to the model), so nested zooms keep
    every pixel.

    One deliberate difference: the right/bottom clamp is the image size, not size - 1 (PIL crop
    boxes exclude their right/bottom edge, so Mini-o3's ``w - 1`` silently drops the last
    column and row: ``[0, 0, 1, 1]`` would not return the whole image).

    A crop thinner than ``min_side`` pixels is enlarged with nearest-neighbour (no new detail, no
    blur) until its short side is ``min_side``; Mini-o3 applies the same 28-pixel rule before the
    image reaches the vision tower. Pass ``min_side=1`` to get the raw region.
    """
    box = _as_bbox(bbox)
    if isinstance(box, str):
        return box
    w, h = image.size
    # int() truncates like Mini-o3's int(); negative values are clamped to 0 right after.
    x0, y0, x1, y1 = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return (
            f"bbox_2d {_fmt_box(box)} covers no pixels of the {w}x{h} source "
            f"(pixel box [{x0}, {y0}, {x1}, {y1}] after clamping); choose a larger region inside the image."
        )
    bw, bh = x1 - x0, y1 - y0
    if max(bw / bh, bh / bw) >= MAX_ASPECT_RATIO:
        return (
            f"bbox_2d {_fmt_box(box)} gives a {bw}x{bh} pixel region whose aspect ratio is "
            f"{MAX_ASPECT_RATIO} or more; choose a less elongated region."
        )
    region = image.crop((x0, y0, x1, y1))
    short = min(bw, bh)
    if short < min_side:
        # integer ceil keeps the short side exactly min_side (float scaling can round to 29)
        size = (-(-bw * min_side // short), -(-bh * min_side // short))
        region = region.resize(size, resample=Image.Resampling.NEAREST)
    return region


# --------------------------------------------------------------------------------------------------
# Rendering assistant turns (the exact strings the tiny model learns to emit)
# --------------------------------------------------------------------------------------------------


def tool_call_text(bbox: tuple[float, float, float, float], source: str, digits: int = 3) -> str:
    """Canonical call: ``<grounding>{"bbox_2d": [0.0, 0.5, 0.25, 1.0], "source": "..."}</grounding>``.

    Numbers are rounded to ``digits`` decimals and written as short floats (``0.0``, ``0.5``,
    ``0.333``), one fixed spelling per value so a small model has one target to learn.
    """
    return f'{_OPEN_CALL}{{"bbox_2d": {box_text(bbox, digits)}, "source": {json.dumps(source)}}}{_CLOSE_CALL}'


def box_text(bbox: tuple[float, ...], digits: int = 3) -> str:
    """A box as the canonical call writes it, ``[0.0, 0.5, 0.25, 1.0]`` (also the spelling of `hints`)."""
    return "[" + ", ".join(_fmt_number(v, digits) for v in bbox) + "]"


def answer_text(answer: str) -> str:
    """The final action: ``<answer>...</answer>``."""
    return f"<answer>{answer.strip()}</answer>"


def assistant_text(thought: str, action: str) -> str:
    """A whole assistant turn: the thought, a newline, then the action (call or answer)."""
    return f"<think>{thought.strip()}</think>\n{action}"


def extract_think(text: str) -> str | None:
    """Contents of the first ``<think>...</think>`` (stripped), or None when there is none."""
    match = _THINK_RE.search(text)
    return match.group(1).strip() if match else None


def extract_answer(text: str) -> str | None:
    """The first ``<answer>...</answer>`` in ``text`` (e.g. a whole trajectory), stripped, or None.

    Mini-o3's judge reads the first answer found in the concatenated turns.
    """
    match = _ANSWER_RE.search(text)
    return match.group(1).strip() if match else None


# --------------------------------------------------------------------------------------------------
# Chat messages (Hugging Face multimodal format, as the Qwen2.5-VL processor's chat template reads it)
# --------------------------------------------------------------------------------------------------


def messages_for(question: str, choices: list[str] | None = None) -> list[dict]:
    """The conversation's start: the system prompt, then a user turn with the image and the question."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": user_prompt(question, choices)}],
        },
    ]


def observation_message(index: int, hint: str | None = None) -> dict:
    """User turn carrying zoom-in image ``observation_<index>`` between its two texts.

    `hint`: a line appended after them (the kit-only tile hints of `hints.py`; None in Mini-o3's form).
    """
    before, after = observation_text(index)
    if hint:
        after += "\n" + hint
    return {
        "role": "user",
        "content": [{"type": "text", "text": before}, {"type": "image"}, {"type": "text", "text": after}],
    }


def error_message(reason: str) -> dict:
    """User turn reporting an invalid call (text only)."""
    return {"role": "user", "content": [{"type": "text", "text": error_text(reason)}]}


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"Option{i + 1}"


def _fmt_number(value: float, digits: int) -> str:
    rounded = round(float(value), digits)
    return repr(rounded + 0.0)  # + 0.0 turns -0.0 into 0.0


def _fmt_box(box: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _show(value: Any, limit: int = 80) -> str:
    """repr() cut to ``limit`` characters: reasons are shown to the model, so they stay short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
