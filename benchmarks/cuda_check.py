"""The `full` preset on one GPU, measured: a randomly initialised Qwen2.5-VL of the real 7B (and 3B) size.

For each size it writes a checkpoint with the real file layout and the real layers and widths
(`standin.write_standin(size=...)`, random bf16 weights: they take the memory and time the released
ones do), then runs the kit's own functions on the `full` preset (LoRA, bf16, gradient checkpointing,
Mini-o3's pixel budget on 4096-px scenes):

1. one rollout batch (`rollout_batch_size` conversations, `model_policy`, sampling at T = 1.0);
2. one SFT step (`sft.train_sft`, TRL, on scripted-teacher trajectories);
3. one GRPO step (`grpo.train`, LoRA, a group per question).

It prints and writes (`cuda_check.json` in OUT) the peak GPU memory (`torch.cuda.max_memory_allocated`),
wall time and tokens per second of each. A random model samples nonsense, so its turns run to
`max_new_tokens` and end as invalid: the rollout numbers are one long turn per conversation, the worst
case of a turn. `--size tiny` runs the same steps on a small stand-in, on the CPU if there is no GPU
(a check that the script runs, not a measurement).

    python benchmarks/cuda_check.py [--sizes 7b 3b] [--rollouts 32] [OUT]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from mini_o3_lite import dataset, grpo, modeling, sft, standin
from mini_o3_lite.data import LazyImages, read_records
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import RolloutConfig, model_policy, rollout
from mini_o3_lite.teacher import TeacherConfig, scripted_trajectories


def peak_gb() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def reset() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def check(size: str, rollouts: int, work: Path, report) -> None:
    path = standin.write_standin(work / size, "qwen2_5_vl", size=size)
    small = {} if size != "tiny" else {"data.canvas": 1024, "max_pixels": 200_704, "max_new_tokens": 64}
    preset = load_preset("full", model_path=str(path), rollout_batch_size=rollouts,
                         **{"data.n_train": 16, "data.n_test": 4, "rl.steps": 1, "rl.prompts_per_step": 2,
                            "rl.group_size": 4, "rl.mini_batch_prompts": 2, **small})
    data_dir, _ = dataset.ensure_dataset(preset)
    train = read_records(data_dir / "train.jsonl")
    images = LazyImages(train, data_dir)

    reset()
    model, processor = modeling.load_for(preset)
    config = RolloutConfig(max_turns=1, max_new_tokens=preset.max_new_tokens, context_length=preset.context_length,
                           batch_size=rollouts)
    started = time.time()
    batch = (train * (rollouts // len(train) + 1))[:rollouts]
    trajs = rollout(batch, [images[train.index(r)] for r in batch], processor, model_policy(model, config), config)
    seconds = time.time() - started
    generated = sum(sum(t.model_mask) for t in trajs)
    report(f"{size}/rollout", {"rows": rollouts, "tokens": sum(len(t.input_ids) for t in trajs),
                               "generated": generated, "seconds": round(seconds, 1),
                               "generated_per_s": round(generated / seconds, 1), "peak_gb": peak_gb()})
    del model
    reset()

    trajectories, _, stats = scripted_trajectories(train, images, processor, preset, TeacherConfig(direct=1.0),
                                                   preset.max_turns_train)
    started = time.time()
    summary = sft.train_sft(preset, trajectories[:4], work / f"{size}-sft", path, max_steps=2, save_strategy="no",
                            logging_steps=1, disable_tqdm=True)
    report(f"{size}/sft", {"steps": summary["steps"], "teacher_kept": stats["kept"], "loss": summary["train_loss"],
                           "seconds_per_step": round((time.time() - started) / summary["steps"], 1),
                           "peak_gb": peak_gb()})
    reset()

    started = time.time()
    history = grpo.train(preset, path, work / f"{size}-rl", train, images, progress=False)
    report(f"{size}/grpo", {"rollouts": history[-1]["rollouts"], "seconds": round(time.time() - started, 1),
                            "rollout_seconds": history[-1]["rollout_seconds"], "peak_gb": peak_gb()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default=".", help="folder for cuda_check.json")
    parser.add_argument("--sizes", nargs="+", default=["7b", "3b"], help="7b, 3b (real sizes) or tiny")
    parser.add_argument("--rollouts", type=int, default=32, help="conversations in the rollout batch")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "torch": torch.__version__}
    if results["gpu"] is None and args.sizes != ["tiny"]:
        print("no GPU here: real sizes need one (--sizes tiny checks the script on the CPU)")
        return

    def report(key: str, value) -> None:
        results[key] = value
        print(key, json.dumps(value), flush=True)
        (out / "cuda_check.json").write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes:
            check(size, args.rollouts, Path(work), report)


if __name__ == "__main__":
    main()
