"""The stand-in Qwen checkpoints (`standin.py`), checked through transformers directly, not the kit's loader:
what a researcher's real Qwen2.5-VL-7B / Qwen3-VL-8B directory holds, the stand-in must hold too."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLConfig, Qwen3VLConfig

from mini_o3_lite.standin import ADDED_TOKENS, QWEN3_EXTRA_TOKENS, real_config, write_standin

GENERATION_MARK = re.compile(r"{%-?\s*generation\s*-?%}")
CHAT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the square?"}]}]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def loaded(request, qwen25_standin, qwen3_standin):
    """(family, path, processor, model) for each family, loaded once by transformers' Auto classes."""
    path = qwen25_standin if request.param == "qwen2_5_vl" else qwen3_standin
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True).eval()
    return request.param, path, processor, model


def test_loads_as_the_family_classes(loaded):
    family, _, processor, model = loaded
    names = {"qwen2_5_vl": ("Qwen2_5_VLProcessor", "Qwen2_5_VLForConditionalGeneration"),
             "qwen3_vl": ("Qwen3VLProcessor", "Qwen3VLForConditionalGeneration")}
    assert (type(processor).__name__, type(model).__name__) == names[family]
    assert model.config.model_type == family and model.dtype == torch.bfloat16  # Qwen ships bf16


def test_real_file_layout(qwen25_standin, qwen3_standin):
    common = {"chat_template.json", "config.json", "generation_config.json", "merges.txt", "model.safetensors",
              "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json"}
    assert {p.name for p in qwen25_standin.iterdir()} == common
    assert {p.name for p in qwen3_standin.iterdir()} == common | {"video_preprocessor_config.json"}
    assert (qwen25_standin / "merges.txt").read_text().startswith("#version: 0.2\n")
    pre = json.loads((qwen25_standin / "preprocessor_config.json").read_text())
    assert (pre["min_pixels"], pre["max_pixels"], pre["processor_class"]) == (3136, 12845056, "Qwen2_5_VLProcessor")
    with safe_open(qwen25_standin / "model.safetensors", "pt") as f:  # Qwen2.5-VL's pre-transformers-5 names
        keys = set(f.keys())
    assert {"lm_head.weight", "model.embed_tokens.weight", "visual.blocks.0.attn.qkv.weight"} <= keys
    with safe_open(qwen3_standin / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert {"lm_head.weight", "model.language_model.embed_tokens.weight", "model.visual.blocks.0.attn.qkv.weight",
            "model.visual.deepstack_merger_list.0.linear_fc1.weight"} <= keys


def test_every_weight_is_read_from_the_file(loaded):
    _, path, _, _ = loaded
    _, info = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))


def test_chat_template_is_qwens(loaded):
    family, path, processor, _ = loaded
    template = processor.chat_template
    assert "add_generation_prompt" in template and not GENERATION_MARK.search(template)
    on_disk = json.loads((path / "tokenizer_config.json").read_text())["chat_template"]
    assert template == on_disk == json.loads((path / "chat_template.json").read_text())["chat_template"]
    text = processor.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    default_system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    image = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour is the square?<|im_end|>\n"
    # Qwen2.5-VL adds a default system turn to a conversation without one; Qwen3-VL does not
    assert text == (default_system if family == "qwen2_5_vl" else "") + image + "<|im_start|>assistant\n"


def test_added_tokens_in_qwens_order(loaded):
    family, _, processor, model = loaded
    tok = processor.tokenizer
    added = sorted(tok.get_added_vocab().items(), key=lambda kv: kv[1])
    expected = ADDED_TOKENS + (QWEN3_EXTRA_TOKENS if family == "qwen3_vl" else [])
    assert len(ADDED_TOKENS) == 22 and [t for t, _ in added] == expected
    assert [i for _, i in added] == list(range(len(tok) - len(expected), len(tok)))  # after the BPE vocabulary
    special = {str(t) for t in tok.all_special_tokens}
    assert set(ADDED_TOKENS[:14]) <= special and not special & {"<tool_call>", "<|fim_prefix|>", "<think>"}
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    text = '<grounding>{"bbox_2d": [0.25, 0.5, 1.0, 0.75]}</grounding> héllo 日本\n'
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: any string round-trips
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    gen, cfg = model.generation_config, model.config
    assert (gen.eos_token_id, gen.pad_token_id, gen.bos_token_id) == ([im_end, eot], eot, eot)
    assert cfg.get_text_config().eos_token_id == im_end
    assert [cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id] == (
        tok.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]))


def test_text_model_shape_is_qwens(loaded):
    _, _, processor, model = loaded
    text = model.config.get_text_config()
    assert text.vocab_size > len(processor.tokenizer)  # padded past the tokenizer, as 152064 > 151665
    assert model.get_output_embeddings().weight.shape[0] == text.vocab_size
    assert text.num_key_value_heads < text.num_attention_heads  # grouped KV heads
    attn = model.model.language_model.layers[0].self_attn
    assert attn.k_proj.out_features < attn.q_proj.out_features
    assert not model.config.tie_word_embeddings  # untied output head, as the 7B / 8B
    assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.get_input_embeddings().weight)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    assert 2 * sum(text.rope_parameters["mrope_section"]) == head_dim  # mRoPE covers every rotary pair


def test_vision_tower_is_qwens(loaded):
    family, _, processor, model = loaded
    vision = model.config.vision_config
    ip = processor.image_processor
    if family == "qwen2_5_vl":
        assert (ip.patch_size, ip.merge_size, vision.window_size) == (14, 2, 112)
        assert 0 < len(vision.fullatt_block_indexes) < vision.depth  # window attention in the other blocks
        assert set(vision.fullatt_block_indexes) < set(range(vision.depth))
    else:
        assert (ip.patch_size, ip.merge_size, ip.temporal_patch_size) == (16, 2, 2)
        assert set(vision.deepstack_visual_indexes) < set(range(vision.depth))
        assert len(model.model.visual.deepstack_merger_list) == len(vision.deepstack_visual_indexes)
    assert vision.patch_size == ip.patch_size and vision.spatial_merge_size == ip.merge_size


@pytest.mark.parametrize("size", [(56, 56), (224, 140)])  # one vision window; several (Qwen2.5-VL: 8 x 8 patches)
def test_forward_with_an_image(loaded, make_image, size):
    _, _, processor, model = loaded
    side = processor.image_processor.patch_size * processor.image_processor.merge_size
    text = processor.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[make_image(*size)], return_tensors="pt",
                       images_kwargs={"size": {"shortest_edge": (2 * side) ** 2, "longest_edge": (8 * side) ** 2}})
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[-1] == model.config.get_text_config().vocab_size and torch.isfinite(logits).all()
    n_image_tokens = inputs["image_grid_thw"].prod() // processor.image_processor.merge_size**2
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == n_image_tokens


def test_same_seed_same_bytes(tmp_path, qwen25_standin):
    again = write_standin(tmp_path / "again", "qwen2_5_vl", seed=0)
    other = write_standin(tmp_path / "other", "qwen2_5_vl", seed=1)
    for f in qwen25_standin.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
        same = (other / f.name).read_bytes() == f.read_bytes()
        assert same == (f.name != "model.safetensors"), f.name  # the seed changes the weights only


def test_real_configs_keep_the_real_sizes_and_ids():
    seven = Qwen2_5_VLConfig(**real_config("qwen2_5_vl", "7b"))
    assert (seven.text_config.vocab_size, seven.text_config.hidden_size, seven.image_token_id) == (152064, 3584, 151655)
    assert seven.vision_config.fullatt_block_indexes == [7, 15, 23, 31] and not seven.tie_word_embeddings
    three = Qwen2_5_VLConfig(**real_config("qwen2_5_vl", "3b"))
    assert (three.text_config.hidden_size, three.vision_config.out_hidden_size, three.tie_word_embeddings) == (
        2048, 2048, True)
    eight = Qwen3VLConfig(**real_config("qwen3_vl", "8b"))
    assert (eight.text_config.hidden_size, eight.vision_config.deepstack_visual_indexes) == (4096, [8, 16, 24])
    assert real_config("qwen3_vl", "4b")["vision_config"]["depth"] == 24
    assert real_config("qwen3_vl", "8b")["vision_config"]["depth"] == 27  # the 4B's changes did not leak
    with pytest.raises(ValueError, match="no real config"):
        real_config("qwen3_vl", "72b")
