"""The kit's result tables in README.md and papers/numbers.md, generated from the files commands write.

A number typed by hand into a document drifts from the run it came from; these tables are instead
rewritten from the results files the kit ships, each written by one command:

- `mini_o3_lite/assets/evals/tiny/<name>/` (`mini-o3-lite ship-evals`): the notebooks' held-out evaluations,
  rows and protocol (notebook 04's four, notebook 05's and 07's 32-turn runs, notebook 07's Avg@4);
- `mini_o3_lite/assets/rl-comparison.json` (`mini-o3-lite compare`): greedy and Avg@K with paired errors;
- `mini_o3_lite/assets/pixel-sweep.json` (`python -m mini_o3_lite.pixelsweep`): the max-pixels sweep;
- `mini_o3_lite/assets/tiny-*/manifest.json`, `sft_log.json`, `rl_log.json`, `metrics.json` (the training
  commands and `mini-o3-lite release`): how each shipped checkpoint was made and measured;
- `papers/paper_results.csv`: the paper's numbers.

`python -m mini_o3_lite.numbers` rewrites every block between `<!-- numbers:NAME -->` and
`<!-- /numbers:NAME -->` in the two documents; `--check` only reports stale blocks (exit 1), as the tests do.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable

from .evaluate import SHIPPED_EVALS, avg_at_k, budget_curve, summary
from .modeling import ASSETS

KIT = ASSETS.parent.parent
DOCUMENTS = [KIT / "README.md", KIT / "papers" / "numbers.md"]
EVALS = SHIPPED_EVALS / "tiny"
AGENTS = {"SFT": "SFT", "RL masked": "RL_masked", "RL no masking": "RL_no_masking"}  # label -> eval name prefix
LEVELS = ["all", "easy", "medium", "hard"]


def rows(name: str) -> list[dict]:
    """The rows of one shipped evaluation (`ship-evals`)."""
    path = EVALS / name / "rows.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; run the notebook that makes it, then `mini-o3-lite ship-evals {name}`"
        )
    return [json.loads(line) for line in path.read_text().splitlines()]


def asset(name: str) -> dict:
    return json.loads((ASSETS / name).read_text())


def table(header: list[str], body: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in body])


def f2(x: float) -> str:
    return f"{x:.2f}"


def pm(stat: dict, digits: int = 3) -> str:
    """mean +- standard error."""
    return f"{stat['mean']:.{digits}f} ± {stat['se']:.{digits}f}"


def by_level(summaries: list[dict], key: str = "accuracy") -> list[str]:
    found = {s["difficulty"]: s[key] for s in summaries}
    return [f2(found[level]) for level in LEVELS]


def sft_heldout() -> str:
    """Notebook 04, "Before and after": the base and the SFT agent, with and without the tool."""
    runs = {
        "base, no tool": "base_notool",
        "base, with the tool prompt": "base_16turns",
        "SFT, no tool": "SFT_notool",
        "**SFT, with the tool**": "SFT_16turns",
    }
    body = []
    for label, name in runs.items():
        s = summary(rows(name))
        top = s[0]
        body.append(
            [
                label,
                *by_level(s),
                f"{top['valid_actions']:.3f}",
                f"{top['mean_turns']:.1f} ({top['mean_zooms']:.1f})",
                f"{top['finish_answer']} of {top['n']}",
            ]
        )
    n = summary(rows("SFT_16turns"))[0]["n"]
    return (
        f"The first {n} held-out questions, greedy, 16 turns, rule-based scorer "
        f"(`assets/evals/tiny/{{base,SFT}}_{{notool,16turns}}`).\n\n"
        + table(["model", *LEVELS, "valid actions", "mean turns (zooms)", "answered"], body)
    )


def comparison() -> str:
    """`mini-o3-lite compare`: greedy and Avg@K on the same questions, paired differences."""
    result = asset("rl-comparison.json")
    body, pairs = [], []
    for protocol, run in result["protocols"].items():
        for label, r in run["models"].items():
            levels = [pm(r["accuracy"])] + [f2(r["by_difficulty"][lv]["mean"]) for lv in LEVELS[1:]]
            body.append([protocol, label, *levels, pm(r["turns"], 2), f2(r["exceeded"])])
        for kind in ("paired", "paired_hard"):
            for name, d in run[kind].items():
                pairs.append(
                    [
                        protocol,
                        name + (" (hard)" if kind == "paired_hard" else ""),
                        f"{d['mean']:+.3f}",
                        f"{d['se']:.3f}",
                        d["z"],
                        d["n"],
                    ]
                )
    head = (
        f"`{result['command']}`: {result['n']} held-out questions, {result['max_turns']} turns; Avg@"
        f"{result['samples']} samples at temperature {result['temperature']}. Accuracy and turns: mean ± "
        "standard error."
    )
    return (
        head
        + "\n\n"
        + table(["protocol", "agent", "all", "easy", "medium", "hard", "turns", "exceeded"], body)
        + "\n\nPaired per-question differences (b - a), their standard error and z:\n\n"
        + table(["protocol", "difference", "mean", "paired SE", "z", "questions"], pairs)
    )


def turn_scaling() -> str:
    """Notebooks 05 and 07: accuracy against the turn budget, read off one 32-turn greedy run per agent."""
    budgets = [2, 4, 6, 8, 10, 12, 16, 24, 32]
    body = []
    for label, prefix in AGENTS.items():
        r = rows(f"{prefix}_32turns")
        curve = {c["max_turns"]: c["accuracy"] for c in budget_curve(r, budgets, 32) if c["difficulty"] == "all"}
        s = summary(r)[0]
        body.append(
            [label, *(f2(curve[b]) for b in budgets), f"{s['mean_turns']:.1f}", f"{s['finish_context']} of {s['n']}"]
        )
    n = len(rows("SFT_32turns"))
    return (
        f"All {n} questions of notebooks 04-07, greedy, one 32-turn run per agent read at each budget "
        "(`assets/evals/tiny/*_32turns`).\n\n"
        + table(["agent", *map(str, budgets), "mean turns", "cut by the context"], body)
    )


def avg_at_4() -> str:
    """Notebook 07, "Avg@K, with its spread"."""
    body = []
    for label, prefix in AGENTS.items():
        s = avg_at_k(rows(f"{prefix}_avg4_T1.0_16turns"))
        top = s[0]
        body.append(
            [
                label,
                f"{top['avg_accuracy']:.3f} (std {top['std']:.3f})",
                *(f2(x["avg_accuracy"]) for x in s[1:]),
                top["n"],
                top["k"],
            ]
        )
    return table(["agent", "Avg@K all", "easy", "medium", "hard", "questions", "K"], body)


def pixel_sweep() -> str:
    """Notebook 06: the max-pixels sweep's shipped results."""
    sweep = asset("pixel-sweep.json")
    body = []
    for r in sweep["results"]:
        s = summary(r["rows"])
        side = int(r["protocol"]["max_pixels"] ** 0.5)
        top = s[0]
        body.append(
            [
                f"{side} x {side}",
                side * side // 784,
                *by_level(s),
                f"{top['mean_turns']:.1f}",
                f"{r['mean_tokens']:,.0f}",
                f"{top['finish_context']}",
                f2(r["first_view_exact"]),
            ]
        )
    return (
        f"`{sweep['command']}`: {sweep['n']} held-out questions, greedy, {sweep['max_turns']} turns; each size "
        f"is the shipped SFT agent plus {sweep['epochs']:g} SFT epoch at that size "
        f"({sweep['wall_seconds'] / 60:.0f} CPU minutes in all).\n\n"
        + table(
            [
                "view",
                "tokens per view",
                *LEVELS,
                "mean turns",
                "tokens per question",
                "cut by the context",
                "first view named exactly",
            ],
            body,
        )
    )


def base_skills() -> str:
    """The shipped base's held-out skills (`mini-o3-lite release`, `assets/tiny-base/metrics.json`)."""
    m = asset("tiny-base/metrics.json")
    skills = m["skills"]
    search = m["tile_search_easy_medium_12_zooms"]["all"]
    body = [[k, f"{skills[k]:.3f}", skills["n"]] for k in ("describe", "presence", "recognition", "where", "box")]
    body.append(
        [
            "presence read from the description",
            f"{m['presence_from_description']['presence']:.3f}",
            m["presence_from_description"]["n"],
        ]
    )
    body.append(
        [
            f"scripted tile search through the model ({search['mean_zooms']:.1f} zooms)",
            f"{search['accuracy']:.3f}",
            search["n"],
        ]
    )
    step = m["step_fragments"]["all"]
    body.append(["the step after a zoom: the teacher's call or answer", f"{step['action']:.3f}", step["n"]])
    body.append(["the step after a zoom: the whole verdict with its box", f"{step['verdict']:.3f}", step["n"]])
    return table(["skill", "accuracy", "held-out examples"], body)


def training() -> str:
    """How each shipped checkpoint was trained: its manifest and its per-step log."""
    sft, log = asset("tiny-sft/manifest.json"), asset("tiny-sft/sft_log.json")
    c = sft["config"]["sft"]
    body = [
        [
            "`tiny-sft`",
            f"SFT, {c['epochs']:g} epochs of batch {c['batch_size']}, lr {c['lr']:g}, {sft['metrics']['steps']} steps",
            f"{sft['metrics']['seconds']:,.0f}",
            f"{max(s['peak_rss_mb'] for s in log['curve']):,.0f}",
        ]
    ]
    for name, variant in (("tiny-rl", "over-turn masking"), ("tiny-rl-nomask", "no masking")):
        man, log = asset(f"{name}/manifest.json"), asset(f"{name}/rl_log.json")
        c = man["config"]["rl"]
        body.append(
            [
                f"`{name}`",
                f"GRPO, {variant}, {c['steps']} steps of {c['prompts_per_step']} x "
                f"{c['group_size']} rollouts, lr {c['lr']:g}, {c['max_turns']} turns",
                f"{man['metrics']['seconds']:,.0f}",
                f"{max(s['peak_rss_mb'] for s in log):,.0f}",
            ]
        )
    return table(["checkpoint", "training", "CPU seconds", "peak memory (MB)"], body)


def paper(model: str, metric_prefix: str = "") -> dict[str, float]:
    """{VisualProbe level: accuracy} of one model in `papers/paper_results.csv`."""
    with open(KIT / "papers" / "paper_results.csv") as f:
        return {
            r["benchmark"].replace("VisualProbe ", ""): float(r["accuracy"])
            for r in csv.DictReader(f)
            if r["model"] == model
            and r["benchmark"].startswith("VisualProbe")
            and r["metric"].startswith(metric_prefix)
        }


def vp(numbers: dict[str, float]) -> str:
    return " / ".join(f"{numbers[level]:.1f}" for level in ("hard", "medium", "easy"))


RL_SOURCE = (
    "[notebook 05](notebooks/05_rl_over_turn_masking.ipynb), "
    "[`rl-comparison.json`](mini_o3_lite/assets/rl-comparison.json)"
)
SWEEP_SOURCE = (
    "[notebook 06](notebooks/06_max_pixels_tradeoff.ipynb), [`pixel-sweep.json`](mini_o3_lite/assets/pixel-sweep.json)"
)


def readme_results() -> str:
    """The README's table: each of the paper's questions, its answer and the kit's, with where each is measured."""
    notool, sft = summary(rows("base_notool"))[0], summary(rows("SFT_16turns"))[0]
    cmp_ = asset("rl-comparison.json")
    greedy, sampled_name = cmp_["protocols"]["greedy"], [p for p in cmp_["protocols"] if p != "greedy"][0]
    sampled = cmp_["protocols"][sampled_name]
    names = {"sft": "SFT start", "rl": "masked", "rl_nomask": "unmasked"}
    agents = [m for m in names if m in greedy["models"]]
    acc = lambda run: " / ".join(f"{run['models'][m]['accuracy']['mean']:.3f}" for m in agents)  # noqa: E731
    gain = sampled["paired"]["rl - sft"]
    turns = {label: summary(rows(f"{prefix}_32turns"))[0]["mean_turns"] for label, prefix in AGENTS.items()}
    curve = {
        c["max_turns"]: c["accuracy"]
        for c in budget_curve(rows("SFT_32turns"), [4, 6, 16, 32], 32)
        if c["difficulty"] == "all"
    }
    sweep = {
        int(r["protocol"]["max_pixels"] ** 0.5): summary(r["rows"])[0] for r in asset("pixel-sweep.json")["results"]
    }
    n_cmp = f"{cmp_['n']} questions, {cmp_['max_turns']} turns"
    body = [
        [
            "does the zoom-in agent beat the model without the tool?",
            f"Qwen2.5-VL-7B-Instruct {vp(paper('Qwen2.5-VL-7B-Instruct'))}; Mini-o3 {vp(paper('Mini-o3', 'Avg@32'))}",
            f"no tool {notool['accuracy']:.2f}, cold-start agent {sft['accuracy']:.2f} "
            f"({sft['n']} questions, 16 turns)",
            '[notebook 04](notebooks/04_cold_start_sft.ipynb), "Before and after"',
        ],
        [
            "what does over-turn masking buy?",
            f"without masking {vp(paper('Mini-o3 without over-turn masking'))}, with it "
            f"{vp(paper('Mini-o3 full recipe (ablation table)'))} (ablation, 6 turns, *unverified*)",
            f"{' / '.join(names[m] for m in agents)}, {n_cmp}: greedy {acc(greedy)}; {sampled_name} {acc(sampled)} "
            f"(masked {gain['mean']:+.3f} over SFT, paired SE {gain['se']:.3f})",
            RL_SOURCE,
        ],
        [
            "do searches get shorter without masking?",
            "4.8 turns without, 5.5 with (correct answers; *unverified*)",
            f"greedy, {len(rows('SFT_32turns'))} questions, 32 turns: "
            + ", ".join(f"{label} {t:.1f}" for label, t in turns.items()) + " turns",
            '[notebook 05](notebooks/05_rl_over_turn_masking.ipynb), "Held-out"',
        ],
        [
            "fewer pixels per image, more turns?",
            "2M pixels best (hard 48.0); 12M: 36.1 in about one turn (*unverified*)",
            ", ".join(f"{side} px {s['accuracy']:.3f} in {s['mean_turns']:.1f} turns" for side, s in sweep.items())
            + f" ({next(iter(sweep.values()))['n']} questions)",
            SWEEP_SOURCE,
        ],
        [
            "more turns at test time than in training?",
            "accuracy rises from 4 to 32 turns after training at 6 (*unverified*)",
            "SFT agent " + ", ".join(f"{curve[b]:.3f} at {b}" for b in (4, 6, 16, 32)) + " turns",
            '[notebook 07](notebooks/07_test_time_turn_scaling.ipynb), "Accuracy against the turn budget"',
        ],
    ]
    return table(["question", "paper (VisualProbe hard / medium / easy)", "kit (`tiny`)", "kit measured in"], body)


TEACHES = {  # the README's notebook table: what each notebook teaches
    "00_tiny_base_vlm": "why a tiny VLM must first learn to see; its pretraining; do its skills compose into a search?",
    "01_visual_probe_dataset": "what makes visual search hard: small targets, distractors, decoys, resolution",
    "02_zoom_tool_and_agent_loop": "the tool protocol by example, a trajectory step by step, batched rollouts, "
    "token masks",
    "03_cold_start_trajectories": "the reasoning patterns, pattern and turn statistics, the few-shot teacher and "
    "its yield",
    "04_cold_start_sft": "which tokens carry loss, SFT with TRL, before vs after on held-out scenes, the no-tool "
    "baseline",
    "05_rl_over_turn_masking": "GRPO with and without over-turn masking: the mask over a batch, curves per step, "
    "turns at test time, greedy and Avg@K with paired standard errors",
    "06_max_pixels_tradeoff": "tokens per image and turns that fit, then accuracy, turns and tokens at three view "
    "sizes",
    "07_test_time_turn_scaling": "accuracy vs turn budget (1-32), Avg@K with its spread, the kit beside the paper, "
    "a trajectory browser",
    "08_real_benchmarks": "the paper's five benchmarks with its protocol, one search on a photo, the one-GPU "
    "reproduction of the table",
}


def minutes(seconds: float) -> str:
    return f"{seconds // 60:.0f} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def notebooks() -> str:
    """The README's notebook table, with each notebook's CPU time from its committed run (papermill's metadata)."""
    body = []
    for name, teaches in TEACHES.items():
        nb = json.loads((KIT / "notebooks" / f"{name}.ipynb").read_text())
        seconds = sum(c.get("metadata", {}).get("papermill", {}).get("duration") or 0 for c in nb["cells"])
        body.append([f"[`{name}`](notebooks/{name}.ipynb)", teaches, minutes(seconds)])
    return table(["notebook", "teaches", "CPU time"], body)


BLOCKS: dict[str, Callable[[], str]] = {
    "notebooks": notebooks,
    "readme-results": readme_results,
    "base-skills": base_skills,
    "training": training,
    "sft-heldout": sft_heldout,
    "comparison": comparison,
    "turn-scaling": turn_scaling,
    "avg-at-4": avg_at_4,
    "pixel-sweep": pixel_sweep,
}


def render(text: str) -> str:
    """`text` with every numbers block rewritten from the results files."""

    def block(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise KeyError(f"unknown numbers block {name!r} (known: {', '.join(BLOCKS)})")
        return f"<!-- numbers:{name} -->\n{BLOCKS[name]()}\n<!-- /numbers:{name} -->"

    return re.sub(r"<!-- numbers:([\w-]+) -->\n.*?<!-- /numbers:\1 -->", block, text, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mini_o3_lite.numbers", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks and exit 1, writing nothing")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCUMENTS:
        old = path.read_text()
        new = render(old)
        if new != old:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        print(f"{path.relative_to(KIT)}: {'stale' if args.check else 'rewritten'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
