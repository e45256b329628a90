"""Multi-turn GRPO with over-turn masking: Mini-o3's RL stage, readable top to bottom.

Written by hand because TRL's `GRPOTrainer` cannot yet run a tool that returns *new images* over
many turns inside one rollout; the rollout is `rollout.py` (the same loop as evaluation), and the
rest is a CleanRL-style loop. One step:

1. sample `prompts_per_step` training questions; roll out `group_size` trajectories for each at the
   training turn limit, sampling at `temperature`;
2. reward = answer accuracy (0 or 1), Mini-o3's reward (format weight 0, no tool-call penalty);
3. advantage of each trajectory = (reward - group mean) / (group std + 1e-6), shared by its tokens;
4. loss only on tokens the model produced (never prompt, observation or error turns): the clipped
   policy-gradient surrogate with Mini-o3's asymmetric clip range (0.2 low, 0.3 high), averaged over
   tokens ("token-mean"), no KL term unless `kl_coef` > 0, no entropy bonus unless `entropy_coef` > 0;
5. **over-turn masking**: trajectories that were `exceeded` (still calling the tool at the turn,
   image or context limit) get no gradient but keep their reward 0 in the group statistics, as in
   Mini-o3's code (`rl.exceeded = "mask"`, the variant `rl`). "keep" (`rl_nomask`) lets them teach
   "answer sooner" like any failure; "drop" (`rl_drop`) also removes them from the group mean and std.

Steps 3-5 are `grpo_loss` and the two functions above it, on one screen.

Groups whose rewards are all equal carry no signal (advantage 0) and are left out of the loss. Mini-o3
drops them and refills the batch with new groups (dynamic sampling); `refill` > 0 does the same, with at
most that many extra rounds of fresh prompts a step (each round costs a round of rollouts).
Each step's rollouts are updated in `prompts_per_step / mini_batch_prompts` mini-batches, so after the
first the policy is slightly off the sampling one: that is what the ratio and its clipping handle.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import memory, modeling, scoring
from .checkpoint import recover_checkpoint, save_checkpoint
from .data import LazyImages, read_records
from .dataset import ensure_dataset
from .manifest import cached_stage, portable, stage_dir
from .modeling import freeze_vision, load_for, lora_config, save
from .presets import VARIANTS, Preset
from .rollout import Batcher, RolloutConfig, model_policy, rollout
from .sft import ensure_sft
from .trajectory import Trajectory

# ----------------------------------------------------------------------------------------------
# The objective (one screen)
# ----------------------------------------------------------------------------------------------


def reward(traj: Trajectory, record) -> float:
    """Mini-o3's reward: 1 for a correct answer, else 0 (no format term, no tool-call penalty)."""
    return float(scoring.score(traj.answer, record.answer, record.choices))


def exceeded_handling(exceeded: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, in_stats) per trajectory for `RLConfig.exceeded`: which trajectories carry loss, and which
    count in their group's mean and std. "mask" (over-turn masking): exceeded ones carry no loss but stay in
    the statistics with reward 0; "keep": they are failures like any other; "drop": out of both."""
    if mode not in ("mask", "keep", "drop"):
        raise ValueError(f"rl.exceeded must be 'mask', 'keep' or 'drop', not {mode!r}")
    everyone = torch.ones_like(exceeded)
    weight = everyone if mode == "keep" else ~exceeded
    return weight.float(), (~exceeded if mode == "drop" else everyone)


def group_advantages(rewards: torch.Tensor, in_stats: torch.Tensor) -> torch.Tensor:
    """GRPO advantages for one group: rewards normalised by the mean and std of the `in_stats` ones."""
    if in_stats.sum() < 2:  # no group to compare with
        return torch.zeros_like(rewards)
    mean, std = rewards[in_stats].mean(), rewards[in_stats].std()
    return (rewards - mean) / (std + 1e-6)


def carries_signal(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """1 for each trajectory of a group whose rewards differ (the only groups with a gradient), else 0."""
    groups = rewards.view(-1, group_size)
    return (groups.max(1).values > groups.min(1).values).float().repeat_interleave(group_size)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, model_mask: torch.Tensor,
              weight: torch.Tensor, cfg, n_tokens: float, entropy: torch.Tensor | None = None,
              start_logp: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The whole objective of a micro-batch. logp, old_logp, model_mask, entropy, start_logp: (batch, tokens);
    advantages, weight: (batch,). `cfg` is the `RLConfig`; `n_tokens` the update's model-token count.

    1. mask: the tokens the model wrote x the trajectory's weight (0 when exceeded under masking, or in a
       group whose rewards are all equal);
    2. the clipped surrogate with Mini-o3's asymmetric range: min(r A, clip(r, 1 - low, 1 + high) A);
    3. optional KL to the start policy (k3 estimator) and entropy bonus (Mini-o3: both 0);
    4. token-mean normalisation: every term is summed over masked tokens and divided by `n_tokens`.
    Returns the loss and the sums the step logs (clipped tokens, trained tokens, KL).
    """
    mask = model_mask * weight[:, None]
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    unclipped, clipped = ratio * adv, ratio.clamp(1 - cfg.clip_low, 1 + cfg.clip_high) * adv
    loss = -(torch.min(unclipped, clipped) * mask).sum() / max(n_tokens, 1.0)
    stats = {"clipped": float(((clipped < unclipped).float() * mask).sum()), "tokens": float(mask.sum())}
    if cfg.kl_coef:
        log_ratio = start_logp - logp
        kl = torch.exp(log_ratio) - log_ratio - 1  # KL(policy || start policy), k3 estimator
        loss = loss + cfg.kl_coef * (kl * mask).sum() / max(n_tokens, 1.0)
        stats["kl"] = float((kl.detach() * model_mask).sum())
    if cfg.entropy_coef:
        loss = loss - cfg.entropy_coef * (entropy * mask).sum() / max(n_tokens, 1.0)
    return loss, stats


def token_logprobs(model, batch: dict, model_mask: torch.Tensor, temperature: float):
    """Log-probabilities and entropies of each next token under the sampling distribution, with its mask.

    The sampling distribution is the model's at `temperature` with the vision tokens suppressed (the rollout
    never samples them), so these log-probs and the ones recorded while sampling are the same function.
    """
    logits = model(**batch).logits[:, :-1].float() / temperature
    config = modeling.core(model).config
    vision = [config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id]
    logits[..., vision] = -1e9  # probability 0, but a finite log-prob where a prompt's image token is the target
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy, model_mask[:, 1:].float()


def reference_logprobs(model, ref, batch: dict, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-probs under the start policy: a frozen copy, or the LoRA model with its adapters switched off."""
    if ref is not None:
        return token_logprobs(ref, batch, mask, temperature)[0]
    with model.disable_adapter():
        return token_logprobs(model, batch, mask, temperature)[0]


# ----------------------------------------------------------------------------------------------
# One step: rollouts, rewards, advantages, updates
# ----------------------------------------------------------------------------------------------


def rollout_config(preset: Preset, step: int, round_: int = 0) -> RolloutConfig:
    """Sampling settings of a step's rollouts (`round_`: a refill round, with its own seed)."""
    turns = preset.rl.max_turns or preset.max_turns_train
    return RolloutConfig.for_preset(preset, turns, max_images=2 * turns,  # Mini-o3: 6 turns, 12 images
                                    temperature=preset.rl.temperature, batch_size=preset.rollout_batch_size,
                                    seed=preset.seed * 100_003 + step + 1_000_003 * round_)


def sample_groups(preset: Preset, records, images, step: int, round_: int = 0):
    """This step's prompts (seeded by step, so a resumed run draws the same ones), each `group_size` times.

    `round_` > 0 draws the prompts of a refill round (dynamic sampling), from its own seed.
    """
    rng = random.Random(f"grpo/{preset.seed}/{step}" + (f"/refill{round_}" if round_ else ""))
    picked = rng.sample(range(len(records)), min(preset.rl.prompts_per_step, len(records)))
    G = preset.rl.group_size
    recs = [replace(records[i], id=f"{records[i].id}#{k}") for i in picked for k in range(G)]
    return recs, [images[i] for i in picked for _ in range(G)]


def sample_batch(model, processor, preset: Preset, records, images, step: int):
    """Roll out this step's groups; with `rl.refill`, replace all-equal groups by fresh ones (dynamic sampling).

    Returns the trajectories of `prompts_per_step` groups (informative ones first) with their rewards, and
    every rollout sampled this step as (trajectory, reward): the logged reward, turns and exceeded ratio are
    the policy's own, over all of them.
    """
    cfg, G = preset.rl, preset.rl.group_size
    informative, flat, every = [], [], []  # groups as (trajectories, rewards)
    for round_ in range(1 + cfg.refill):
        recs, ims = sample_groups(preset, records, images, step, round_)
        settings = rollout_config(preset, step, round_)
        trajs = rollout(recs, ims, processor, model_policy(model, settings), settings)
        rewards = torch.tensor([reward(t, r) for t, r in zip(trajs, recs, strict=True)])
        every += list(zip(trajs, rewards.tolist(), strict=True))
        signal = carries_signal(rewards, G)
        for g in range(0, len(trajs), G):
            (informative if signal[g] else flat).append((trajs[g:g + G], rewards[g:g + G]))
        if len(informative) >= cfg.prompts_per_step:
            break
    kept = (informative + flat)[:cfg.prompts_per_step]
    return [t for ts, _ in kept for t in ts], torch.cat([r for _, r in kept]), every


def masked_batch(batcher: Batcher, trajs: list[Trajectory], device) -> tuple[dict, torch.Tensor]:
    """Model inputs for finished trajectories and their left-padded model-token mask."""
    batch = {k: v.to(device) for k, v in batcher.batch(trajs).items()}
    width = batch["input_ids"].shape[1]
    mask = torch.zeros(len(trajs), width, device=device)
    for row, t in enumerate(trajs):
        mask[row, width - len(t.model_mask):] = torch.tensor(t.model_mask, dtype=torch.float)
    return batch, mask


def recorded_logprobs(trajs: list[Trajectory], width: int, device) -> torch.Tensor:
    """The log-probs recorded while sampling, laid out as `token_logprobs` returns them for `masked_batch`:
    left-padded to `width` tokens, shifted by one (entry j is the log-prob of token j + 1)."""
    old = torch.zeros(len(trajs), width - 1, device=device)
    for row, t in enumerate(trajs):
        old[row, width - len(t.logprobs):] = torch.tensor(t.logprobs[1:], dtype=torch.float)
    return old


def grpo_step(model, ref, processor, optimizer, preset: Preset, records, images, step: int) -> dict:
    cfg, device, G = preset.rl, model.device, preset.rl.group_size
    model.eval()
    started = time.time()
    trajs, rewards, sampled = sample_batch(model, processor, preset, records, images, step)
    rollout_s = time.time() - started
    weight, in_stats = exceeded_handling(torch.tensor([t.exceeded for t in trajs]), cfg.exceeded)
    adv = torch.cat([group_advantages(rewards[g:g + G], in_stats[g:g + G]) for g in range(0, len(trajs), G)])
    informative = carries_signal(rewards, G)
    weight = weight * informative
    batcher = Batcher(processor)
    # only trajectories whose tokens carry loss are run through the model: the others have no gradient, and their
    # forward and backward passes would cost the same
    per_update = cfg.mini_batch_prompts * G
    updates = [[i for i in range(lo, min(lo + per_update, len(trajs))) if weight[i] > 0]
               for lo in range(0, len(trajs), per_update)]
    parts = [[u[k:k + cfg.micro_batch_size] for k in range(0, len(u), cfg.micro_batch_size)] for u in updates if u]

    stats = {"loss": 0.0, "clipped": 0.0, "tokens": 0.0, "entropy": 0.0, "kl": 0.0, "model_tokens": 0.0}
    train_without_dropout(model)
    for micro in parts:
        n_tokens = sum(trajs[i].model_mask.count(1) for p in micro for i in p)
        optimizer.zero_grad(set_to_none=True)
        for part in micro:
            batch, mask = masked_batch(batcher, [trajs[i] for i in part], device)
            # the old policy's log-probs are the ones recorded while sampling (`rollout.ChosenLogprobs`): no second
            # forward pass; the first update's ratio is 1 up to the turn cache's rounding
            old = recorded_logprobs([trajs[i] for i in part], batch["input_ids"].shape[1], device)
            logp, entropy, tok_mask = token_logprobs(model, batch, mask, cfg.temperature)
            start = None
            if cfg.kl_coef:  # the start policy costs its own forward pass; Mini-o3 trains without KL
                with torch.no_grad():
                    start = reference_logprobs(model, ref, batch, mask, cfg.temperature)
            loss, part_stats = grpo_loss(logp, old, adv[part].to(device), tok_mask, weight[part].to(device), cfg,
                                         n_tokens, entropy, start)
            loss.backward()
            stats["loss"] += float(loss.detach()) / len(parts)
            stats["model_tokens"] += float(tok_mask.sum())
            stats["entropy"] += float((entropy.detach() * tok_mask).sum())
            for key in ("clipped", "tokens", "kl"):
                stats[key] += part_stats.get(key, 0.0)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
    all_tokens = max(sum(sum(t.model_mask) for t in trajs), 1)  # model tokens of every trajectory
    trained_tokens = max(stats["model_tokens"], 1.0)
    return {
        # reward (= accuracy, Mini-o3's reward), turns, exceeded: over every rollout sampled this step
        "step": step + 1, "reward": round(sum(r for _, r in sampled) / len(sampled), 4),
        "mean_turns": round(sum(t.turns for t, _ in sampled) / len(sampled), 3),
        "exceeded": round(sum(t.exceeded for t, _ in sampled) / len(sampled), 4), "rollouts": len(sampled),
        "masked_tokens": round(1 - stats["tokens"] / all_tokens, 4),  # model tokens without gradient: exceeded
        # (over-turn masking) or in a group whose rewards are all equal
        "clip_fraction": round(stats["clipped"] / max(stats["tokens"], 1.0), 4),
        # entropy and KL to the start policy: over the trained trajectories' tokens (KL only when kl_coef > 0)
        "entropy": round(stats["entropy"] / trained_tokens, 4),
        "kl": round(stats["kl"] / trained_tokens, 5) if cfg.kl_coef else None,
        "loss": round(stats["loss"], 5), "informative_groups": int(informative.sum()) // G,
        "rollout_seconds": round(rollout_s, 1), "seconds": round(time.time() - started, 1), **memory.snapshot(),
    }


# ----------------------------------------------------------------------------------------------
# The run: model, optimizer, checkpoints and resume
# ----------------------------------------------------------------------------------------------


def train_without_dropout(model) -> None:
    """Training mode (gradient checkpointing runs only in it) with every dropout off.

    The old log-probs are computed in eval mode; LoRA's dropout (or any other) left on in the update would
    put its noise into the importance ratio, so a ratio of 1 would not mean "same policy".
    """
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()


def prepare(preset: Preset, init: str | Path, ckpt: Path):
    """Policy (resumed from `ckpt` when it holds a checkpoint), start policy, saved trainer state.

    Tiny: the language model is fine-tuned fully and the start policy is a frozen copy of `init`.
    Full: LoRA adapters (PEFT) on `init`; the checkpoint holds the adapters, and the start policy is
    the same model with its adapters switched off.
    """
    resume = (ckpt / "trainer_state.pt").exists()
    state = torch.load(ckpt / "trainer_state.pt", weights_only=False) if resume else {"step": 0, "history": []}
    checkpointing = {"activation_checkpointing_kwargs": {"use_reentrant": False}}
    if preset.sft.lora:
        from peft import PeftModel, get_peft_model  # deferred: only the LoRA (full) preset needs PEFT

        model, processor = load_for(preset, init)
        freeze_vision(model)
        if preset.gradient_checkpointing:  # before PEFT wraps it: the body's layers are checkpointed
            model.activation_checkpointing_enable(**checkpointing)
        model = PeftModel.from_pretrained(model, ckpt, is_trainable=True) if resume \
            else get_peft_model(model, lora_config(preset.sft.lora_rank))
        return model, None, processor, state
    model, processor = load_for(preset, ckpt if resume else init)
    freeze_vision(model)
    if preset.gradient_checkpointing:
        model.activation_checkpointing_enable(**checkpointing)
    ref = load_for(preset, init)[0].eval().requires_grad_(False)
    return model, ref, processor, state


def train(preset: Preset, init: str | Path, out: str | Path, records, images, progress: bool = True,
          until: int | None = None, log=print) -> list[dict]:
    """GRPO from checkpoint `init` into `out` (resuming from `out/checkpoint`); returns the per-step log.

    `records`/`images`: the training split. `until` stops after that step, as an interrupt would.
    """
    out = Path(out)
    ckpt = out / "checkpoint"
    recover_checkpoint(ckpt)
    torch.manual_seed(preset.seed)
    model, ref, processor, state = prepare(preset, init, ckpt)
    if state["step"]:
        log(f"resuming from {ckpt} at step {state['step']}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=preset.rl.lr, weight_decay=0.0)  # a constant rate, as in Mini-o3
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    history: list[dict] = state["history"]
    last = min(preset.rl.steps, until or preset.rl.steps)
    bar = tqdm(range(state["step"], last), initial=state["step"], total=preset.rl.steps, disable=not progress,
               desc="grpo")
    for step in bar:
        memory.reset_peak()
        history.append(grpo_step(model, ref, processor, optimizer, preset, records, images, step))
        bar.set_postfix(reward=history[-1]["reward"], turns=history[-1]["mean_turns"],
                        exceeded=history[-1]["exceeded"])
        if (step + 1) % preset.rl.save_every == 0 or step + 1 == last:
            save_checkpoint(model, processor, optimizer, None, {"step": step + 1, "history": history}, ckpt)
    (out / "rl_log.json").write_text(json.dumps(history, indent=1))
    if last == preset.rl.steps:  # the trained policy as a plain transformers directory (LoRA merged)
        save(model.merge_and_unload() if hasattr(model, "merge_and_unload") else model, processor, out / "model")
    return history


def ensure_rl(preset: Preset, variant: str = "rl", init: str | Path | None = None, progress: bool = True):
    """`runs/<preset>/<variant>/`: GRPO from the SFT checkpoint (built if missing), once per config.

    Returns (folder, manifest); the trained policy is `folder / "model"`, the per-step log
    `folder / "rl_log.json"`. An interrupted run resumes from its checkpoint.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown RL variant {variant!r}; choose one of {sorted(VARIANTS)}")
    preset = replace(preset, rl=replace(preset.rl, exceeded=VARIANTS[variant]))  # the variant is the switch
    sft_dir, sft = ensure_sft(preset) if init is None else (Path(init), {"config_hash": portable(init)})
    data_dir, data = ensure_dataset(preset, "train")

    def build(folder):
        records = read_records(data_dir / "train.jsonl")
        images = LazyImages(records, data_dir)
        history = train(preset, sft_dir, folder, records, images, progress=progress)
        last = history[-5:]
        return {"steps": len(history), "seconds": round(sum(h["seconds"] for h in history), 1),
                "reward_last5": round(sum(h["reward"] for h in last) / len(last), 4),
                "turns_last5": round(sum(h["mean_turns"] for h in last) / len(last), 3)}

    config = {"rl": asdict(preset.rl), "max_turns": rollout_config(preset, 0).max_turns, "seed": preset.seed}
    folder = stage_dir(preset.name, variant)
    return folder, cached_stage(folder, config, build, {"sft": sft["config_hash"], "data": data["config_hash"]},
                                preset.seed)
