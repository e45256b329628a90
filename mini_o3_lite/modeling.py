"""The model: a tiny Qwen2.5-VL built locally, or any Qwen2.5-VL / Qwen3-VL checkpoint from a local path.

Every line of the kit runs on transformers' real model classes and processors; the tiny model differs
from Qwen2.5-VL-7B only in its sizes and in a small byte-level BPE vocabulary trained here with
`tokenizers` (same pre-tokenizer and special tokens as Qwen's), because nothing may be downloaded.
`load(path)` is the one way to open a checkpoint, the shipped tiny one and a real 7B alike;
`load_for(preset)` opens it with the preset's device, dtype and pixel budget.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)
from transformers.image_utils import SizeDict
from transformers.utils import logging as hf_logging

from .presets import BaseConfig

# Qwen2.5-VL's special tokens, in Qwen's order, so chat formatting is byte-for-byte Qwen's.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
# Qwen2's pre-tokenizer: digits split one by one, words keep their leading space.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""  # noqa: E501
)

# Qwen2.5-VL's chat layout (<|im_start|>role\n ... <|im_end|>\n, images as
# <|vision_start|><|image_pad|><|vision_end|>), with {% generation %} around assistant text so that
# `return_assistant_tokens_mask` (TRL's assistant-only loss) knows which tokens are the model's.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}{%- generation -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}{%- if item['type'] == 'text' -%}{{- item['text'] -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}{%- endgeneration -%}{{- '\\n' -}}"
    "{%- else -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@contextmanager
def _quiet() -> Iterator[None]:
    """No 'Loading weights' / 'Writing model shards' bars: they clutter notebooks and logs."""
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class ModelPathError(ValueError):
    """A model path that does not hold a checkpoint of a supported family."""


# Model families the agent loop runs on: same chat layout and vision tokens, each with its own model class,
# which transformers picks from the checkpoint's config (`AutoModelForImageTextToText`).
FAMILIES = {"qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL"}
_GENERATION_MARK = re.compile(r"{%-?\s*generation\s*-?%}")


def has_generation_markers(template: str | None) -> bool:
    """Whether a chat template wraps assistant text in `{% generation %}` (what assistant-only loss reads).

    A substring test is not enough: Qwen's own template mentions `add_generation_prompt` and has no markers.
    """
    return bool(_GENERATION_MARK.search(template or ""))


def resolve_device(device: str) -> str:
    """The one place `"auto"` is resolved: CUDA when a GPU is visible, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


ASSETS = Path(__file__).parent / "assets"
SHIPPED_BASE = ASSETS / "tiny-base"  # the pretrained tiny base VLM (notebook 00)


def shipped(stage: str) -> Path:
    """A checkpoint the kit ships for the tiny preset: "base", "sft", "rl" or "rl_nomask" (notebooks 00-07).

    The later stages are what `train=True` in notebooks 04-05 rebuilds; shipping them keeps the
    notebooks minutes long on a CPU (and under `make test`).
    """
    path = ASSETS / f"tiny-{stage.replace('_', '-')}"
    if not (path / "config.json").is_file():
        raise ModelPathError(f"no shipped tiny {stage!r} checkpoint at {str(path)!r}: train it (train=True)")
    return path


def model_path(preset_model_path: str | Path | None, preset: str = "tiny") -> Path:
    """The checkpoint a preset starts from: its `model_path`, or (tiny only) the shipped tiny base VLM."""
    if preset_model_path is not None:
        return Path(preset_model_path)
    if preset != "tiny":
        raise ModelPathError(f"the {preset!r} preset needs model_path: a local Qwen2.5-VL or Qwen3-VL checkpoint "
                             "directory (notebooks: -p model_path=DIR; the CLI: --model-path DIR)")
    return SHIPPED_BASE


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Qwen2Tokenizer:
    """A byte-level BPE trained on the kit's own texts, wrapped as transformers' `Qwen2Tokenizer`.

    Byte-level means every string round-trips (a model can write any JSON); merges learned from the
    prompts, thoughts and tool calls make the words the agent uses single tokens, which keeps the
    tiny model's sequences short.
    """
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(sorted(set(texts)), trainer=trainer)  # sorted: same texts, same merges
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=state["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_processor(tokenizer: Qwen2Tokenizer, min_pixels: int, max_pixels: int) -> Qwen2_5_VLProcessor:
    """The real Qwen2.5-VL processor around a tokenizer, with the preset's pixel budget."""
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


def tiny_config(tokenizer: Qwen2Tokenizer, base: BaseConfig) -> Qwen2_5_VLConfig:
    """Qwen2.5-VL's architecture at toy sizes. Full attention in every vision block: a tiny view (112 x 112 px)
    is a single 112-px attention window, so Qwen2.5-VL's window attention would compute the same thing."""
    head_dim = 64
    heads = base.hidden // head_dim
    ids = tokenizer.convert_tokens_to_ids
    section = head_dim // 2 // 4  # mRoPE splits head_dim/2 rotary pairs into (time, height, width)
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=base.hidden,
            intermediate_size=4 * base.hidden,
            num_hidden_layers=base.layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=8192,
            rope_scaling={"type": "mrope", "mrope_section": [section, (head_dim // 2 - section) // 2,
                                                            (head_dim // 2 - section) // 2]},
            bos_token_id=ids("<|endoftext|>"),
            eos_token_id=ids("<|im_end|>"),
            pad_token_id=ids("<|endoftext|>"),
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=base.vision_depth,
            hidden_size=base.vision_hidden,
            intermediate_size=4 * base.vision_hidden,
            num_heads=base.vision_hidden // 64,
            out_hidden_size=base.hidden,
            fullatt_block_indexes=list(range(base.vision_depth)),
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build_tiny(
    texts: Iterable[str], base: BaseConfig, min_pixels: int, max_pixels: int
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """A freshly initialised tiny Qwen2.5-VL and its processor (seeded by `base.seed`)."""
    tokenizer = train_tokenizer(texts, base.vocab_size)
    processor = make_processor(tokenizer, min_pixels, max_pixels)
    torch.manual_seed(base.seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(tokenizer, base))
    _set_generation_defaults(model, tokenizer)
    return model, processor


def _set_generation_defaults(model: Qwen2_5_VLForConditionalGeneration, tokenizer: Qwen2Tokenizer) -> None:
    ids = tokenizer.convert_tokens_to_ids
    model.generation_config.eos_token_id = [ids("<|im_end|>"), ids("<|endoftext|>")]
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.generation_config.bos_token_id = ids("<|endoftext|>")


def check_checkpoint(path: str | Path) -> Path:
    """Fail early, in one line naming the path, when it is not a checkpoint of a supported family."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelPathError(f"model path {str(path)!r} does not exist or is not a directory")
    config = path / "config.json"
    if not config.is_file():
        raise ModelPathError(f"model path {str(path)!r} has no config.json: not a transformers checkpoint")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in FAMILIES:
        supported = ", ".join(f"{name} ({key})" for key, name in FAMILIES.items())
        raise ModelPathError(f"model path {str(path)!r} holds a {model_type!r} model; supported: {supported}")
    return path


def load_processor(path: str | Path, min_pixels: int | None = None, max_pixels: int | None = None):
    """The checkpoint's processor alone (no weights): what data synthesis needs to tokenise trajectories."""
    path = check_checkpoint(path)
    with _quiet():
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    if not has_generation_markers(processor.chat_template):
        # Qwen's own template has no {% generation %} markers (needed for assistant-only loss) and adds a
        # default system turn to any conversation that lacks one; the kit's template renders the same
        # layout, with the markers, and nothing implicit.
        processor.chat_template = processor.tokenizer.chat_template = CHAT_TEMPLATE
    if min_pixels is not None or max_pixels is not None:
        low, high = pixel_budget(processor)
        set_pixel_budget(processor, min_pixels or low, max_pixels or high)
    return processor


def load(
    path: str | Path,
    device: str = "cpu",
    dtype: str = "float32",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """Load any Qwen2.5-VL or Qwen3-VL checkpoint directory (tiny or 7B) with its processor, offline.

    The model class comes from the checkpoint's config. `device="auto"`: CUDA when available.
    `min_pixels`/`max_pixels` override the processor's budget (Mini-o3's lower max pixels).
    """
    path = check_checkpoint(path)
    with _quiet():
        model = AutoModelForImageTextToText.from_pretrained(
            path, dtype=getattr(torch, dtype), local_files_only=True
        ).to(resolve_device(device))
    processor = load_processor(path, min_pixels, max_pixels)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return model, processor


def load_for(preset, path: str | Path | None = None, min_pixels: int | None = None, max_pixels: int | None = None):
    """`load` with the preset's device, dtype and pixel budget: how every stage opens a checkpoint.

    `path` defaults to the preset's model (`model_path`: its `model_path`, or the shipped tiny base);
    `min_pixels`/`max_pixels` replace the preset's budget (the max-pixels sweep).
    """
    path = model_path(preset.model_path, preset.name) if path is None else path
    return load(path, device=preset.device, dtype=preset.dtype, min_pixels=min_pixels or preset.min_pixels,
                max_pixels=max_pixels or preset.max_pixels)


def processor_for(preset, path: str | Path | None = None):
    """The processor of the preset's model (or of `path`) with the preset's pixel budget, without weights."""
    path = model_path(preset.model_path, preset.name) if path is None else path
    return load_processor(path, preset.min_pixels, preset.max_pixels)


def core(model) -> torch.nn.Module:
    """The model under any PEFT wrapper: the `...ForConditionalGeneration` that holds `.model` (the VLM body).

    For a `PeftModel`, `model.model` is *not* the VLM body but the wrapped model; code that reaches for the
    body (its vision tower, its cached M-RoPE deltas) goes through this.
    """
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def resize_factor(processor) -> int:
    """Side multiple of every resized image: patch x merge (Qwen2.5-VL 14 x 2 = 28, Qwen3-VL 16 x 2 = 32)."""
    image_processor = processor.image_processor
    return int(image_processor.patch_size) * int(image_processor.merge_size)


def pixel_budget(processor: Qwen2_5_VLProcessor) -> tuple[int, int]:
    """The processor's (min_pixels, max_pixels); transformers 5 keeps them in `size`."""
    size = processor.image_processor.size
    return int(size["shortest_edge"]), int(size["longest_edge"])


def set_pixel_budget(processor: Qwen2_5_VLProcessor, min_pixels: int, max_pixels: int) -> None:
    """Set the [min, max] pixels every image (original and observations) is resized into."""
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(f"need 0 < min_pixels <= max_pixels, got min_pixels={min_pixels}, max_pixels={max_pixels}")
    processor.image_processor.size = SizeDict(shortest_edge=min_pixels, longest_edge=max_pixels)


def save(model: Qwen2_5_VLForConditionalGeneration, processor: Qwen2_5_VLProcessor, path: str | Path) -> Path:
    """An ordinary transformers directory: config, safetensors, tokenizer, processor config."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(path)
        processor.save_pretrained(path)
    return path


def freeze_vision(model: Qwen2_5_VLForConditionalGeneration) -> int:
    """Freeze the vision tower and its merger (projector), as Mini-o3 does; returns frozen params."""
    frozen = 0
    for p in core(model).model.visual.parameters():
        p.requires_grad_(False)
        frozen += p.numel()
    return frozen


# The language model's attention and MLP projections, never the vision tower's (`model.visual...`).
LORA_TARGET_REGEX = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def lora_config(rank: int = 16, alpha: int | None = None, dropout: float = 0.05):
    """PEFT LoRA on the language model only; the vision tower stays frozen."""
    from peft import LoraConfig

    return LoraConfig(
        r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=LORA_TARGET_REGEX,
        task_type="CAUSAL_LM",
    )


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    vision = sum(p.numel() for p in core(model).model.visual.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "vision": vision, "language": total - vision}
