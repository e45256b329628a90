"""GPU memory of the `full` preset on one GPU, estimated (and measured with `--measure`): Qwen2.5-VL-3B/7B, LoRA.

The README's first GPU table comes from this arithmetic, labelled as an estimate; its second from
`--measure`, run once on an H200 (the estimate was 3-16 GB low). What is exact: the parameter counts
(the real 3B / 7B configurations instantiated on PyTorch's `meta` device, so nothing is allocated)
and the LoRA parameter count (PEFT on that meta model, the kit's `modeling.lora_config`). What is
arithmetic: activations under gradient checkpointing (the input of every decoder layer kept, one
layer recomputed at a time, fp32 logits of the whole sequence), AdamW state for the LoRA weights only,
and the rollout key/value cache (2 x layers x KV heads x head dim x bf16 per token). Allocator
overhead, fragmentation and the CUDA context (~1-2 GB) come on top.

    python benchmarks/full_preset_memory.py [--tokens 8192 32768] [--rollouts 32] [--measure]

`--measure` (on a CUDA machine) also runs one real LoRA SFT step per size and prints its peak memory.
"""

import argparse

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from mini_o3_lite.modeling import lora_config
from mini_o3_lite.presets import load_preset

VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
              spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31])
CONFIGS = {  # the released checkpoints' config.json values
    "3B": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, out_hidden_size=2048),
    "7B": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, out_hidden_size=3584),
}
GB = 1e9


def build(size: str, device: str = "meta", dtype: torch.dtype | None = None):
    """The released configuration, instantiated on `device` (meta: shapes only, nothing allocated)."""
    spec = dict(CONFIGS[size])
    vision = dict(VISION, out_hidden_size=spec.pop("out_hidden_size"))
    tie = spec.pop("tie_word_embeddings")
    config = Qwen2_5_VLConfig(text_config=spec, vision_config=vision, tie_word_embeddings=tie)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype or config.dtype)
    return model, config.text_config


def estimate(size: str, tokens: int, rollouts: int, rank: int) -> dict:
    from peft import get_peft_model

    model, text = build(size)
    params = sum(p.numel() for p in model.parameters())
    lora = get_peft_model(model, lora_config(rank))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    h, layers, vocab = text.hidden_size, text.num_hidden_layers, text.vocab_size
    head_dim = h // text.num_attention_heads
    weights = 2 * params  # bf16
    optimizer = trainable * (2 + 2 + 8)  # LoRA weight and gradient (bf16), AdamW's two fp32 moments
    checkpointed = layers * tokens * h * 2  # each decoder layer's input, bf16
    one_layer = tokens * (6 * h + 3 * text.intermediate_size) * 2  # a recomputed layer's activations, bf16
    logits = tokens * vocab * 4 * 2  # fp32 logits and their log-softmax
    kv_per_token = 2 * layers * text.num_key_value_heads * head_dim * 2
    return {
        "model": f"Qwen2.5-VL-{size}", "params (B)": round(params / 1e9, 2),
        f"LoRA r={rank} (M)": round(trainable / 1e6, 1),
        "weights bf16": round(weights / GB, 1),
        f"SFT step, {tokens:,} tokens": round((weights + optimizer + checkpointed + one_layer + logits) / GB, 1),
        f"KV cache, {rollouts} rollouts x {tokens:,}": round(kv_per_token * tokens * rollouts / GB, 1),
        "KV per token (KB)": round(kv_per_token / 1e3, 1),
    }


def measure(size: str, tokens: int, rank: int) -> dict:
    """Peak memory of one real SFT step: random bf16 weights, LoRA, checkpointing, `tokens` text tokens.

    Random weights cost the same memory as the released ones; images are left out (their vision-tower
    activations are not kept: the tower is frozen), so the sequence is text tokens only.
    """
    import time

    from peft import get_peft_model

    model, text = build(size, "cuda", torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, lora_config(rank))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, text.vocab_size, (1, tokens), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / GB
    return {"model": f"Qwen2.5-VL-{size}", "tokens": tokens, "measured peak (GB)": round(peak, 1),
            "step (s)": round(time.perf_counter() - start, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, nargs="+", default=[8192, 32768], help="sequence lengths")
    p.add_argument("--rollouts", type=int, default=None, help="rollouts generated together (full preset's batch)")
    p.add_argument("--measure", action="store_true", help="also run one real LoRA step per size on the GPU")
    args = p.parse_args()
    if args.measure and not torch.cuda.is_available():
        p.error("--measure runs a real step on the GPU, and this machine has no CUDA device")
    preset = load_preset("full")
    rollouts = args.rollouts or preset.rollout_batch_size
    print("ESTIMATE (arithmetic on exact parameter counts; not measured on a GPU), GB = 1e9 bytes\n")
    for tokens in args.tokens:
        rows = [estimate(size, tokens, rollouts, preset.sft.lora_rank) for size in CONFIGS]
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + " --- |" * len(keys))
        for row in rows:
            print("| " + " | ".join(str(row[k]) for k in keys) + " |")
        print()
    if args.measure:
        print(f"MEASURED on {torch.cuda.get_device_name(0)}: one SFT step (forward, backward, AdamW), LoRA r="
              f"{preset.sft.lora_rank}, bf16, checkpointing, text tokens only; torch.cuda.max_memory_allocated\n")
        for tokens in args.tokens:
            for size in CONFIGS:
                print(measure(size, tokens, preset.sft.lora_rank), flush=True)
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
