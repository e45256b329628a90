"""Generator of notebooks/07_test_time_turn_scaling.ipynb (writes it into the working directory)."""
import nbformat as nbf

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))  # noqa: E731
code = lambda s, tags=None: cells.append(nbf.v4.new_code_cell(s.strip(), metadata={"tags": tags} if tags else {}))  # noqa: E731

md(r"""
# 07 · Test-time turn scaling, Avg@K, and the kit's numbers beside the paper's

**The paper's idea.** Mini-o3 is trained with a 6-turn budget, yet at test time its accuracy keeps
rising as the budget grows towards 32 turns: the model learned to keep searching rather than to
answer early, and over-turn masking (notebook 05) is what let it learn that. This notebook asks
the same of the tiny agent: accuracy against the turn budget (1 to 32) for the SFT checkpoint and
the two RL checkpoints, per difficulty, on the held-out split.

**How it is measured.** One greedy run per model with the largest budget; the accuracy at any
smaller budget is read off it (`evaluate.budget_curve`), which is exact because the prompt never
states the budget. The runs are the ones notebook 05 made (cached under `runs/<preset>/eval/`),
so this notebook only computes what is missing.

**Avg@K.** Mini-o3 reports Avg@32: 32 sampled answers per question at temperature 1.0, accuracy
averaged. The kit computes Avg@K the same way with a smaller K, and adds what the paper does not
print: the spread over the K runs (std, min, max). The protocol of every evaluation is printed
under its table (how the paper's numbers were made, and how these differ: `papers/evaluation.md`).
""")

code(r"""
preset = "tiny"
train = False  # True: the RL checkpoints trained here (notebook 05 with train=True); False (tiny): the shipped ones
n_eval = None  # held-out test questions (tiny: the first 48 of 96, as in notebooks 04-05)
max_budget = None  # the largest turn budget, evaluated once (tiny 32)
avg_k = None  # sampled runs per question for Avg@K (tiny 4; Mini-o3: 32)
avg_n = None  # questions for Avg@K (tiny 24)
avg_turns = None  # turn budget of the Avg@K runs (preset: max_turns_eval)
temperature = 1.0  # sampling temperature of Avg@K (Mini-o3: 1.0)
interactive = False  # True in Jupyter: the trajectory browser widget; False: static pictures (papermill, nbval, GitHub)
""", ["parameters"])

code(r"""
%matplotlib inline
import json

import matplotlib.pyplot as plt
import pandas as pd

from mini_o3_lite import data, evaluate, grpo, manifest, modeling, scenes, sft, viz
from mini_o3_lite.presets import load_preset

cfg = load_preset(preset)
small = preset == "tiny"
n = n_eval or (48 if small else 500)
long = max_budget or (32 if small else cfg.max_turns_eval)
rl_budget = grpo.rollout_config(cfg, 0).max_turns
models = {"SFT": sft.sft_model(cfg, train), "RL masked": grpo.rl_model(cfg, "rl", train),
          "RL no masking": grpo.rl_model(cfg, "rl_nomask", train)}
results, protocols = {}, {}
for name, path in models.items():
    rows, man = evaluate.ensure_eval(cfg, path, f"{name.replace(' ', '_')}_{long}turns", n=n,
                                     config=evaluate.settings(cfg, long), progress=False)
    results[name], protocols[name] = rows, man["config"]["protocol"]
print({name: len(rows) for name, rows in results.items()}, "questions; budget", long, "| RL trained with", rl_budget)
""")

md(r"""
## Accuracy against the turn budget
""")

code(r"""
budgets = [b for b in (1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32) if b <= long]
curve = pd.DataFrame([{"model": name, **c} for name, rows in results.items()
                      for c in evaluate.budget_curve(rows, budgets, long)])
fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
for ax, difficulty in zip(axes, ["all", "easy", "medium", "hard"]):
    for name in models:
        line = curve[(curve.model == name) & (curve.difficulty == difficulty)]
        ax.plot(line.max_turns, line.accuracy, marker=".", label=name)
    ax.axvline(rl_budget, color="grey", lw=0.8, ls="--")
    ax.set(title=difficulty, xlabel="turn budget", xscale="log", xticks=[1, 2, 4, 8, 16, 32], xticklabels=[1, 2, 4, 8, 16, 32])
axes[0].set(ylabel="accuracy")
axes[0].legend(fontsize=7)
plt.tight_layout()
table = curve[curve.difficulty == "all"].pivot(index="model", columns="max_turns", values="accuracy").loc[list(models)]
print(table.to_string())
print("\nprotocol:", json.dumps({k: v for k, v in protocols["RL masked"].items() if k not in ("model", "model_hash")}))
""")

code(r"""
at = lambda name, b: float(table.loc[name, b])  # noqa: E731
late = [b for b in budgets if b >= 24] or [long]
for name in models:
    print(f"{name}: {at(name, rl_budget):.3f} at the RL budget ({rl_budget}), "
          + ", ".join(f"{at(name, b):.3f} at {b}" for b in late)
          + f"; answered within {long}: {sum(r['finish'] == 'answer' for r in results[name])}/{n}")
""")

md(r"""
## Avg@K, with its spread
""")

code(r"""
k = avg_k or (4 if small else 32)
m = avg_n or (24 if small else n)
turns = avg_turns or cfg.max_turns_eval
sampled = evaluate.settings(cfg, turns, do_sample=True, temperature=temperature)
avg_rows, avg_manifest = {}, {}
for name in ["SFT", "RL masked"]:
    avg_rows[name], man = evaluate.ensure_eval(cfg, models[name], f"{name.replace(' ', '_')}_avg{k}_T{temperature}_{turns}turns",
                                               n=m, config=sampled, samples=k, progress=False)
    avg_manifest[name] = man["config"]["protocol"]
greedy = {name: {s["difficulty"]: s["accuracy"] for s in evaluate.summary([r for r in results[name] if r["id"] in
          {x["id"] for x in avg_rows[name]}])} for name in avg_rows}
avg_table = pd.DataFrame([{"model": name, **s, "greedy": greedy[name].get(s["difficulty"])}
                          for name, rows in avg_rows.items() for s in evaluate.avg_at_k(rows)])
print(avg_table.set_index(["model", "difficulty"]).to_string())
print("\nprotocol:", json.dumps({k_: v for k_, v in avg_manifest["RL masked"].items() if k_ not in ("model", "model_hash")}))
print("greedy column: the same questions, greedy, budget", long, "(read at", turns, "turns would differ slightly)")
""")

md(r"""
## The kit's numbers beside the paper's

Different scales, different data, different models: the paper's numbers are a 7B model on real
high-resolution photos judged by GPT-4o; the kit's are a 7.8M-parameter model on synthetic
1024-pixel scenes scored by rules. What carries over is the *shape*: the order of the rows and
what masking does to the turns, not the values.
""")

code(r"""
paper = pd.read_csv(manifest.repo_root() / "papers" / "paper_results.csv")
paper = paper[paper.metric == "Avg@32"].pivot(index="model", columns="benchmark", values="accuracy")
paper.columns = [c.replace("VisualProbe ", "") for c in paper.columns]
print("paper (Avg@32, %, VisualProbe test, 7B models, GPT-4o judge):")
print(paper[["easy", "medium", "hard"]].to_string())
kit = curve[curve.max_turns == long].pivot(index="model", columns="difficulty", values="accuracy").loc[list(models)]
print(f"\nkit (greedy accuracy x 100, {n} synthetic held-out questions, budget {long}, tiny preset):")
print((100 * kit[["easy", "medium", "hard", "all"]]).round(1).to_string())
""")

md(r"""
## Browse the trajectories

Pick a difficulty, right or wrong answers, a question, and step through its turns (the widget
needs a live Jupyter front end; run with `interactive = True`). Without one, the first right and
the first wrong trajectory of the masked RL model are drawn whole.
""")

code(r"""
model, processor = modeling.load(models["RL masked"], min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
data_dir, _ = scenes.ensure_dataset(cfg)
test = {r.id: r for r in data.read_records(data_dir / "test.jsonl")}
settings = evaluate.settings(cfg, long)


def replay(question_id):
    record = test[question_id]
    return evaluate.rollout([record], [record.load_image(data_dir)], processor,
                            evaluate.model_policy(model, settings), settings)[0]


viz.browser(results["RL masked"], replay, cfg.min_pixels, cfg.max_pixels, interactive=interactive)
""")

md(r"""
## What you should see

FILL
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
nbf.write(nb, "07_test_time_turn_scaling.ipynb")
