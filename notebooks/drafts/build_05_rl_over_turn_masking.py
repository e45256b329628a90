"""Draft generator of notebooks/05_rl_over_turn_masking.ipynb (issue #8, in progress).

It writes the notebook without outputs; it moves to notebooks/ once the RL checkpoints it loads by
default (`modeling.shipped("rl")`, `shipped("rl_nomask")`) exist. Run: python build_05_rl_over_turn_masking.py
"""
import nbformat as nbf

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))
code = lambda s, tags=None: cells.append(nbf.v4.new_code_cell(s.strip(), metadata={"tags": tags} if tags else {}))

md(r"""
# 05 · RL with over-turn masking

**The paper's idea.** After the cold start, Mini-o3 trains with GRPO: for each question a group of
rollouts, reward 1 for a correct answer and 0 otherwise, advantages normalised within the group, a
clipped policy-gradient loss on the model's own tokens. Training runs with a small turn budget (6
turns) to keep rollouts affordable. That creates a problem: a search that is still going when the
budget runs out gets reward 0, exactly like a wrong answer, so plain GRPO teaches *"answer early"*,
and the model loses the long searches that hard questions need at test time.

**Over-turn masking** is Mini-o3's fix: a rollout that hit the turn (or context) limit while still
calling the tool is `exceeded`; its tokens get no gradient. In the official code it still counts in
its group's reward statistics (with reward 0), so it lowers the baseline its siblings are compared
with; a commented-out line would drop it from the statistics instead. The kit has all three
variants (`grpo.VARIANTS`) and compares masking on vs off here, same budget and seeds.

**Shipped or trained here.** One GRPO step on the tiny preset is about half a minute of CPU, so by
default (`train = False`) the notebook uses the two RL checkpoints the kit ships (made by
`grpo.ensure_rl` with these settings; their logs are plotted) and runs one step to show the loop.
`train = True` trains both variants here from the SFT checkpoint (cached in `runs/<preset>/rl*/`).
""")

code(r"""
preset = "tiny"
train = False  # True: train both RL variants here; False (tiny): the shipped checkpoints
steps = None  # GRPO steps per variant (tiny preset: 40)
prompts_per_step = None  # questions per step (tiny 8)
group_size = None  # rollouts per question (tiny 8)
lr = None  # learning rate (tiny preset value)
n_eval = None  # held-out test questions (tiny: the first 48 of 96, as in notebook 04)
eval_turns = None  # the larger test-time budget (preset: max_turns_eval)
""", ["parameters"])

code(r"""
%matplotlib inline
import json
import tempfile
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd
import torch

from mini_o3_lite import data, evaluate, grpo, modeling, scenes, sft, viz
from mini_o3_lite.presets import load_preset

cfg = load_preset(preset, **{"rl.steps": steps, "rl.prompts_per_step": prompts_per_step,
                             "rl.group_size": group_size, "rl.lr": lr})
small = preset == "tiny"
sft_dir = sft.sft_model(cfg, train)
data_dir, _ = scenes.ensure_dataset(cfg)
train_split = data.read_records(data_dir / "train.jsonl")
train_images = [r.load_image(data_dir) for r in train_split]
print("start policy:", sft_dir, "| training turn budget:", cfg.max_turns_train, "| rl:", cfg.rl)
""")

md(r"""
## The mask, drawn over one batch

Two questions, a group of rollouts each, from the SFT checkpoint at the training budget. Each row is a
trajectory's tokens: grey is what the environment wrote, green the model's tokens that carry loss,
red the model's tokens of exceeded rollouts, which over-turn masking leaves out. The table shows what
each variant does with the same rewards.
""")

code(r"""
model, processor = modeling.load(sft_dir, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
demo_cfg = replace(cfg, rl=replace(cfg.rl, prompts_per_step=2))
recs, ims = grpo.sample_groups(demo_cfg, train_split, train_images, step=0)
settings = grpo.rollout_config(demo_cfg, step=0)
batch = grpo.rollout(recs, ims, processor, grpo.model_policy(model, settings), settings)
rewards = torch.tensor([grpo.reward(t, r) for t, r in zip(batch, recs)])
exceeded = torch.tensor([t.exceeded for t in batch])
G = cfg.rl.group_size
rows = {"reward": rewards.tolist(), "turns": [t.turns for t in batch], "exceeded": exceeded.tolist()}
for name, (masking, drop) in grpo.VARIANTS.items():
    adv = torch.cat([grpo.group_advantages(rewards[g:g + G], exceeded[g:g + G], drop) for g in range(0, len(batch), G)])
    weight = grpo.trajectory_weights(exceeded, masking, drop)
    rows[f"{name}: advantage x weight"] = (adv * weight).round(decimals=2).tolist()
print(pd.DataFrame(rows, index=[t.id for t in batch]).to_string())
masked = grpo.trajectory_weights(exceeded, True, False)
viz.draw_batch_mask(batch, masked.tolist(), [f"{t.id} r={int(r)}{' exceeded' if e else ''}"
                                             for t, r, e in zip(batch, rewards, exceeded)]);
""")

md(r"""
## Training both variants

Same SFT start, same seeds, same budget; the only difference is the masking switch. With
`train = False` the curves are the shipped runs' logs and one step runs here to show the loop.
""")

code(r"""
logs = {}
for variant in ["rl", "rl_nomask"]:
    path = grpo.rl_model(cfg, variant, train)
    logs[variant] = pd.DataFrame(json.loads((path.parent / "rl_log.json" if train else path / "rl_log.json").read_text()))
if not train and small:
    one = replace(cfg, rl=replace(cfg.rl, steps=1, prompts_per_step=2, save_every=1))
    with tempfile.TemporaryDirectory() as tmp:
        step = grpo.train(one, sft_dir, tmp, train_split, train_images, progress=False)[0]
    print("one step here:", {k: step[k] for k in ["reward", "mean_turns", "exceeded", "masked_tokens", "clip_fraction",
                                                  "kl", "seconds", "peak_rss_mb"]})
summary = pd.DataFrame({v: log[["reward", "mean_turns", "exceeded", "masked_tokens", "seconds"]].tail(10).mean()
                        for v, log in logs.items()}).T.round(3)
print("mean of the last 10 steps:\n" + summary.to_string())
""")

code(r"""
fig, axes = plt.subplots(1, 4, figsize=(12, 2.6))
for variant, log in logs.items():
    smooth = log.rolling(5, min_periods=1).mean()
    for ax, key in zip(axes, ["reward", "mean_turns", "exceeded", "peak_rss_mb"]):
        ax.plot(log.step, smooth[key], label="masked" if variant == "rl" else "no masking")
        ax.set(title=key.replace("_", " "), xlabel="step")
axes[0].legend(fontsize=7)
plt.tight_layout()
""")

md(r"""
## Held-out: accuracy and turns at the training budget and a larger one

The question masking answers is what happens at test time, when the budget is larger than in
training. Every model is evaluated greedily on the held-out split at both budgets.
""")

code(r"""
n = n_eval or (48 if small else 500)
big = eval_turns or cfg.max_turns_eval
models = {"SFT": sft_dir, "RL masked": grpo.rl_model(cfg, "rl", train), "RL no masking": grpo.rl_model(cfg, "rl_nomask", train)}
results, protocol = {}, None
for name, path in models.items():
    for budget in (cfg.max_turns_train, big):
        key = f"{name.replace(' ', '_')}_{budget}turns"
        rows, manifest = evaluate.ensure_eval(cfg, path, key, n=n, config=evaluate.settings(cfg, budget), progress=False)
        results[(name, budget)] = rows
        protocol = manifest["config"]["protocol"]
table = pd.DataFrame([{"model": m, "budget": b, **s} for (m, b), rows in results.items() for s in evaluate.summary(rows)])
acc = table.pivot_table(index=["model", "budget"], columns="difficulty", values="accuracy")[["all", "easy", "medium", "hard"]]
print(acc.loc[list(models)].to_string())
print()
print(table[table.difficulty == "all"].set_index(["model", "budget"])[["mean_turns", "exceeded", "valid_actions"]]
      .loc[list(models)].to_string())
print("\nprotocol:", json.dumps({k: v for k, v in protocol.items() if k not in ("model", "max_turns", "model_hash")}))
""")

code(r"""
fig, ax = plt.subplots(figsize=(6, 2.6))
for name in models:
    turns = pd.Series([r["turns"] for r in results[(name, big)]]).value_counts().sort_index()
    ax.plot(turns.index, turns.values, marker="o", label=name)
ax.set(xlabel=f"turns used (budget {big})", ylabel="questions", title="how long each model searches at test time")
ax.legend(fontsize=7);
""")

md(r"""
## What you should see

FILL
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(nb, "05_rl_over_turn_masking.ipynb")
