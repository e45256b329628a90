"""Mini-o3's fourth idea measured at tiny scale: the same scenes at several max-pixels budgets.

Mini-o3 lowers max pixels from Qwen2.5-VL's 12,845,056 to 2,000,000: each image then costs fewer
tokens, so more turns fit in the 32K context (its ablation on VisualProbe hard: 48.0 at 2M, 36.1 at
12M, where the model used about one turn). The sweep keeps the scenes fixed (generated for the
preset's own budget) and, for each budget (every view resized to `side x side` pixels):

1. the scripted teacher describes every view as it looks at that budget (doubling the side makes
   the target's dot readable one quadrant level earlier), giving that budget's cold-start data;
2. a starting agent (the shipped SFT agent for `tiny`) is adapted to that data by a short SFT run
   of the same length at every budget, the preset's own included, so the budgets are compared on
   equal training (Mini-o3 trains each setting from its base);
3. the adapted agent is evaluated greedily on held-out scenes at the preset's turn budget and
   context, recording the tokens every trajectory used.

What a budget buys (fewer zooms) and what it costs (tokens per view, turns that fit) are then
read side by side in notebook 06. `python -m mini_o3_lite.pixelsweep` runs the sweep and writes
the results file notebook 06 reads when it does not train.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import description, evaluate, pixels, scenes
from .data import open_image, read_records
from .dataset import ensure_dataset
from .manifest import cached_stage, stage_dir
from .modeling import load_for, load_processor, pixel_budget, set_pixel_budget, shipped
from .presets import Preset, load_preset
from .rollout import model_policy, rollout
from .sft import train_sft
from .teacher import TeacherConfig, scripted_trajectories

SHIPPED_RESULTS = Path(__file__).parent / "assets" / "pixel-sweep.json"


def at_budget(preset: Preset, side: int) -> Preset:
    """The preset with every view resized to side x side pixels (min = max pixels, as the tiny preset does)."""
    if side % pixels.FACTOR:
        raise ValueError(f"side {side} is not a multiple of {pixels.FACTOR} (Qwen2.5-VL resizes to multiples of 28)")
    return replace(preset, min_pixels=side * side, max_pixels=side * side)


def teacher_cost(preset: Preset, side: int, records, images, processor) -> dict:
    """What the scripted teacher's searches cost at this view size: how many it solves, turns, tokens,
    the share of tokens that are image, and how many turns of that cost fit in the preset's context.

    The searches are replayed through the agent loop, so the token counts are the chat template's.
    `processor`'s pixel budget is set to the side and restored afterwards.
    """
    budget, before = at_budget(preset, side), pixel_budget(processor)
    set_pixel_budget(processor, budget.min_pixels, budget.max_pixels)
    try:
        kept, _, _ = scripted_trajectories(records, images, processor, budget, TeacherConfig(), 64, fit_context=False)
    finally:
        set_pixel_budget(processor, *before)
    view = pixels.visual_tokens(side, side, budget.min_pixels, budget.max_pixels)
    turns = sum(t.turns for t in kept) / max(len(kept), 1)
    tokens = sum(len(t.input_ids) for t in kept) / max(len(kept), 1)
    return {"view side": side, "tokens per view": view, "teacher solves": f"{len(kept)}/{len(records)}",
            "turns": round(turns, 1), "tokens per search": round(tokens),
            "image share": round(view * turns / tokens, 2) if kept else None,  # one image per turn
            f"turns that fit in {preset.context_length:,}":
                int((preset.context_length - preset.context_reserve) // (tokens / turns)) if kept else None}


def ensure_adapted(preset: Preset, side: int, init: str | Path, epochs: float):
    """`runs/<preset>/pixels/<side>px/`: that budget's teacher trajectories and the agent adapted to them."""
    data_dir, data = ensure_dataset(preset, "train", preset.sft.n_trajectories)  # the preset's scenes, any budget
    budget = at_budget(preset, side)

    def build(out: Path) -> dict:
        records = read_records(data_dir / "train.jsonl")[: preset.sft.n_trajectories]
        images = [open_image(r, data_dir) for r in records]
        processor = load_processor(init, budget.min_pixels, budget.max_pixels)
        kept, _, stats = scripted_trajectories(records, images, processor, budget, TeacherConfig(seed=preset.seed),
                                               preset.max_turns_eval)
        if not kept:
            raise ValueError(f"the teacher completed none of {len(records)} searches at {side}px within "
                             f"{preset.max_turns_eval} turns: nothing to adapt to")
        summary = train_sft(budget, kept, out, init, num_train_epochs=epochs)
        return {"teacher": stats, "sft": {k: v for k, v in summary.items() if k != "curve"}}

    config = {"side": side, "epochs": epochs, "sft": asdict(preset.sft), "seed": preset.seed,
              "max_turns": preset.max_turns_eval}
    folder = stage_dir(preset.name, "pixels") / f"{side}px"
    return folder, cached_stage(folder, config, build, {"data": data["config_hash"],
                                                        "init": evaluate.model_hash(init)}, preset.seed)


def measure(preset: Preset, model_dir: str | Path, side: int, name: str, n: int | None,
            max_new_tokens: int | None = None, progress: bool = False) -> dict:
    """Greedy evaluation of `model_dir` with views of side x side pixels: the summary table and token use.

    `max_new_tokens` per turn: a larger view shows more objects, and every thought starts by naming them,
    so a turn at a larger side needs more tokens than the preset's own budget allows.
    """
    budget = at_budget(preset, side)
    config = evaluate.settings(preset, max_new_tokens=max_new_tokens or preset.max_new_tokens)
    rows, manifest = evaluate.ensure_eval(preset, model_dir, name, n=n, config=config, progress=progress,
                                          pixels=(budget.min_pixels, budget.max_pixels))
    return {
        "side": side, "tokens_per_view": pixels.visual_tokens(side, side, budget.min_pixels, budget.max_pixels),
        "summary": evaluate.summary(rows), "rows": rows,
        "mean_tokens": round(sum(r["tokens"] for r in rows) / len(rows), 1),
        "max_tokens": max(r["tokens"] for r in rows),
        "protocol": manifest["config"]["protocol"],
    }


def first_view_check(preset: Preset, model_dir: str | Path, side: int, records, images) -> dict:
    """Does the agent name what the first view shows, as the teacher would at this budget? (one greedy turn each)

    Every thought starts with the canonical description of the view (`description.py`), so this is
    the agent's perception at this view size, measured without the rest of the search.
    """
    budget = at_budget(preset, side)
    model, processor = load_for(budget, model_dir)
    config = evaluate.settings(preset, 1, max_new_tokens=256)
    trajs = rollout(records, images, processor, model_policy(model, config), config)
    right, examples = 0, []
    for traj, rec in zip(trajs, records, strict=True):
        scene = scenes.scene_from_meta(rec.meta, rec.difficulty)
        want = description.of_view(scene, scenes.full_region(scene), budget)[0]
        said = next(m["content"][0]["text"] for m in traj.messages if m["role"] == "assistant")
        right += said.startswith("<think>" + want)
        examples.append({"id": rec.id, "teacher": want, "agent": said})
    return {"side": side, "n": len(records), "exact": round(right / max(len(records), 1), 4), "examples": examples}


def sweep(preset: Preset, sides, init: str | Path, epochs: float = 1.0, n: int | None = 48,
          max_new_tokens: int = 256, progress: bool = False, log=print) -> list[dict]:
    """Adapt and evaluate at every side; one result per side (`measure`'s fields plus teacher and SFT stats)."""
    data_dir, _ = ensure_dataset(preset, "test", n)
    records = read_records(data_dir / "test.jsonl")[:n]
    held_out = (records, [open_image(r, data_dir) for r in records])
    results = []
    for side in sides:
        started = time.time()
        folder, manifest = ensure_adapted(preset, side, init, epochs)
        result = measure(preset, folder, side, f"pixels_{side}px", n, max_new_tokens, progress)
        check = first_view_check(preset, folder, side, *held_out)
        result |= {"teacher": manifest["metrics"]["teacher"], "sft": manifest["metrics"]["sft"],
                   "first_view_exact": check["exact"], "seconds": round(time.time() - started, 1)}
        log(f"{side}px: accuracy {result['summary'][0]['accuracy']}, turns {result['summary'][0]['mean_turns']}, "
            f"tokens {result['mean_tokens']}, first view named {result['first_view_exact']} ({result['seconds']} s)")
        results.append(result)
    return results


def table(results: list[dict], context_length: int) -> list[dict]:
    """One row per budget: what a view costs, what the agent did with it, and how it ended (tidy, for pandas)."""
    out = []
    for r in results:
        total = r["summary"][0]
        per_difficulty = {f"acc_{s['difficulty']}": s["accuracy"] for s in r["summary"][1:]}
        rows = r["rows"]
        out.append({
            "side": r["side"], "max_pixels": r["side"] ** 2, "tokens_per_view": r["tokens_per_view"],
            "accuracy": total["accuracy"], **per_difficulty, "mean_turns": total["mean_turns"],
            "mean_tokens": r["mean_tokens"], "max_tokens": r["max_tokens"],
            "context_share": round(r["mean_tokens"] / context_length, 3),
            "finish_context": total["finish_context"], "finish_max_turns": total["finish_max_turns"],
            "visual_share": round(sum(r["tokens_per_view"] * (1 + row["zooms"]) for row in rows)
                                  / sum(row["tokens"] for row in rows), 3),
        })
    return out


def save(results: list[dict], path: str | Path, **meta) -> None:
    Path(path).write_text(json.dumps({**meta, "results": results}, indent=1, sort_keys=True) + "\n")


def load_results(path: str | Path = SHIPPED_RESULTS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no max-pixels sweep results at {str(path)!r}: "
                                "run `python -m mini_o3_lite.pixelsweep`")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Max-pixels sweep: adapt and evaluate the agent at several budgets.")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--sides", type=int, nargs="+", default=[112, 224, 448], help="view sides in pixels")
    parser.add_argument("--epochs", type=float, default=1.0, help="SFT epochs of adaptation at each budget")
    parser.add_argument("--n", type=int, default=48, help="held-out questions")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="tokens per turn at every budget")
    parser.add_argument("--init", default=None, help="agent to adapt (default: the shipped tiny SFT agent)")
    parser.add_argument("--out", default=str(SHIPPED_RESULTS))
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    preset = load_preset(args.preset)
    init = Path(args.init) if args.init else shipped("sft")
    started = time.time()
    results = sweep(preset, args.sides, init, args.epochs, args.n, args.max_new_tokens)
    save(results, args.out, command=" ".join(["python -m mini_o3_lite.pixelsweep", *argv]),
         init=str(init.name), epochs=args.epochs, n=args.n, preset=args.preset, max_new_tokens=args.max_new_tokens,
         wall_seconds=round(time.time() - started, 1), context_length=preset.context_length,
         max_turns=preset.max_turns_eval)


if __name__ == "__main__":
    main()
