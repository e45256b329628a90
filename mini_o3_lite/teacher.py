"""Cold-start trajectories: scripted search strategies that write exactly what the agent will say.

Mini-o3's cold start shows an existing VLM a handful of hand-written exemplar trajectories and keeps
the ones it completes correctly. The kit's tiny model cannot imitate exemplars in context, so the
main source here is a *scripted teacher*: a depth-first search over the tile hierarchy (DESIGN.md
section 6) that sees each view exactly as the scene's ground truth says a perfect perceiver would
(`scenes.seen`), and writes each turn as the agent must: the canonical description of the current
view, a short decision, then the call or the answer. Because the teacher decides only from what
the view shows and from the conversation so far, a model can learn to imitate every turn. Each
kind of decision has one fixed wording: with several, a tiny model decoding greedily splices them
("No orange square is hereove on", measured after SFT on varied wordings). Each decision starts with
its verdict; restating the target first ("Looking for the purple triangle: no purple here, next
tile.") was measured worse: 0 of 48 held-out answers, the answer turn reading like a call turn.
Naming the target's colour in every rejection matters too: with target-free rejections ("Not here:
next tile.", "Wrong shape: next tile."), meant to stop the agent copying a decoy's name from its own
description into a false answer, held-out accuracy fell from 0.28 to 0.06 of 96 (65 searches out of
turns): with no reminder of the target near the view, the verdicts themselves went wrong.
The target-maintenance share (0.25) was measured as well: with 0 or 0.5 of the trajectories
re-checking the target, 96 held-out questions gave 0.15 and 0.16 (0.25: 0.28, and 0.22 with another
SFT seed). Its re-check zooms the same box twice, yet without it the agent repeated boxes more, not
less (63 of 96 searches, against 50): its loops come from the box after "next tile", not from here.
Naming each zoom's tile at the end of its thought ("No red here: next tile. Tile 2.3.", quadrants 1-4
in reading order from the original down), so that the next box follows from a name by counting
rather than from box arithmetic, did not stop the loops either: 0.16 of 96 (29 out of turns, 13
invalid actions, repeated boxes in 60 searches), from the same base with the same SFT.
Boxes relative to the view they split (`absolute_boxes=False`, Mini-o3's form: the next tile is one
of four fixed boxes of the same `observation_<i>`) were measured again with the stage-3 base and SFT
recipe: 0.00 of 96 (89 out of turns); and three times the scenes for a third of the epochs (1,091
trajectories, the same 183 steps), 0.04 (70 out of turns): the successor box is learned from
repetition, if at all (`evaluate.diagnose`: the no-hint agent's box after "next tile" is the next
tile 46 of 610 times; its second zoom follows 72 of 95 times, its third 7 of 83). A scan of the 4 x 4
tiles in reading order, where the k-th zoom is the k-th tile whatever was seen, so that no box has to
follow from the one before: 0.15 of 96 (55 out of turns; followed for the first row, then lost).
Restating the box just viewed in each decision ("No red here: next tile after [0.25, 0.0, 0.5, 0.25].")
is worse still, 0.10 of 96 (21 invalid actions), and shows where the limit is: the restated box equals
the previous call's 93 of 95 times at the second zoom (always the first quadrant) and 38 of 80, 19 of
74, 10 of 63 at the next three. The tiny agent cannot even copy its last box from one image back.
Echoing the cropped box at the end of each observation turn ("This view: [..].", about 20 tokens
before the next call) gives 0.23: the third zoom follows 24 of 79 times, but the agent often zooms
the echoed box again (166 of 633 moves); the scan with "This is observation_<k>." there keeps count
longer (zoom 7: 24 and 40 of about 62) yet names the wrong target in its first turn in about 60 of
96 searches (0.05).
Verdicts that begin "The <target colour>" and copy what follows that colour in the description ("The
red one is not here: next tile.", "The red spot: zoom in.", "The red square is not it: next tile.")
are learned better (teacher-forced, `evaluate.teacher_forced`: 0.71 of verdicts against 0.53), except
the decoy's rejection (0.03), and held-out accuracy is 0.24 of 96; with the target's shape named right after
the copied one ("The red square; the target is a triangle: next tile.") 0.14.

Reasoning patterns (Mini-o3's names), mixed by a setting:
- depth-first: quadrant after quadrant, deeper where the target's colour shows, back up when not;
- trial-and-error: a same-colour decoy is zoomed, rejected in words, and the search goes on from an
  earlier view (`source` names `original_image` or an earlier observation);
- target maintenance: before answering, the target's view is zoomed once more and re-read;
- direct: the right quadrant first at every level (what localisation buys: fewer turns); off by
  default, since the tiny base cannot localise, and most of the `full` preset's searches
  (`Preset.teacher_direct`), since a real VLM can.
The trajectories are replayed through the real agent loop (`rollout.replay_policy`), so their
crops, observations and tokens are exactly those of a model's rollout; only trajectories that end
with the correct answer within the turn budget are kept.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import dataclass

from . import description, protocol, scenes


@dataclass(frozen=True)
class TeacherConfig:
    # share of trajectories that pick the right quadrant first: for a model that can localise (a real
    # Qwen2.5-VL); the tiny base cannot (quadrant accuracy near chance), so there it would teach random orders
    direct: float = 0.0
    # boxes of the original image instead of quadrants of observation_<i>: a tiny model cannot track which
    # earlier observation to return to (measured: it loops on one tile), but maps a box to the next one
    absolute_boxes: bool = True
    maintenance: float = 0.25  # share that re-check the target before answering (0 and 0.5 measured worse)
    seed: int = 0


def search_turns(scene: scenes.Scene, preset, direct: bool, maintenance: bool, absolute: bool = False) -> list[str]:
    """The assistant turns of one scripted search, from the first look at the original to the answer.

    `absolute`: every zoom is written as a box of `original_image` (the same crop as the quadrant of
    the current view), so the next box follows from the previous box alone; otherwise a quadrant is
    written relative to the view it subdivides (`observation_<i>`), as in Mini-o3's exemplars.
    With `preset.tile_hints` (absolute boxes only), each decision after an observation ends with the box it
    zooms, in the words of that observation's hint ("No red here: next tile [..]."), so the call is a copy.
    """
    if preset.tile_hints and not absolute:
        raise ValueError("tile hints name boxes of original_image: use them with absolute_boxes=True")
    target = scene.target
    name = target.name
    views: list[scenes.Region] = [scenes.full_region(scene)]  # image i of the conversation
    turns: list[str] = []
    # DFS frames: (view index, depth, tile order, next position); a frame's tiles are zoomed from its view
    frames: list[list] = []

    def order(region: scenes.Region) -> list[int]:
        tiles = list(range(4))
        if direct:
            best = scenes.tile_of(region, target)
            tiles.remove(best)
            tiles.insert(0, best)
        return tiles

    def next_call() -> tuple[str, tuple] | None:
        """Pop exhausted frames; return (source, box) of the next tile to zoom, or None when all are done."""
        while frames:
            view, depth, tiles, pos = frames[-1]
            if pos < len(tiles):
                frames[-1][3] += 1
                return view, scenes.TILE_BOXES[tiles[pos]]
            frames.pop()
        return None

    thought, seen = description.of_view(scene, views[0], preset)
    frames.append([0, 0, order(views[0]), 0])
    decision = opening(name)
    depth_of = {0: 0}
    while True:
        call = next_call()
        if call is None:  # searched everything (cannot happen with perfect perception): give up honestly
            turns.append(protocol.assistant_text(f"{thought} {decision}", protocol.answer_text("unknown")))
            return turns
        parent, box = call
        region = scenes.sub_region(views[parent], box)
        source = protocol.source_name(parent)
        if absolute:
            W, H = views[0][2], views[0][3]
            source, box = protocol.ORIGINAL_IMAGE, (region[0] / W, region[1] / H, region[2] / W, region[3] / H)
        if preset.tile_hints and len(views) > 1:
            decision = naming_box(decision, box)
        turns.append(protocol.assistant_text(f"{thought} {decision}", protocol.tool_call_text(box, source)))
        views.append(region)
        index, depth = len(views) - 1, depth_of[parent] + 1
        depth_of[index] = depth
        thought, seen = description.of_view(scene, region, preset)
        kind, decision = verdict(scene, seen, depth)
        if kind == "answer":
            if maintenance:
                again = f"this view {protocol.box_text(box)}" if preset.tile_hints else "again"
                turns.append(protocol.assistant_text(
                    f"{thought} {decision[:-1]}: check {again}.",
                    protocol.tool_call_text(box, source)))
                views.append(region)
                thought, _ = description.of_view(scene, region, preset)
                decision = f"Checked: the dot on the {name} is {target.mark}."
            turns.append(protocol.assistant_text(f"{thought} {decision}", protocol.answer_text(target.mark)))
            return turns
        if kind in ("here", "spot"):  # zoom in: this view's tiles are searched next
            frames.append([index, depth, order(region), 0])


def opening(name: str) -> str:
    """The decision of every search's first turn, on the original image."""
    return f"Search the tiles for the {name}."


def naming_box(decision: str, box) -> str:
    """With tile hints, a move's decision ends with the box it zooms ("No red here: next tile [..].")."""
    return f"{decision[:-1]} {protocol.box_text(box)}."


def verdict(scene: scenes.Scene, seen: list, depth: int) -> tuple[str, str]:
    """The teacher's decision on a view `depth` zooms deep, from what it shows (`scenes.seen`): (kind, words).

    Kinds: "answer" (the dot is readable), "here" (the target, too small to read: zoom in), "spot" (a
    speck of its colour: zoom in), "decoy" (its colour on another shape) and "none"; the last four end
    in a move. One function, so the scripted searches and the base's step fragments (`fragments.py`)
    say the same words.
    """
    target = scene.target
    name, colour = target.name, target.colour
    found = next((lv for o, lv in seen if o.role == "target"), None)
    same_colour = [(o, lv) for o, lv in seen if o.colour == colour]
    if found == "mark":
        return "answer", f"The {name} has {scenes.article(target.mark)} {target.mark} dot."
    if found == "shape" and depth < scenes.LEVELS:
        return "here", f"The {name} is here: zoom in."
    if any(lv == "spot" for _, lv in same_colour) and depth < scenes.LEVELS:
        return "spot", f"{scenes.article(colour).capitalize()} {colour} spot: zoom in."
    if [o for o, _ in same_colour if o.role != "target"]:
        return "decoy", f"Not the {name}: next tile."
    return "none", f"No {colour} here: next tile."


def pattern_of(turns: list[str], direct: bool, maintenance: bool) -> str:
    """The reasoning pattern a trajectory shows (for statistics): the most specific one present."""
    if maintenance:
        return "target_maintenance"
    if any(". Not the " in t for t in turns):
        return "trial_and_error"
    return "direct" if direct else "depth_first"


def scripted_trajectories(records, images, processor, preset, config: TeacherConfig, max_turns: int,
                          save_to=None, chunk: int = 32, fit_context: bool = True):
    """Run the scripted teacher on every record through the agent loop; returns (kept, patterns, stats).

    Kept trajectories end with the correct answer within `max_turns` turns and, with `fit_context`,
    within the preset's context: the whole conversation in `context_length` tokens, since SFT trains on
    it whole and a replayed script has no turn left to generate (so no `context_reserve`). The rest are
    counted by how they ended ("context" for those too long). `fit_context=False` keeps searches of any
    length, to measure what they cost (`pixelsweep.teacher_cost`). The records are replayed `chunk` at
    a time. With `save_to`, each chunk's kept trajectories are written there as soon as they are
    replayed (`save_trajectories`) and come back holding their image files' paths, as
    `load_trajectories(images=False)` gives them: each one holds its 1,024-px original and crops, and a
    training split of them held at once costs 2 GB.
    """
    from dataclasses import replace
    from pathlib import Path

    from .rollout import RolloutConfig, replay_policy, rollout

    rng = random.Random(f"teacher/{config.seed}")
    script, patterns = {}, {}
    for rec in records:
        direct, maintenance = rng.random() < config.direct, rng.random() < config.maintenance
        scene = scenes.scene_from_meta(rec.meta, rec.difficulty)
        script[rec.id] = search_turns(scene, preset, direct, maintenance, config.absolute_boxes)
        patterns[rec.id] = pattern_of(script[rec.id], direct, maintenance)
    context = preset.context_length if fit_context else sys.maxsize
    settings = RolloutConfig(max_turns=max_turns, context_length=context, context_reserve=0,
                             max_images=max_turns + 1, batch_size=chunk, hints=preset.tile_hints)
    kept, dropped = [], Counter()
    for start in range(0, len(records), chunk):
        trajs = rollout(records[start:start + chunk], images[start:start + chunk], processor,
                        replay_policy(script), settings)
        for t in trajs:
            t.reward = float(t.answer == t.answer_key)
            if len(t.input_ids) > context:  # the answer turn itself passed the context (the loop checks observations)
                t.finish, t.exceeded = "context", True
        right = [t.finish == "answer" and t.answer == t.answer_key for t in trajs]
        dropped.update(t.finish for t, ok in zip(trajs, right, strict=True) if not ok)
        good = [t for t, ok in zip(trajs, right, strict=True) if ok]
        if save_to is not None:
            save_trajectories(save_to, good, patterns, append=start > 0)
            good = [replace(t, images=[Path(save_to) / name for name in _image_names(t)]) for t in good]
        kept += good
    stats = {
        "records": len(records),
        "kept": len(kept),
        "yield": round(len(kept) / max(1, len(records)), 4),
        "patterns": dict(Counter(patterns[t.id] for t in kept)),
        "turns": dict(sorted(Counter(t.turns for t in kept).items())),
        "dropped_finish": dict(dropped),
    }
    return kept, patterns, stats


def _image_names(t) -> list[str]:
    return [f"images/{t.id}/{k}.png" for k in range(len(t.images))]


def save_trajectories(folder, trajectories, patterns: dict | None = None, append: bool = False) -> None:
    """`trajectories.jsonl` (DESIGN.md section 5) plus each trajectory's images as PNGs under `images/<id>/`.

    `append` adds to an existing `trajectories.jsonl` (the teacher writes one chunk at a time).
    """
    import json
    from pathlib import Path

    from .data import save_png

    folder = Path(folder)
    lines = []
    for t in trajectories:
        names = _image_names(t)
        (folder / "images" / t.id).mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, t.images, strict=True):
            save_png(image, folder / name)  # the record format's deterministic PNGs
        row = t.to_json(names) | {"question": t.question, "answer_key": t.answer_key}
        if patterns is not None:
            row["pattern"] = patterns[t.id]
        lines.append(json.dumps(row, sort_keys=True))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "trajectories.jsonl", "a" if append else "w") as f:
        f.write("".join(line + "\n" for line in lines))


def load_patterns(folder) -> dict[str, str]:
    """{trajectory id: reasoning pattern} of a folder written by `save_trajectories` with patterns."""
    import json
    from pathlib import Path

    lines = (Path(folder) / "trajectories.jsonl").read_text().splitlines()
    return {row["id"]: row.get("pattern", "unknown") for row in map(json.loads, lines)}


def load_trajectories(folder, limit: int | None = None, images: bool = True) -> list:
    """Trajectories saved by `save_trajectories`, with their images, ready for SFT (`sft.to_dataset`).

    `limit`: the first trajectories only. `images=False` leaves each image as its file path (369
    tiny trajectories hold 2 GB of decoded images); `open_images` opens them for one trajectory.
    """
    import json
    from pathlib import Path

    from .rollout import Trajectory

    folder, out = Path(folder), []
    lines = (folder / "trajectories.jsonl").read_text().splitlines()
    for line_no, line in enumerate(lines[:limit], 1):
        try:
            row = json.loads(line)
            paths = [folder / name for name in row["images"]]
            pictures = [_open_rgb(path) for path in paths] if images else paths
            out.append(Trajectory(row["id"], row["question"], row["answer_key"], row["messages"], pictures,
                                  calls=row["calls"], turns=row["turns"], finish=row["finish"],
                                  exceeded=row["exceeded"], answer=row["answer"], reward=row["reward"]))
        except (ValueError, KeyError, OSError) as exc:
            where = folder / "trajectories.jsonl"
            raise ValueError(f"{where}, line {line_no}: cannot read this trajectory ({exc!r})") from exc
    return out


def _open_rgb(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def open_images(trajectory):
    """A copy of a trajectory loaded with `images=False`, its images opened."""
    from dataclasses import replace

    return replace(trajectory, images=[_open_rgb(p) if not hasattr(p, "size") else p for p in trajectory.images])


# ----------------------------------------------------------------------------------------------
# The few-shot VLM teacher (Mini-o3's cold-start recipe)
# ----------------------------------------------------------------------------------------------


def pick_exemplars(trajectories, patterns: dict[str, str], per_pattern: int = 1) -> list:
    """The shortest kept trajectories of each reasoning pattern: the exemplars shown in context."""
    out = []
    for pattern in ("direct", "depth_first", "trial_and_error", "target_maintenance"):
        same = sorted((t for t in trajectories if patterns.get(t.id) == pattern), key=lambda t: (len(t.messages), t.id))
        out += same[:per_pattern]
    return out


def fewshot_context(exemplars) -> tuple[list[dict], list]:
    """(messages, images) of the exemplars, without their system prompts, in the order shown."""
    messages, images = [], []
    for t in exemplars:
        messages += t.messages[1:]
        images += t.images
    return messages, images


def fewshot_trajectories(model, processor, records, images, exemplars, preset, max_turns: int,
                         samples: int = 1, temperature: float = 0.7, seed: int = 0, progress: bool = False,
                         policy=None):
    """Mini-o3's few-shot teacher: exemplars in context, the model runs the agent loop, correct ones are kept.

    Each record is tried `samples` times (sampling at `temperature`, seeds seed, seed+1, ...). A kept
    trajectory ends with the correct answer; duplicates (same record, same assistant turns) are
    dropped; the exemplars are cut out of the kept conversations, so they read like any other
    trajectory (system prompt, question, turns). `policy` replaces the model's (tests). Returns
    (kept, stats).
    """
    from dataclasses import replace

    from .rollout import RolloutConfig, model_policy, rollout

    context = fewshot_context(exemplars)
    cfg = RolloutConfig(max_turns=max_turns, max_new_tokens=preset.max_new_tokens, context_length=10**6,
                        max_images=max_turns + 1, temperature=temperature, batch_size=preset.eval_batch_size,
                        hints=preset.tile_hints)
    tried, kept, seen = [], [], set()
    for k in range(samples):
        cfg_k = replace(cfg, seed=seed + k)
        tried += rollout(records, images, processor, policy or model_policy(model, cfg_k), cfg_k, progress, context)
    tokens = round(sum(len(t.input_ids) for t in tried) / max(1, len(tried)))  # exemplars included
    for t in tried:
        t.reward = float(t.finish == "answer" and t.answer == t.answer_key)
        key = (t.id, tuple(m["content"][0]["text"] for m in t.messages if m["role"] == "assistant"))
        if t.reward and key not in seen:
            seen.add(key)
            # cut the exemplars out; the ids/masks included them, so they are dropped (SFT re-renders the messages)
            t.messages = t.messages[:1] + t.messages[1 + len(context[0]):]
            t.context_images, t.input_ids, t.model_mask, t.logprobs = [], [], [], []
            kept.append(t)
    stats = {
        "records": len(records), "samples": samples, "tried": len(tried), "correct": int(sum(t.reward for t in tried)),
        "kept": len(kept), "yield": round(len(kept) / max(1, len(tried)), 4),
        "mean_tokens_with_exemplars": tokens,
        "finish": dict(Counter(t.finish for t in tried)),
        "turns_kept": dict(sorted(Counter(t.turns for t in kept).items())),
    }
    return kept, stats


def ensure_coldstart(preset, config: TeacherConfig | None = None, max_turns: int | None = None):
    """`runs/<preset>/coldstart/`: scripted trajectories on the training split, built once per config.

    Returns (folder, manifest); the manifest's metrics are the teacher's statistics (yield, patterns,
    turns). `config` defaults to the preset's share of direct searches (`teacher_direct`); `max_turns` to
    the test-time budget: the cold start shows whole searches.
    """
    from dataclasses import asdict

    from .data import LazyImages, read_records
    from .manifest import cached_stage, stage_dir
    from .modeling import load_processor, model_path

    config = config or TeacherConfig(direct=preset.teacher_direct, seed=preset.seed)
    max_turns = max_turns or preset.max_turns_eval
    data_dir, data = scenes.ensure_dataset(preset, "train", preset.sft.n_trajectories)
    path = model_path(preset.model_path, preset.name)

    def build(folder):
        records = read_records(data_dir / "train.jsonl")[: preset.sft.n_trajectories]
        images = LazyImages(records, data_dir)
        processor = load_processor(path, preset.min_pixels, preset.max_pixels)
        return scripted_trajectories(records, images, processor, preset, config, max_turns, save_to=folder)[2]

    settings = {"teacher": asdict(config), "max_turns": max_turns, "n": preset.sft.n_trajectories}
    if preset.tile_hints:  # only when on, so the cache key of Mini-o3's form is unchanged
        settings["tile_hints"] = True
    folder = stage_dir(preset.name, "coldstart")
    return folder, cached_stage(folder, settings, build, {"data": data["config_hash"], "processor": str(path)},
                                config.seed)
