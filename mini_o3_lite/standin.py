"""Randomly initialised stand-ins of real Qwen VLM checkpoints, with the real file layout.

The kit's loader and agent loop must work on what a researcher actually downloads, not only on
the tiny model the kit builds itself. `write_standin` writes, in a few seconds on CPU, a directory
laid out file by file like Qwen/Qwen2.5-VL-7B-Instruct or Qwen/Qwen3-VL-8B-Instruct: Qwen's own
chat template (default system turn, no `{% generation %}` markers), Qwen's preprocessor keys,
Qwen's 22 (Qwen3: 26) added tokens in Qwen's order, a config.json with Qwen's structure (grouped KV
heads, untied head, vocab padded past the tokenizer, window attention in the Qwen2.5 vision tower,
deepstack in Qwen3's), Qwen's generation defaults, and weights under Qwen's tensor names. Only the
sizes shrink and the BPE vocabulary is small (trained on the kit's own texts), since nothing may be
downloaded. `real_config` gives the real-size config.json, for a GPU benchmark that random-inits it.

Sources: the config, preprocessor, tokenizer and generation values are those of the Hub repos
Qwen/Qwen2.5-VL-{3B,7B}-Instruct and Qwen/Qwen3-VL-{4B,8B}-Instruct; the chat templates are TRL's
reference copies of the shipped ones (`trl/chat_templates/*.jinja`, which TRL's CI checks against the
Hub), pinned here by SHA-256 so a changed copy fails loudly instead of silently drifting.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.resources
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from . import protocol
from .modeling import PRETOKENIZE_REGEX

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
# Qwen's added tokens in Qwen's order; the first 14 are "special" (skipped when decoding), the rest are not.
ADDED_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]  # fmt: skip
N_SPECIAL = 14
QWEN3_EXTRA_TOKENS = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
_TEMPLATES = {  # family -> (TRL's reference copy of the shipped template, its SHA-256)
    "qwen2_5_vl": ("qwen2_5_vl.jinja", "a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb"),
    "qwen3_vl": ("qwen3_vl.jinja", "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"),
}
_CLIP_MEAN, _CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]

_QWEN25_7B = {  # Qwen/Qwen2.5-VL-7B-Instruct config.json: text keys flat at the top level, as shipped
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 128000,
    "max_window_layers": 28, "model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.41.2", "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
        "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 152064,
}
_QWEN3_8B = {  # Qwen/Qwen3-VL-8B-Instruct config.json: text keys nested in text_config
    "architectures": ["Qwen3VLForConditionalGeneration"], "image_token_id": 151655, "model_type": "qwen3_vl",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
        "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
        "intermediate_size": 12288, "max_position_embeddings": 262144, "model_type": "qwen3_vl_text",
        "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
        "rope_theta": 5000000, "tie_word_embeddings": False, "use_cache": True, "vocab_size": 151936,
    },
    "tie_word_embeddings": False, "transformers_version": "4.57.0.dev0", "video_token_id": 151656,
    "vision_config": {
        "deepstack_visual_indexes": [8, 16, 24], "depth": 27, "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152,
        "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304, "model_type": "qwen3_vl",
        "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 4096, "patch_size": 16,
        "spatial_merge_size": 2, "temporal_patch_size": 2,
    },
    "vision_end_token_id": 151653, "vision_start_token_id": 151652,
}
_SIZES = {  # the other sizes differ from the two above only in these keys
    ("qwen2_5_vl", "7b"): {},
    ("qwen2_5_vl", "3b"): {
        "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
        "num_key_value_heads": 2, "max_window_layers": 70, "tie_word_embeddings": True, "vocab_size": 151936,
        "vision_config": {"out_hidden_size": 2048},
    },
    ("qwen3_vl", "8b"): {},
    ("qwen3_vl", "4b"): {
        "tie_word_embeddings": True,
        "text_config": {"hidden_size": 2560, "intermediate_size": 9728, "tie_word_embeddings": True},
        "vision_config": {"deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_size": 1024,
                          "intermediate_size": 4096, "out_hidden_size": 2560},
    },
}


def _merge(base: dict, changes: dict) -> dict:
    """`base` with `changes` applied, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def real_config(family: str, size: str) -> dict:
    """The real config.json of a Qwen checkpoint, e.g. ("qwen2_5_vl", "7b"), ("qwen3_vl", "8b") (real token ids)."""
    if (family, size.lower()) not in _SIZES:
        raise ValueError(f"no real config for {family!r} {size!r}; known: {sorted(_SIZES)}")
    return _merge(_QWEN25_7B if family == "qwen2_5_vl" else _QWEN3_8B, _SIZES[family, size.lower()])


def chat_template(family: str) -> str:
    """Qwen's own chat template for `family`, verbatim (TRL's reference copy, checked against its pinned hash)."""
    name, digest = _TEMPLATES[family]
    source = importlib.resources.files("trl") / "chat_templates" / name
    if not source.is_file():
        raise RuntimeError(f"this trl has no chat_templates/{name} (Qwen's template): install a newer trl")
    text = source.read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise RuntimeError(f"trl's {name} is no longer the template Qwen shipped (hash changed): re-check it")
    return text


def _corpus() -> list[str]:
    """The kit's own texts (prompts, calls, observations, answers), so the agent's words are few tokens."""
    texts = [protocol.SYSTEM_PROMPT, "You are a helpful assistant.",
             protocol.user_prompt("What colour is the small square?", ["red", "blue", "green"])]
    for i, box in enumerate([(0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75), (0.5, 0.0, 1.0, 0.5)]):
        call = protocol.tool_call_text(box, protocol.ORIGINAL_IMAGE if i == 0 else protocol.source_name(i))
        texts.append(protocol.assistant_text("The target is too small to make out.", call))
        texts.append("".join(protocol.observation_text(i + 1)))
    texts.append(protocol.assistant_text("I can read it now.", protocol.answer_text("red")))
    return sorted(set(texts))  # sorted: same texts, same merges


def _tokenizer(added: list[str], bpe_size: int = 384) -> Tokenizer:
    """A small byte-level BPE with Qwen2's normalizer, pre-tokenizer and decoder, then Qwen's added tokens."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])  # fmt: skip
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=i < N_SPECIAL) for i, t in enumerate(added)])
    return tok


def _standin_config(family: str, ids: dict[str, int], vocab_size: int) -> dict:
    """The real config shrunk: 2 text layers of 4 query heads sharing 2 KV heads, a 4-block vision tower."""
    text = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": vocab_size, "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"]}
    vision = {"depth": 4, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 128}
    tokens = {"vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
              "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"]}
    real = real_config(family, "7b" if family == "qwen2_5_vl" else "8b")
    real_text = real if family == "qwen2_5_vl" else real["text_config"]
    # mRoPE splits head_dim / 2 rotary pairs into (time, height, width): keep Qwen's split, scaled to the smaller head
    real_section = real_text["rope_scaling"]["mrope_section"]
    half = text["hidden_size"] // text["num_attention_heads"] // 2
    rope = dict(real_text["rope_scaling"], mrope_section=[s * half // sum(real_section) for s in real_section])
    if family == "qwen2_5_vl":  # window attention everywhere but every 2nd block (7B: every 8th)
        vision["fullatt_block_indexes"] = [1, 3]
        changes = {**text, **tokens, "vision_token_id": ids["<|vision_pad|>"], "max_window_layers": 2,
                   "rope_scaling": rope, "vision_config": vision}
    else:
        vision["deepstack_visual_indexes"] = [1, 2]
        text.update(head_dim=2 * half, rope_scaling=rope)
        changes = {**tokens, "text_config": text, "vision_config": vision}
    return _merge(real, changes)


def _qwen_layout(state: dict[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """Tensor names as Qwen ships them: Qwen2.5-VL predates transformers' `model.language_model` nesting."""
    if family == "qwen3_vl":
        return state
    rename = {"model.language_model.": "model.", "model.visual.": "visual."}
    return {next((new + k[len(old):] for old, new in rename.items() if k.startswith(old)), k): v
            for k, v in state.items()}


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_tokenizer(path: Path, family: str) -> dict[str, int]:
    """tokenizer.json, vocab.json, merges.txt and tokenizer_config.json as Qwen ships them; the added tokens' ids."""
    added = ADDED_TOKENS + (QWEN3_EXTRA_TOKENS if family == "qwen3_vl" else [])
    spec = json.loads(_tokenizer(added).to_str())
    spec["decoder"] = dict(spec["post_processor"])  # Qwen's decoder: ByteLevel with no prefix space, no trimming
    _dump(path / "tokenizer.json", spec)
    bpe = spec["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
    (path / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False, separators=(",", ":")))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    ids = {t["content"]: t["id"] for t in spec["added_tokens"]}
    _dump(path / "tokenizer_config.json", {
        **({"add_bos_token": False} if family == "qwen3_vl" else {}), "add_prefix_space": False,
        "added_tokens_decoder": {str(ids[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                               "single_word": False, "special": i < N_SPECIAL}
                                 for i, t in enumerate(added)},
        "additional_special_tokens": ADDED_TOKENS[1:N_SPECIAL], "bos_token": None,
        "chat_template": chat_template(family), "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072 if family == "qwen2_5_vl" else 262144, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    })  # fmt: skip
    return ids


def _write_processor(path: Path, family: str) -> None:
    """chat_template.json and the image (Qwen3-VL: and video) preprocessor configs, with Qwen's keys and values."""
    _dump(path / "chat_template.json", {"chat_template": chat_template(family)})
    if family == "qwen2_5_vl":
        _dump(path / "preprocessor_config.json", {
            "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
            "image_mean": _CLIP_MEAN, "image_std": _CLIP_STD, "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2_5_VLProcessor",
        })  # fmt: skip
        return
    common = {"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3,
              "image_std": [0.5] * 3, "processor_class": "Qwen3VLProcessor"}
    _dump(path / "preprocessor_config.json", {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, **common,
                                              "image_processor_type": "Qwen2VLImageProcessorFast"})
    _dump(path / "video_preprocessor_config.json", {"size": {"longest_edge": 25165824, "shortest_edge": 4096},
                                                    **common, "video_processor_type": "Qwen3VLVideoProcessor"})


def _real_sized(family: str, size: str, ids: dict[str, int]) -> dict:
    """The real config of `size` (its layers, widths and vocabulary), with the stand-in tokenizer's token ids."""
    real = real_config(family, size)
    tokens = {"vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
              "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"]}
    ends = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"]}
    if family == "qwen2_5_vl":
        return _merge(real, {**tokens, **ends, "vision_token_id": ids["<|vision_pad|>"]})
    return _merge(real, {**tokens, "text_config": ends})


def write_standin(path: str | Path, family: str = "qwen2_5_vl", seed: int = 0, size: str = "tiny") -> Path:
    """Write a randomly initialised checkpoint of `family` with the real Qwen file layout to `path`.

    `size="tiny"`: shrunken, seconds on a CPU (the tests). A real size ("7b", "3b", "8b", "4b": `real_config`)
    has the real layers and widths, for measuring memory and speed on a GPU (`benchmarks/cuda_check.py`); it is
    initialised on the GPU when there is one. `path` should be new or empty (files of another family's layout
    are not removed). Deterministic: the same family and seed give the same bytes in every file; the seed
    changes only model.safetensors.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ids = _write_tokenizer(path, family)
    _write_processor(path, family)
    eot, eos = ids["<|endoftext|>"], ids["<|im_end|>"]
    sampling = ({"repetition_penalty": 1.05, "temperature": 0.1, "top_p": 0.001, "top_k": 1} if family == "qwen2_5_vl"
                else {"top_k": 20, "top_p": 0.8, "repetition_penalty": 1.0, "temperature": 0.7})
    _dump(path / "generation_config.json",
          {"bos_token_id": eot, "pad_token_id": eot, "do_sample": True, "eos_token_id": [eos, eot], **sampling})
    n_tokens = max(ids.values()) + 1  # the added tokens come last
    vocab_size = (n_tokens // 128 + 1) * 128  # padded past the tokenizer, as Qwen's 152064 > 151665
    tiny = size == "tiny"
    _dump(path / "config.json", _standin_config(family, ids, vocab_size) if tiny else _real_sized(family, size, ids))

    torch.manual_seed(seed)
    device = "cuda" if not tiny and torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(path),
                                                        dtype=torch.float32 if tiny else torch.bfloat16)
    if not tiny:  # billions of weights: transformers' sharded writer (it also handles tied embeddings)
        generation = (path / "generation_config.json").read_text()
        model.save_pretrained(path, max_shard_size="5GB")
        (path / "generation_config.json").write_text(generation)  # Qwen's, not the one derived from the config
        return path
    weights = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}  # Qwen: bf16
    save_file(_qwen_layout(weights, family), str(path / "model.safetensors"), metadata={"format": "pt"})
    return path
