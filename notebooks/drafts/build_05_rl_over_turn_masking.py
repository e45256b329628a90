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

**Shipped or trained here.** One GRPO step on the tiny preset takes about a minute of CPU, so by
default (`train = False`) the notebook uses the two RL checkpoints the kit ships (made by
`grpo.ensure_rl` with these settings; their logs are plotted) and runs one small step to show the
loop. `train = True` trains both variants here from the SFT checkpoint (cached in `runs/<preset>/rl*/`).

**Where the kit differs.** Mini-o3 trains with a 6-turn budget. The tiny preset's RL budget is 10
turns (`rl.max_turns`): the tiny SFT agent searches tiles one by one and needs 9.4 turns on average,
and only 10% of its greedy searches end with a right answer within 6 turns (notebook 04's run), so
at 6 turns almost every group would be all zeros and RL would have nothing to learn from. A first
run at 6 turns is in the "what you should see" note.
""")

code(r"""
preset = "tiny"
train = False  # True: train both RL variants here; False (tiny): the shipped checkpoints
steps = None  # GRPO steps per variant (tiny 20, full 200)
prompts_per_step = None  # questions per step (tiny 4)
group_size = None  # rollouts per question (tiny 8)
lr = None  # learning rate (tiny 5e-5, full 1e-6)
rl_turns = None  # turn budget of RL rollouts (tiny 10, full 6)
n_eval = None  # held-out test questions (tiny: the first 48 of 96, as in notebook 04)
eval_turns = None  # the long test-time budget evaluated once; smaller budgets are read off it (tiny 32)
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
                             "rl.group_size": group_size, "rl.lr": lr, "rl.max_turns": rl_turns})
small = preset == "tiny"
sft_dir = sft.sft_model(cfg, train)
data_dir, _ = scenes.ensure_dataset(cfg)
train_split = data.read_records(data_dir / "train.jsonl")
train_images = [r.load_image(data_dir) for r in train_split]
budget = grpo.rollout_config(cfg, 0).max_turns
print("start policy:", sft_dir, "| RL turn budget:", budget, "| rl:", cfg.rl)
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
    one = replace(cfg, rl=replace(cfg.rl, steps=1, prompts_per_step=2, group_size=4, save_every=1))
    with tempfile.TemporaryDirectory() as tmp:
        step = grpo.train(one, sft_dir, tmp, train_split, train_images, progress=False)[0]
    print("one step here (2 questions x 4 rollouts):", {k: step[k] for k in [
        "reward", "mean_turns", "exceeded", "masked_tokens", "clip_fraction", "kl", "seconds", "peak_rss_mb"]})
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
        ax.set(title=key.replace("_", " ") + (" (5-step mean)" if key != "peak_rss_mb" else ""), xlabel="step")
axes[0].legend(fontsize=7)
axes[3].set(title="peak RSS per step (MB)")
plt.tight_layout()
for variant, log in logs.items():  # memory per step, issue #12: flat means no leak across steps
    early, late = log.peak_rss_mb.iloc[len(log) // 4], log.peak_rss_mb.iloc[-1]
    print(f"{variant}: peak RSS {early:.0f} MB at step {len(log) // 4 + 1}, {late:.0f} MB at step {len(log)} "
          f"({late / early - 1:+.1%})")
""")

md(r"""
## Held-out: accuracy at the training budget and beyond

The question masking answers is what happens at test time, when the budget is larger than in
training. Every model is evaluated greedily once on the held-out split with a long budget; the
accuracy at any smaller budget is read off that run (`evaluate.budget_curve`: the prompt never
states the budget, so the first b turns of the long run are the run with budget b).
""")

code(r"""
n = n_eval or (48 if small else 500)
long = eval_turns or (32 if small else cfg.max_turns_eval)
models = {"SFT": sft_dir, "RL masked": grpo.rl_model(cfg, "rl", train),
          "RL no masking": grpo.rl_model(cfg, "rl_nomask", train)}
results, protocols = {}, {}
for name, path in models.items():
    rows, manifest = evaluate.ensure_eval(cfg, path, f"{name.replace(' ', '_')}_{long}turns", n=n,
                                          config=evaluate.settings(cfg, long), progress=False)
    results[name], protocols[name] = rows, manifest["config"]["protocol"]
budgets = sorted({budget, cfg.max_turns_eval, long})
curve = pd.DataFrame([{"model": name, **c} for name, rows in results.items()
                      for c in evaluate.budget_curve(rows, budgets, long)])
acc = curve.pivot_table(index=["model", "max_turns"], columns="difficulty", values="accuracy")
print(acc[["all", "easy", "medium", "hard"]].loc[list(models)].to_string())
print()
print(pd.DataFrame({name: evaluate.summary(rows)[0] for name, rows in results.items()}).T[
    ["mean_turns", "mean_zooms", "exceeded", "valid_actions", "finish_answer", "finish_max_turns", "finish_context"]
].to_string())
for name, spec in protocols.items():
    print(f"protocol ({name}):", json.dumps({k: v for k, v in spec.items() if k != "model"}))
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
for name in models:
    turns = pd.Series([r["turns"] for r in results[name] if r["finish"] == "answer"]).value_counts().sort_index()
    axes[0].plot(turns.index, turns.values, marker="o", label=name)
    line = curve[(curve.model == name) & (curve.difficulty == "all")]
    axes[1].plot(line.max_turns, line.accuracy, marker="o", label=name)
axes[0].set(xlabel=f"turns used when answering (budget {long})", ylabel="questions", title="how long each model searches")
axes[1].set(xlabel="turn budget", ylabel="accuracy", title="held-out accuracy vs budget")
axes[1].axvline(budget, color="grey", lw=0.8, ls="--")
axes[0].legend(fontsize=7);
""")

md(r"""
## What you should see

FILL
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(nb, "05_rl_over_turn_masking.ipynb")
