"""What one GRPO step costs on the tiny preset, and how much of it the step's design saves.

One step samples `prompts_per_step x group_size` rollouts, then updates the policy. This script samples
one step's rollouts once (the shipped SFT agent, the RL preset's settings) and times the update two ways
on the same trajectories, in one process:

- baseline: the old policy's log-probs recomputed by a forward pass over every trajectory, the start
  policy's log-probs by another (for the KL diagnostic), and every trajectory run forward and backward,
  including those whose tokens carry no loss (exceeded under over-turn masking, or in a group whose
  rewards are all equal);
- the kit's step (`grpo.grpo_step`): the log-probs recorded while sampling as the old policy's, the start
  policy only when `kl_coef` > 0, and only trajectories with a gradient run forward and backward.

It prints the time of each part, tokens per trajectory (and how many are the model's), and the step's
cost ratio baseline / kit with the rollout time included in both.

    python benchmarks/grpo_step.py [--prompts 4] [--group 8]
"""

import argparse
import copy
import time

import torch

from mini_o3_lite import dataset, grpo, modeling
from mini_o3_lite.data import LazyImages, read_records
from mini_o3_lite.presets import load_preset


def update_time(model, optimizer, trajs, processor, adv, weight, rows, cfg, old_pass: bool, ref=None) -> float:
    """Seconds of the update passes over `rows` (plus the baseline's no-grad passes over every trajectory)."""
    batcher = grpo.Batcher(processor)
    started = time.time()
    if old_pass:
        with torch.no_grad():
            for lo in range(0, len(trajs), cfg.micro_batch_size):
                batch, mask = grpo.masked_batch(batcher, trajs[lo:lo + cfg.micro_batch_size], "cpu")
                grpo.token_logprobs(model, batch, mask, cfg.temperature)
                grpo.token_logprobs(ref, batch, mask, cfg.temperature)
    grpo.train_without_dropout(model)
    optimizer.zero_grad(set_to_none=True)
    for lo in range(0, len(rows), cfg.micro_batch_size):
        part = rows[lo:lo + cfg.micro_batch_size]
        batch, mask = grpo.masked_batch(batcher, [trajs[i] for i in part], "cpu")
        logp, _, tok_mask = grpo.token_logprobs(model, batch, mask, cfg.temperature)
        old = grpo.recorded_logprobs([trajs[i] for i in part], batch["input_ids"].shape[1], "cpu")
        loss, _ = grpo.grpo_loss(logp, old, adv[part], tok_mask, weight[part], cfg, float(tok_mask.sum()))
        loss.backward()
    optimizer.zero_grad(set_to_none=True)  # timing only: the weights stay the sampling policy's
    model.eval()
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4, help="questions per step (tiny preset: 4)")
    parser.add_argument("--group", type=int, default=8, help="rollouts per question (tiny preset: 8)")
    args = parser.parse_args()
    preset = load_preset("tiny", **{"rl.prompts_per_step": args.prompts, "rl.group_size": args.group})
    cfg, G = preset.rl, preset.rl.group_size
    data_dir, _ = dataset.ensure_dataset(preset, "train")
    records = read_records(data_dir / "train.jsonl")
    model, processor = modeling.load_for(preset, modeling.shipped("sft"))
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    modeling.freeze_vision(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)

    started = time.time()
    trajs, rewards, _ = grpo.sample_batch(model.eval(), processor, preset, records, LazyImages(records, data_dir), 0)
    rollout_s = time.time() - started
    exceeded = torch.tensor([t.exceeded for t in trajs])
    weight, in_stats = grpo.exceeded_handling(exceeded, cfg.exceeded)
    adv = torch.cat([grpo.group_advantages(rewards[g:g + G], in_stats[g:g + G]) for g in range(0, len(trajs), G)])
    informative = grpo.carries_signal(rewards, G)
    trained = [i for i in range(len(trajs)) if weight[i] * informative[i] > 0]

    baseline = update_time(model, optimizer, trajs, processor, adv, weight, list(range(len(trajs))), cfg, True, ref)
    kit = update_time(model, optimizer, trajs, processor, adv, weight, trained, cfg, False)
    tokens = [len(t.input_ids) for t in trajs]
    own = [sum(t.model_mask) for t in trajs]
    print(f"{len(trajs)} rollouts: {sum(tokens) / len(trajs):.0f} tokens per trajectory, "
          f"{sum(own) / len(trajs):.0f} of them the model's; {len(trained)} trajectories carry loss "
          f"({int(informative.sum()) // G} informative groups, {int(exceeded.sum())} exceeded)")
    print(f"rollout {rollout_s:.1f} s | update, baseline {baseline:.1f} s | update, kit {kit:.1f} s")
    print(f"step cost baseline / kit: {(rollout_s + baseline) / (rollout_s + kit):.2f}x "
          f"(update alone {baseline / max(kit, 1e-9):.2f}x)")


if __name__ == "__main__":
    main()
