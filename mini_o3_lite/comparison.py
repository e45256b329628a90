"""Held-out comparison of agents under one protocol, with paired standard errors.

The RL question ("does GRPO with over-turn masking improve the cold-start agent?") is answered on the same
held-out questions for every agent, so the difference between two agents is measured question by question:
its standard error is that of the mean of per-question differences, far smaller than two independent
errors when the agents solve mostly the same questions. `compare` evaluates greedy (one run) and sampled
(Avg@K at temperature 1.0, the paper's protocol) and writes one JSON file that notebook 05 reads.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import replace
from pathlib import Path

from .evaluate import ensure_eval, settings
from .manifest import portable
from .presets import Preset


def per_question(rows: list[dict], key: str = "correct") -> dict[str, float]:
    """{question id: mean of `key` over its runs}: the share answered right, or the mean turns (1 run greedy,
    K runs sampled). The K runs of one question are not independent, so standard errors are taken over these."""
    runs: dict[str, list[float]] = {}
    for r in rows:
        runs.setdefault(r["id"], []).append(float(r[key]))
    return {q: statistics.fmean(v) for q, v in runs.items()}


def mean_se(values: list[float]) -> dict:
    """Mean and its standard error (sample std / sqrt n)."""
    n = len(values)
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": round(statistics.fmean(values), 4), "se": round(se, 4), "n": n}


def paired(a: dict[str, float], b: dict[str, float], ids: list[str] | None = None) -> dict:
    """Mean per-question difference b - a, with its paired standard error, over `ids` (default: all of a's)."""
    ids = ids if ids is not None else sorted(a)
    diff = mean_se([b[q] - a[q] for q in ids])
    return diff | {"z": round(diff["mean"] / diff["se"], 2) if diff["se"] else None}


def summarise_run(rows: list[dict], budget: int) -> dict:
    """Accuracy (with SE) overall and per difficulty, turns (with SE over questions), exceeded share, turn
    histogram, how searches end (`finishes`) and how often an answer, when one is given, is right."""
    correct = per_question(rows)
    difficulty = {r["id"]: r["difficulty"] for r in rows}
    by = {d: mean_se([c for q, c in correct.items() if difficulty[q] == d]) for d in sorted(set(difficulty.values()))}
    answered = [r for r in rows if r["finish"] == "answer"]
    return {"accuracy": mean_se(list(correct.values())), "by_difficulty": by,
            "turns": mean_se(list(per_question(rows, "turns").values())),
            "exceeded": round(sum(r["exceeded"] for r in rows) / len(rows), 4),
            "turn_histogram": {str(t): c for t, c in sorted(Counter(r["turns"] for r in rows).items())},
            "finishes": dict(sorted(Counter(r["finish"] for r in rows).items())),
            "right_when_answering": round(sum(r["correct"] for r in answered) / max(len(answered), 1), 4),
            "budget": budget}


def compare(preset: Preset, models: dict[str, str | Path], n: int, max_turns: int, samples: int = 8,
            temperature: float = 1.0, out: str | Path | None = None, progress: bool = True,
            command: str | None = None) -> dict:
    """Evaluate each agent greedy and Avg@`samples` on the first `n` test questions at `max_turns` turns.

    `models`: {label: checkpoint directory}; the first is the reference every other is paired against
    (the cold-start agent). Each evaluation is cached under `runs/<preset>/eval/` (an interrupted comparison
    redoes only the missing ones). Writes the result to `out` as JSON when given, with `command`, the command
    line that asked for it.
    """
    if n > preset.data.n_test:  # a larger held-out split: the test stream's first n scenes
        preset = replace(preset, data=replace(preset.data, n_test=n))
    protocols = {"greedy": (settings(preset, max_turns), 1),
                 f"avg@{samples}": (settings(preset, max_turns, do_sample=True, temperature=temperature), samples)}
    result = {"command": command or "comparison.compare", "n": n, "max_turns": max_turns, "samples": samples,
              "temperature": temperature,
              "models": {label: portable(path) for label, path in models.items()}, "protocols": {}}
    for name, (config, k) in protocols.items():
        rows = {label: ensure_eval(preset, path, f"compare-{label}-{name}-{max_turns}t-{n}", n=n, config=config,
                                   samples=k, progress=progress)[0]
                for label, path in models.items()}
        correct = {label: per_question(r) for label, r in rows.items()}
        difficulty = {r["id"]: r["difficulty"] for r in next(iter(rows.values()))}
        labels = list(models)  # each agent against the reference, then each against the next
        pairs = [(labels[0], other) for other in labels[1:]] + list(zip(labels[1:], labels[2:], strict=False))
        hard = [q for q, d in difficulty.items() if d == "hard"]
        result["protocols"][name] = {
            "models": {label: summarise_run(r, max_turns) for label, r in rows.items()},
            "paired": {f"{b} - {a}": paired(correct[a], correct[b]) for a, b in pairs},
            "paired_hard": {f"{b} - {a}": paired(correct[a], correct[b], hard) for a, b in pairs}}
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=1) + "\n")
    return result
