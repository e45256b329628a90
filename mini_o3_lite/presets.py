"""Presets: every knob of the kit in one place, as plain frozen dataclasses (nanoGPT-style config).

`tiny` runs every notebook on a laptop CPU in minutes with the kit's own tiny Qwen2.5-VL;
`full` is Mini-o3's own settings on one GPU with LoRA on a local Qwen2.5-VL checkpoint. A notebook
reads its knobs with `load_preset(preset, **overrides)`, where papermill parameters become
overrides. Top-level knobs are plain keywords (`max_pixels=...`); a section's knob is written
`"base.steps"` or passed as a dict (`base={"steps": 100}`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    """VisualProbe-lite scene generation (scenes.py)."""

    canvas: int = 1024  # side of a generated high-resolution scene, pixels
    n_train: int = 384
    n_test: int = 96
    train_seed: int = 0  # train and test scenes come from disjoint seed streams
    test_seed: int = 1_000_003
    mix: tuple[float, float, float] = (0.34, 0.33, 0.33)  # easy, medium, hard
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
    # Square vs triangle: a 2x difference in filled area, which a tiny ViT tells apart at 16 px long before
    # it separates circles from squares (notebook 00); add "circle" for a harder vocabulary.
    shapes: tuple[str, ...] = ("square", "triangle")


@dataclass(frozen=True)
class BaseConfig:
    """Pretraining of the tiny base VLM (pretrain.py). Unused by `full`, which starts from Qwen2.5-VL.

    The defaults are the from-scratch recipe of the kit's earlier base, tiny-base1 (`papers/experiments.md`); the
    shipped base's ten stages set theirs on the command line (`mini_o3_lite/assets/tiny-base/reproduce.sh`).
    """

    steps: int = 2400
    batch_size: int = 32
    lr: float = 1e-3
    warmup: float = 0.05
    task_weights: tuple[float, ...] = (0.45, 0.35, 0.1, 0.1)  # presence, recognition, where, box (training mix)
    # views of the training mix: the full view, then tiles one, two and three zooms deep (held-out: these defaults)
    depth_weights: tuple[float, ...] = (0.2, 0.3, 0.3, 0.2)
    # share of training presence questions that pair a shape in view with a colour seen elsewhere in it
    # ("a red triangle?" over "blue triangle with a red dot"), which a base trained without them answers "yes"
    presence_hard: float = 0.0
    # share of training presence questions asked over another scene's view, with the loss on the answer word
    # only (and on the look-up line before it, with `presence_lookup`): the words are right, the picture is
    # not, so the answer can only come from the description (the shipped base's recipe has it from step 0)
    presence_blind: float = 0.0
    # presence answers think in two sentences: the description, then a look-up line for the asked colour
    # ("green: triangle, spot."), from which the answer is a one-word match (`scenes.lookup`); every stage of the
    # shipped base has it
    presence_lookup: bool = False
    # share of training examples that are the agent's step after a zoom (fragments.py): training on them is
    # what lets SFT learn to copy the tile hint's box (the base's model card)
    step_share: float = 0.0
    # train the language model alone, the vision tower and merger frozen (as SFT and RL train it): a continuation
    # that teaches words and decisions over another base's vision tower (`--vision-from`)
    freeze_vision: bool = False
    weight_decay: float = 0.01
    eval_every: int = 200
    checkpoint_minutes: float = 3.0
    n_eval: int = 256
    hidden: int = 256
    layers: int = 4
    vision_depth: int = 4
    vision_hidden: int = 192
    vocab_size: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class SFTConfig:
    """Cold-start SFT (sft.py)."""

    epochs: float = 4.0  # tiny: fewer leave the decisions half-learned; Mini-o3: 3
    batch_size: int = 8
    lr: float = 5e-4
    warmup: float = 0.1
    lora: bool = False
    lora_rank: int = 16
    n_trajectories: int = 384


@dataclass(frozen=True)
class RLConfig:
    """Multi-turn GRPO (grpo.py); clip range and reward follow Mini-o3's code."""

    steps: int = 20  # Mini-o3: 256 prompts x 16 rollouts a step, lr 1e-6; a tiny step's cost: papers/numbers.md
    # Turn budget of RL rollouts; None: the preset's max_turns_train (Mini-o3: 6). Tiny: 10, since the tiny SFT
    # agent searches longer than 6 turns on average and too few of its searches end right within 6 for a
    # reward signal in 20 steps of 32 rollouts.
    max_turns: int | None = None
    prompts_per_step: int = 4
    group_size: int = 8
    lr: float = 5e-5
    clip_low: float = 0.2
    clip_high: float = 0.3
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    temperature: float = 1.0
    # what an exceeded trajectory (still calling the tool at the turn, image or context limit) does in the update:
    # "mask": no gradient, its reward 0 kept in the group's statistics (over-turn masking, Mini-o3);
    # "keep": a failure like any other (it teaches "answer sooner"); "drop": no gradient and out of the statistics
    exceeded: str = "mask"
    mini_batch_prompts: int = 2  # prompts per optimizer update (Mini-o3: 32 of 256, so 8 updates a step)
    micro_batch_size: int = 16  # trajectories per forward/backward (gradient accumulation within an update)
    save_every: int = 5  # steps between checkpoints
    # dynamic sampling: up to this many extra rounds of fresh prompts a step replace groups whose rewards are all
    # equal (no gradient); Mini-o3 refills until the batch is full. 0 (tiny's shipped runs): no refill
    refill: int = 0


VARIANTS = {"rl": "mask", "rl_nomask": "keep", "rl_drop": "drop"}  # RL variant -> `RLConfig.exceeded`
STAGES = ("base", "sft", *VARIANTS)  # the words that name a pipeline stage's checkpoint (`stages.checkpoint`)


@dataclass(frozen=True)
class Preset:
    name: str
    model_path: str | None  # None: the shipped tiny base VLM; else a local Qwen2.5-VL directory
    device: str  # "cpu", "cuda" or "auto" (CUDA when available, else the CPU: `modeling.resolve_device`)
    dtype: str  # "float32" or "bfloat16"
    seed: int
    min_pixels: int  # every image (original and observations) is resized into [min, max] pixels
    max_pixels: int
    max_turns_train: int
    max_turns_eval: int
    context_length: int  # tokens; a rollout past context_length - context_reserve is cut
    context_reserve: int
    max_new_tokens: int  # per assistant turn
    rollout_batch_size: int
    eval_batch_size: int
    # kit-only: each observation turn ends with the boxes a tile search zooms next (hints.py); the tiny model
    # copies a box but cannot compute the next one. False is Mini-o3's observation text (the full preset).
    # Tiny: on, with a base pretrained on hint fragments (fragments.py), since SFT alone does not learn the copy
    tile_hints: bool = False
    # share of the scripted teacher's cold-start searches that zoom the target's quadrant first at every level
    # (`teacher.TeacherConfig.direct`): a real VLM localises, so most of its searches are short; the tiny base
    # cannot (quadrant accuracy near chance), so there it would teach random orders
    teacher_direct: float = 0.0
    # recompute activations in the backward pass (SFT and GRPO): memory for time, what a 7B on one GPU needs
    gradient_checkpointing: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)


TINY = Preset(
    name="tiny",
    model_path=None,
    device="cpu",
    dtype="float32",
    seed=0,
    min_pixels=112 * 112,  # every view becomes 112 x 112 = 16 visual tokens
    max_pixels=112 * 112,
    max_turns_train=6,
    max_turns_eval=16,
    context_length=4096,
    context_reserve=256,
    max_new_tokens=160,  # a turn with hints: description, verdict with the hint's box, the call (~110 tokens)
    rollout_batch_size=16,
    eval_batch_size=32,
    tile_hints=True,
    # lr 1e-3 (not 5e-4): the best of a learning-rate sweep of SFT from the tiny base
    sft=SFTConfig(lr=1e-3),
    rl=RLConfig(max_turns=10),
)

FULL = Preset(
    name="full",
    model_path=None,  # must be given: a local Qwen2.5-VL-7B-Instruct (or 3B) directory
    device="auto",  # CUDA when available; a CPU run is the same code, only slow
    dtype="bfloat16",
    seed=0,
    min_pixels=40_000,  # Mini-o3's range
    max_pixels=2_000_000,
    max_turns_train=6,
    max_turns_eval=32,
    context_length=32_768,
    context_reserve=2_000,
    max_new_tokens=1024,
    rollout_batch_size=32,
    eval_batch_size=32,
    gradient_checkpointing=True,
    teacher_direct=0.75,  # a quarter still search depth-first (with trial and error where a decoy is zoomed)
    data=DataConfig(canvas=4096, n_train=4000, n_test=500),
    sft=SFTConfig(epochs=3.0, batch_size=1, lr=1e-5, lora=True, lora_rank=64, n_trajectories=6000),
    rl=RLConfig(steps=200, prompts_per_step=32, group_size=16, lr=1e-6, mini_batch_prompts=4, micro_batch_size=2,
                refill=3),
)

PRESETS: dict[str, Preset] = {"tiny": TINY, "full": FULL}


def _valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(_valid_keys(value, f"{prefix}{f.name}."))
        elif f.name != "name":
            keys.append(prefix + f.name)
    return keys


def _apply(obj: Any, overrides: dict[str, Any], preset: str, prefix: str = "") -> Any:
    names = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in names or head == "name":
            valid = ", ".join(_valid_keys(obj, prefix))
            raise ValueError(f"unknown setting {prefix + key!r} for preset {preset!r}; valid settings: {valid}")
        current = getattr(obj, head)
        if dataclasses.is_dataclass(current):
            if rest:
                nested.setdefault(head, {})[rest] = value
            elif isinstance(value, dict):
                nested.setdefault(head, {}).update(value)
            else:
                raise ValueError(f"setting {prefix + head!r} is a section; pass a dict or '{prefix}{head}.<key>'")
        elif rest:
            raise ValueError(f"setting {prefix + head!r} has no sub-settings (got {prefix + key!r})")
        else:
            changes[head] = tuple(value) if isinstance(current, tuple) else value
    for head, sub in nested.items():
        changes[head] = _apply(getattr(obj, head), sub, preset, f"{prefix}{head}.")
    return replace(obj, **changes)


def load_preset(name: str = "tiny", **overrides: Any) -> Preset:
    """The named preset with overrides applied; `None` values are ignored (papermill's 'use the preset').

    >>> load_preset("tiny", max_turns_eval=32, **{"base.steps": 10}).base.steps
    10
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return _apply(PRESETS[name], {k: v for k, v in overrides.items() if v is not None}, name)


def from_parameters(name: str, overrides: dict[str, Any] | None = None, **named: Any) -> Preset:
    """A notebook's preset: its named papermill parameters (None: the preset's value) and `overrides`, a dict of
    any other setting (`{"data.canvas": 1024, "max_pixels": 200704}`); `overrides` wins where both name a key."""
    return load_preset(name, **{**{k: v for k, v in named.items() if v is not None}, **(overrides or {})})


def as_dict(preset: Preset) -> dict[str, Any]:
    """Plain nested dict of a preset (for manifests and config hashes)."""
    return dataclasses.asdict(preset)
