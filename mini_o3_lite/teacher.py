"""Cold-start trajectories: scripted search strategies that write exactly what the agent will say.

Mini-o3's cold start shows an existing VLM a handful of hand-written exemplar trajectories and keeps
the ones it completes correctly (`fewshot.py`). The kit's tiny model cannot imitate exemplars in
context, so the main source here is a *scripted teacher*: a depth-first search over the tile hierarchy
(each view split into the four quadrants of `scenes.TILE_BOXES`, `scenes.LEVELS` levels deep) that sees
each view exactly as the scene's ground truth says a perfect perceiver would (`scenes.seen`), and writes
each turn as the agent must: the canonical description of the current view (`description.of_view`), a
short decision, then the call or the answer. The teacher decides only from what the view shows and from
the conversation so far, so a model can learn to imitate every turn.

How the decisions are written, each choice for a reason:
- each kind of decision has one fixed wording (`verdict`): given several, a tiny model decoding greedily
  splices them into one;
- each decision starts with its verdict, so that a turn that answers does not read like one that zooms;
- every rejection names the target's colour ("No red here: next tile."): the only reminder of the target
  next to the view, without which the verdicts themselves go wrong;
- a zoom is a box of `original_image` (`TeacherConfig.absolute_boxes`), so the next box follows from the
  previous box alone: a tiny model cannot keep track of which earlier observation to split;
- with tile hints (`hints.py`), a decision after an observation ends with the box it zooms, in the words of
  that observation's hint ("No red here: next tile [..]."), so the call is a copy from the context.

Reasoning patterns (Mini-o3's names), mixed by a setting:
- depth-first: quadrant after quadrant, deeper where the target's colour shows, back up when not;
- trial-and-error: a same-colour decoy is zoomed, rejected in words, and the search goes on from an
  earlier view;
- target maintenance: before answering, the target's view is zoomed once more and re-read;
- direct: the right quadrant first at every level (what localisation buys: fewer turns); off by
  default, since the tiny base cannot localise, and most of the `full` preset's searches
  (`Preset.teacher_direct`), since a real VLM can.
The trajectories are replayed through the real agent loop (`rollout.replay_policy`), so their
crops, observations and tokens are exactly those of a model's rollout; only trajectories that end
with the correct answer within the turn budget are kept, and they are saved in the kit's trajectory
format (`trajectory.py`). The wordings and settings tried instead, and what they measured, are in
`papers/experiments.md`.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import dataset, description, protocol, scenes
from .data import LazyImages, read_records
from .manifest import cached_stage, portable, stage_dir
from .modeling import load_processor, model_path
from .rollout import RolloutConfig, replay_policy, rollout
from .trajectory import image_names, save_trajectories


@dataclass(frozen=True)
class TeacherConfig:
    # share of trajectories that pick the right quadrant first: for a model that can localise (a real
    # Qwen2.5-VL); the tiny base cannot (quadrant accuracy near chance), so there it would teach random orders
    direct: float = 0.0
    # boxes of the original image instead of quadrants of observation_<i>: a tiny model cannot track which
    # earlier observation to return to (it loops on one tile), but maps a box to the next one
    absolute_boxes: bool = True
    maintenance: float = 0.25  # share that re-check the target before answering (the best of 0, 0.25 and 0.5)
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
    replayed (`trajectory.save_trajectories`) and come back holding their image files' paths, as
    `trajectory.load_trajectories(images=False)` gives them: each one holds its 1,024-px original and crops,
    and a training split of them held at once costs 2 GB. The replay samples nothing, so of the loop's
    settings only the turn, image and context limits, the batch size and the hints matter here.
    """
    rng = random.Random(f"teacher/{config.seed}")
    script, patterns = {}, {}
    for rec in records:
        direct, maintenance = rng.random() < config.direct, rng.random() < config.maintenance
        scene = scenes.scene_from_meta(rec.meta, rec.difficulty)
        script[rec.id] = search_turns(scene, preset, direct, maintenance, config.absolute_boxes)
        patterns[rec.id] = pattern_of(script[rec.id], direct, maintenance)
    context = preset.context_length if fit_context else sys.maxsize
    settings = RolloutConfig.for_preset(preset, max_turns, context_length=context, context_reserve=0, batch_size=chunk)
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
            good = [replace(t, images=[Path(save_to) / name for name in image_names(t)]) for t in good]
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


def ensure_coldstart(preset, config: TeacherConfig | None = None, max_turns: int | None = None):
    """`runs/<preset>/coldstart/`: scripted trajectories on the training split, built once per config.

    Returns (folder, manifest); the manifest's metrics are the teacher's statistics (yield, patterns,
    turns). `config` defaults to the preset's share of direct searches (`teacher_direct`); `max_turns` to
    the test-time budget: the cold start shows whole searches.
    """
    config = config or TeacherConfig(direct=preset.teacher_direct, seed=preset.seed)
    max_turns = max_turns or preset.max_turns_eval
    data_dir, data = dataset.ensure_dataset(preset, "train", preset.sft.n_trajectories)
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
    return folder, cached_stage(folder, settings, build, {"data": data["config_hash"], "processor": portable(path)},
                                config.seed)
