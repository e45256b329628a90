"""Memory per GRPO step: does resident memory grow from step 10 to step 40? (goal: flat, under 5%)

Runs `grpo.train` for 40 steps on VisualProbe-lite training questions and prints each step's
resident set size (RSS, MiB; and GPU max allocated on a GPU), then the growth between step 10 and
step 40 as a ratio. Growth would mean a leak: references kept to old rollouts, images, graphs or
generation caches. By default the model is a freshly built toy Qwen2.5-VL (2 layers of 64: the loop's
own memory behaviour, in seconds); `--model` runs the same steps with any checkpoint. An untrained
toy never answers right, so without `--model` the reward is a stand-in that varies within each
group (parity of the token ids): every step then runs the full update, backward pass included.

    python benchmarks/memory.py [--model PATH] [--steps 40]
"""

import argparse
import copy
import dataclasses
import tempfile
from pathlib import Path

from mini_o3_lite import base_tasks, dataset, grpo, modeling
from mini_o3_lite.presets import load_preset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint directory (default: a toy model built here)")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    preset = load_preset("tiny", max_new_tokens=24,
                         rl={"max_turns": 3, "steps": args.steps, "prompts_per_step": 2, "group_size": 4,
                             "mini_batch_prompts": 1, "micro_batch_size": 4, "save_every": 10**6})
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            grpo.reward = lambda traj, record: float(sum(traj.input_ids) % 2)  # stand-in: see the docstring
            small = dataclasses.replace(preset.base, hidden=64, layers=2, vision_depth=2, vision_hidden=64)
            model, processor = modeling.build_tiny(base_tasks.corpus(preset, n=200), small, preset.min_pixels,
                                                   preset.max_pixels)
            init = modeling.save(copy.deepcopy(model), processor, Path(tmp) / "init")
        else:
            init = Path(args.model)
        records, images = dataset.make_split(preset.data, "train", preset.min_pixels, preset.max_pixels, n=16)
        history = grpo.train(preset, init, Path(tmp) / "rl", records, [images[r.id] for r in records],
                             progress=False, log=lambda *_: None)
    for h in history:
        gpu = f", GPU max allocated {h['gpu_max_allocated_mb']} MiB" if "gpu_max_allocated_mb" in h else ""
        print(f"step {h['step']:3d}: RSS {h['rss_mb']} MiB, peak {h['peak_rss_mb']} MiB{gpu}")
    updated = sum(h["informative_groups"] > 0 for h in history)
    print(f"\n{updated} of {len(history)} steps ran an update (backward pass and optimizer step)")
    first, last = history[min(9, len(history) - 1)], history[-1]
    growth = last["rss_mb"] / first["rss_mb"] - 1
    print(f"\nRSS growth from step {first['step']} to step {last['step']}: {growth:+.2%} "
          f"({first['rss_mb']} -> {last['rss_mb']} MiB; goal: under 5%)")


if __name__ == "__main__":
    main()
