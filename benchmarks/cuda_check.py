"""The kit's CUDA code paths on the tiny preset: greedy evaluation, TRL SFT and GRPO, each with and without LoRA.

A smoke check for a GPU machine (the README records its one run, on an H200): it prints what each
path gives and writes `cuda_check.json` to the folder given (default: the current one). Without a
GPU it says so and exits, so `make bench` still runs on a CPU machine.

    python benchmarks/cuda_check.py [OUT]
"""

import json
import sys
import time
from pathlib import Path

import torch

from mini_o3_lite import evaluate, grpo, scenes, sft
from mini_o3_lite.data import LazyImages, read_records
from mini_o3_lite.modeling import load, load_processor, shipped
from mini_o3_lite.presets import load_preset
from mini_o3_lite.teacher import TeacherConfig, scripted_trajectories


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}

    def report(key: str, value) -> None:
        results[key] = value
        print(key, json.dumps(value), flush=True)
        (out / "cuda_check.json").write_text(json.dumps(results, indent=1))

    preset = load_preset("tiny", device="cuda")
    data_dir, _ = scenes.ensure_dataset(preset)
    test, train = read_records(data_dir / "test.jsonl")[:48], read_records(data_dir / "train.jsonl")
    start = time.time()
    model, processor = load(shipped("sft"), device="cuda", dtype=preset.dtype)
    rows = evaluate.run(model, processor, test, LazyImages(test, data_dir), evaluate.settings(preset))
    report("eval_sft_48", {"accuracy": evaluate.accuracy(rows), "turns": sum(r["turns"] for r in rows) / len(rows),
                           "seconds": round(time.time() - start, 1)})
    del model
    for lora in (True, False):
        cfg = load_preset("tiny", device="cuda", **{"sft.lora": lora, "sft.epochs": 1.0})
        trajs, _, _ = scripted_trajectories(train[:16], LazyImages(train[:16], data_dir),
                                            load_processor(shipped("base")), cfg, TeacherConfig(), 16)
        start = time.time()
        summary = sft.train_sft(cfg, trajs, out / f"sft_lora_{lora}", shipped("base"))
        report(f"sft_lora_{lora}", {"steps": summary["steps"], "loss": summary["train_loss"],
                                    "seconds": round(time.time() - start, 1)})
    for lora in (False, True):
        cfg = load_preset("tiny", device="cuda", **{"sft.lora": lora, "rl.steps": 2, "rl.prompts_per_step": 2,
                                                    "rl.group_size": 4, "rl.save_every": 1})
        start = time.time()
        history = grpo.train(cfg, shipped("sft"), out / f"rl_lora_{lora}", train, LazyImages(train, data_dir),
                             progress=False)
        report(f"grpo_lora_{lora}", {"steps": len(history), "last": history[-1],
                                     "seconds": round(time.time() - start, 1)})


if __name__ == "__main__":
    if not torch.cuda.is_available():
        print("no GPU here: nothing to check")
        sys.exit(0)
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
