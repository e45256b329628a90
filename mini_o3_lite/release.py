"""Shipping a base checkpoint: measure it on held-out scenes and write its model card.

The numbers in the card are read from the files the measurement writes (`metrics.json`,
`training_log.json`); no number is typed by hand. `mini-o3-lite release` runs `measure_and_ship`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
from pathlib import Path

import torch

from . import dataset, fragments, scenes
from .base_tasks import Example, evaluate, example_batch, is_correct, make_example, predict
from .modeling import load, save
from .pixels import max_visual_tokens
from .presets import Preset
from .tilesearch import DECIDERS, presence_in_words, run_tile_search, summarise


def report(preset: Preset, model_dir: str | Path, n_eval: int = 1024, n_search: int = 96) -> dict:
    """The acceptance numbers of a base checkpoint, on held-out scenes with greedy decoding.

    Skills per task and view depth, and the scripted tile search driven only by the model's own
    presence and recognition answers on held-out easy + medium scenes, within 12 zooms: presence
    from its answer word, and read from its description (`tilesearch.DECIDERS`).
    """
    model, processor = load(model_dir)
    examples = [ex for i in range(math.ceil(n_eval / 64)) for ex in example_batch(preset, "test", 100 + i, 64)]
    skills = evaluate(model, processor, examples[:n_eval])
    records, images = dataset.make_split(preset.data, "test", preset.min_pixels, preset.max_pixels,
                                        n=round(n_search * 3 / 2))
    chosen = [r for r in records if r.difficulty in ("easy", "medium")][:n_search]
    search = {decide: summarise(run_tile_search(model, processor, chosen, images, max_zooms=12, decide=decide))
              for decide in DECIDERS}
    metrics = {"skills": skills, "presence_from_description": presence_from_description(model, processor, examples),
               "description_words": description_words(model, processor, preset),
               "tile_search_easy_medium_12_zooms": search["answer"],
               "tile_search_easy_medium_12_zooms_description": search["description"],
               "step_fragments": step_fragments(model, processor, preset),
               "recognition_by_size": recognition_by_size(model, processor, preset)}
    (Path(model_dir) / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def measure_and_ship(preset: Preset, model_dir: str | Path, n_eval: int = 1024, n_search: int = 96,
                     ship_to: str | Path | None = None, findings: str | Path | None = None, command: str = "") -> dict:
    """`report` on `model_dir`; with `ship_to`, on its bf16 copy there (`ship`), then the copy's model card.

    The copy is what is measured, so the card's numbers are those of the weights shipped. `findings`: a
    markdown file of what was tried and what each gave, for the card; `command`: the command the card names.
    """
    target = ship(model_dir, ship_to) if ship_to else Path(model_dir)
    metrics = report(preset, target, n_eval, n_search)
    if ship_to:
        notes = Path(findings).read_text() if findings else "(none recorded)"
        write_model_card(target, command, hardware=platform_summary(), findings=notes)
    return metrics


def step_fragments(model, processor, preset: Preset, n_per_kind: int = 32) -> dict:
    """The agent's step after a zoom (`fragments.py`), per verdict kind: how often the reply's description,
    verdict (box included) and action equal the teacher's, word for word, on held-out fragments."""
    examples = fragments.held_out(preset, n_per_kind)
    replies = predict(model, processor, [Example(*f) for f in examples], max_new_tokens=160)
    rows: dict[str, list[dict]] = {}
    for (messages, _, kind, _, _), reply in zip(examples, replies, strict=True):
        rows.setdefault(kind, []).append(fragments.score(messages[-1]["content"][0]["text"], reply))
    rows["all"] = [r for kind in fragments.KINDS for r in rows[kind]]
    return {kind: {part: round(sum(r[part] for r in got) / len(got), 4) for part in got[0]} | {"n": len(got)}
            for kind, got in rows.items()} | {"tile_hints": preset.tile_hints}


def step_table(metrics: dict) -> str:
    """The step-fragment results of `report` as a markdown table (empty for cards measured before them)."""
    steps = metrics.get("step_fragments")
    if not steps:
        return ""
    lines = ["| verdict kind | fragments | description | verdict | action |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['n']} | {v['description']:.3f} | {v['verdict']:.3f} | {v['action']:.3f} |"
              for k, v in steps.items() if isinstance(v, dict)]
    hints = "with" if steps["tile_hints"] else "without"
    return ("## The agent's step after a zoom (`fragments.py`)\n"
            f"Held-out two-view fragments {hints} tile hints, greedy: the reply's description, verdict (box included) "
            "and action (call or answer), each word for word against the teacher's.\n\n" + "\n".join(lines) + "\n")


def presence_from_description(model, processor, examples: list) -> dict:
    """Presence accuracy when the verdict is read from the model's own description (`tilesearch.presence_in_words`).

    Against the answer word (`skills["presence"]`) it tells perception errors from decision errors.
    """
    asked = [ex for ex in examples if ex.task == "presence"]
    hits: dict[str, list[float]] = {}
    for ex, reply in zip(asked, predict(model, processor, asked), strict=True):
        name = re.search(r"Is there an? (.+?) in this view", ex.messages[-2]["content"][-1]["text"]).group(1)
        ok = float(presence_in_words(reply, name) == ex.answer)
        for key in ("presence", f"presence/d{ex.depth}"):
            hits.setdefault(key, []).append(ok)
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(hits.items())} | {"n": len(asked)}


def description_words(model, processor, preset: Preset, n: int = 128) -> dict:
    """How often the description names each readable object's shape, and its dot colour, right.

    Finer than whole-description exact match: it shows which visual attribute is still missing
    (held-out views that show at least one readable object; objects matched in order).
    """
    shapes = preset.data.shapes
    pattern = re.compile(r"(\w+) (" + "|".join(shapes) + r")(?: with an? (\w+) dot)?")
    rng, examples = random.Random("description-words"), []
    while len(examples) < n:
        ex = make_example(preset, preset.data.test_seed * 7919 + rng.randrange(10**9), rng, "plain")
        if pattern.search(ex.messages[-1]["content"][0]["text"]):
            examples.append(ex)
    counts = {"colour": [0, 0], "shape": [0, 0], "dot": [0, 0]}
    for ex, reply in zip(examples, predict(model, processor, examples), strict=True):
        want, got = pattern.findall(ex.messages[-1]["content"][0]["text"]), pattern.findall(reply)
        for i, (colour, shape, dot) in enumerate(want):
            other = got[i] if i < len(got) else ("", "", "")
            for key, w, g in (("colour", colour, other[0]), ("shape", shape, other[1]), ("dot", dot, other[2])):
                if w:
                    counts[key][0] += w == g
                    counts[key][1] += 1
    return {k: round(ok / total, 4) for k, (ok, total) in counts.items() if total} | {"objects": counts["shape"][1]}


def recognition_by_size(model, processor, preset: Preset, n: int = 512) -> dict:
    """Recognition of the dot on held-out readable views, split by how large the dot looks.

    The report's mixed sample holds only about a hundred recognition questions; this one holds `n`. A dot
    is readable from `scenes.MARK_PX` view pixels, and quadrant tiles double it per zoom, so a dot first
    looks about 8 px, one zoom later about 16: the split at twice MARK_PX shows what one more zoom buys.
    """
    rng, edge = random.Random("recognition-by-size"), 2 * scenes.MARK_PX
    examples = [make_example(preset, preset.data.test_seed * 7919 + rng.randrange(10**9), rng, pose="recognition")
                for _ in range(n)]
    hits: dict[str, list[float]] = {"all": [], f"under {edge:g} px": [], f"{edge:g} px and over": []}
    for ex, reply in zip(examples, predict(model, processor, examples), strict=True):
        size = f"under {edge:g} px" if ex.detail_px < edge else f"{edge:g} px and over"
        for key in ("all", size):
            hits[key].append(float(is_correct(ex, reply)))
    return {k: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)} for k, v in hits.items() if v}


def recognition_line(metrics: dict) -> str:
    """One sentence: recognition on a larger sample, at the first readable size and one zoom closer."""
    sizes = metrics.get("recognition_by_size")
    if not sizes:
        return ""
    parts = ", ".join(f"{k} {v['accuracy']:.3f} ({v['n']})" for k, v in sizes.items() if k != "all")
    return (f"Recognition on {sizes['all']['n']} more held-out readable views (`release.recognition_by_size`): "
            f"{sizes['all']['accuracy']:.3f}; by the dot's size in the view, {parts}.")


def ship(model_dir: str | Path, target: str | Path, logs: tuple[str | Path, ...] = ("training_log.json",)) -> Path:
    """A bf16 copy of a finished model (half the bytes; loads as float32) with its logs.

    `logs`: files to copy beside it, relative to `model_dir` (or absolute): training logs, the
    stage's manifest.
    """
    model, processor = load(model_dir)
    save(model.to(torch.bfloat16), processor, target)
    for log in logs:
        source = Path(model_dir) / log
        shutil.copy(source, Path(target) / source.name)
    return Path(target)


def platform_summary() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU used"
    return f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, {gpu}"


def search_table(metrics: dict) -> str:
    """The tile-search results of `report` as a markdown table (presence from the answer word / the description)."""
    lines = ["| presence from | split | scenes | accuracy | mean zooms |", "| --- | --- | --- | --- | --- |"]
    for decide, key in (("answer word", "tile_search_easy_medium_12_zooms"),
                        ("description", "tile_search_easy_medium_12_zooms_description")):
        lines += [f"| {decide} | {k} | {v['n']} | {v['accuracy']:.3f} | {v['mean_zooms']:.2f} |"
                  for k, v in metrics.get(key, {}).items()]
    return "\n".join(lines)


def presence_line(metrics: dict) -> str:
    """One sentence: presence from the answer word against presence read from the description, and what the
    difference says (derived from the two numbers, never assumed)."""
    words = metrics.get("presence_from_description")
    if not words:
        return ""
    depths = ", ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in words.items() if "/" in k)
    read, answered = words["presence"], metrics["skills"]["presence"]
    if read > answered:
        verdict = (f"read from the description, {1 - read:.3f} of the questions are wrong instead of "
                   f"{1 - answered:.3f}: the answer word loses {read - answered:.3f} after the description, "
                   "in the decision.")
    elif read < answered:
        verdict = (f"the answer word is right more often than the description read by rule ({1 - answered:.3f} of the "
                   f"questions wrong instead of {1 - read:.3f}).")
    else:
        verdict = "the two are right equally often."
    return (f"Presence read from the model's own description instead of its answer word ({words['n']} questions; "
            f"`release.presence_from_description`): {read:.3f} ({depths}), against {answered:.3f} from the answer "
            f"word; {verdict}")


LICENSE = "apache-2.0"  # the kit's licence (LICENSE, pyproject.toml), and so its checkpoints'
TAGS = ("mini-o3", "visual-search", "multi-turn", "visualprobe-lite", "synthetic-data")


def front_matter(tags: tuple[str, ...] | list[str], base_model: str | None = None) -> str:
    """The YAML front matter of a Hugging Face model card for one of the kit's checkpoints.

    `base_model` must be a Hub model id (the Hub's card metadata): the kit's own checkpoints are not on the Hub,
    so a card names its parent in the text instead, and the data set (generated, not on the Hub) likewise.
    """
    lines = ["---", f"license: {LICENSE}", "library_name: transformers", "pipeline_tag: image-text-to-text"]
    if base_model:
        lines.append(f"base_model: {base_model}")
    lines += ["tags:", *[f"- {t}" for t in tags], "---"]
    return "\n".join(lines) + "\n"


def write_model_card(model_dir: str | Path, command: str, hardware: str, findings: str) -> Path:
    """README.md for a base checkpoint, from its training log and measured metrics (no number typed by hand).

    A Hugging Face model card: YAML front matter (`front_matter`), then what the model is and is for, its
    training data and command, its evaluation with the protocol, its limitations, and `findings` (what was
    tried). Every sentence that interprets a number is derived from that number.
    """
    model_dir = Path(model_dir)
    log = json.loads((model_dir / "training_log.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    skills = metrics["skills"]
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in skills.items() if k != "n")
    words = metrics["description_words"]
    search = search_table(metrics)
    base, data = log["preset"]["base"], log["preset"]["data"]
    tokens = max_visual_tokens(log["preset"]["max_pixels"])
    side = round(math.sqrt(log["preset"]["max_pixels"]))
    config = json.loads((model_dir / "config.json").read_text())
    vocab = config.get("text_config", config)["vocab_size"]  # Qwen2.5-VL as shipped keeps text keys at the top
    mix = ", ".join(f"{task} {w:g}" for task, w in zip(("presence", "recognition", "where", "box"),
                                                       base["task_weights"], strict=False))
    steps = base.get("step_share", 0)
    fragments_line = (f" {steps:.0%} of each batch is the agent's step after a zoom (`fragments.py`, the scripted "
                      "teacher's second turn of a search)." if steps else "")
    hints = "with" if log["preset"].get("tile_hints") else "without"
    where = f"quadrant {skills['where']:.3f} (chance 0.25)" if "where" in skills else ""
    box = f", box {skills['box']:.3f}" if "box" in skills else ""
    text = f"""{front_matter(TAGS)}
# {model_dir.name}: a tiny Qwen2.5-VL that can see VisualProbe-lite scenes

`Qwen2_5_VLForConditionalGeneration` at toy size ({log['parameters']['total']:,} parameters: vision
{log['parameters']['vision']:,}, language {log['parameters']['language']:,}), with a byte-level BPE
vocabulary of {vocab} tokens trained on the kit's texts, and the real `Qwen2_5_VLProcessor`
(every view resized to {log['preset']['max_pixels']:,} pixels = {tokens} visual tokens). Pretrained by
`mini_o3_lite/pretrain.py` on the tasks of `mini_o3_lite/base_tasks.py`: to describe a view of a VisualProbe-lite
scene in canonical words, then to answer presence, recognition and position questions from that description.
Load it with `mini_o3_lite.modeling.load(path)`, the same function that loads a real Qwen2.5-VL checkpoint.

## Intended use
A teaching model: the base of the kit's cold-start SFT and RL (`sft.ensure_sft`, `grpo.ensure_rl`), in the
place Qwen2.5-VL-7B-Instruct takes in Mini-o3 ([arXiv 2509.07969](https://arxiv.org/abs/2509.07969)), small
enough that every stage of the recipe runs on a CPU. It knows only the kit's synthetic scenes and sentences:
it is not a model for real images, other questions or other words.

## Training data
VisualProbe-lite, generated by the kit (`mini_o3_lite/scenes.py`; not on the Hugging Face Hub, nothing
downloaded): scenes of {' and '.join(data['shapes'])} shapes in {len(data['colours'])} colours, some with a dot, on a
{data['canvas']:,}-pixel canvas, seen whole or as quadrant tiles one to three zooms deep at {side} x {side} pixels.
Each example is one view with one question in the agent's chat format ({hints} tile hints), drawn from training
seeds (`base_tasks.py`); the task mix is {mix}.{fragments_line} Every number below is measured on held-out
scenes from test seeds.

## Training
- trained by `mini-o3-lite pretrain` (for a continuation of an earlier checkpoint, the stages and their commands
  are under "What was tried"); measured and shipped by `{command}`
- seed: {base['seed']}; steps: {log['steps']}; batch size: {base['batch_size']}; AdamW lr {base['lr']} with
  {base['warmup']:.0%} warm-up then cosine; text {base['layers']} layers x {base['hidden']}, vision
  {base['vision_depth']} blocks x {base['vision_hidden']} (full attention in every block)
- wall time: {log['wall_seconds'] / 60:.1f} minutes on {hardware}
- curves: `training_log.json` (loss per step, held-out greedy accuracy every {base['eval_every']} steps)

## Evaluation
Protocol: `release.report` (`mini-o3-lite release`), greedy decoding, held-out examples from test seeds in the
agent chat format; the numbers are read from `metrics.json` in this folder.

### Held-out skills ({skills['n']} examples)
Accuracy of the action (answer word; for `box`, a call whose box has IoU >= 0.5 with the object's
padded box); `describe` is the whole description word for word; `/dN` is the view depth (0 = full view,
1-3 = tiles one to three zooms deep).

| skill | accuracy |
| --- | --- |
{rows}

Words of the description, per readable object ({words['objects']} objects): colour {words['colour']:.3f},
shape {words['shape']:.3f}, dot colour {words['dot']:.3f}.

{presence_line(metrics)}

{recognition_line(metrics)}

### Do the skills compose? Scripted tile search with the model's own answers
`mini_o3_lite/tilesearch.py`: depth-first search over quadrant tiles, pruning on the model's
`no`, reading the dot when the model's description does; no ground truth. Held-out scenes, at most 12 zooms.
Presence comes from the model's answer word, or is read from its own description of the view (the
teacher's rule: the target named -> yes, a spot of its colour -> maybe, else no).

{search}

{step_table(metrics).replace("## ", "### ", 1)}
## Limitations
- Synthetic scenes only, at {tokens} visual tokens a view, with a {vocab}-token vocabulary learned on the kit's
  own sentences: it cannot describe a photograph or answer in other words.
- Position{': ' + where + box if where else ''}; the kit's search does not ask for it (tiles are chosen by the
  search, and with tile hints the next box is copied).
- A base, not an agent: it answers one question about one view; searching over turns is what SFT and RL from it
  teach.
- Greedy accuracies on held-out samples of the sizes given: one example moves an accuracy by 1/n of its sample,
  so differences of a few examples are noise.

## What was tried, and what each gave
{findings}
"""
    (model_dir / "README.md").write_text(text)
    return model_dir / "README.md"
