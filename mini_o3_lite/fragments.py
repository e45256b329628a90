"""Step fragments: the agent's second turn, practised by the tiny base before the cold start.

The cold start's hardest turn is the one after a zoom: describe the tile, decide (the target's dot
is readable, it is here, a speck of its colour, a decoy, nothing), then act on it with the right
box. Cold-start SFT alone taught the tiny model the descriptions of that step but not to copy the
tile hint's box into its verdict and call (papers/experiments.md). So the base continues its
pretraining with a share of such fragments (`BaseConfig.step_share`), each the conversation of a
search's second turn exactly as the teacher writes it:

    system, question + original image
    assistant: "I see <the original>. Search the tiles for the <target>." + a zoom to a tile
    user:      observation_1 (ending with the tile hint when the preset has them)
    assistant: "I see <the tile>. <teacher.verdict>" + its move (with hints: "... next tile [box]."
               and the call to that box), or the answer

The tile is one to three zooms deep, steered towards the target or a decoy so that every verdict
kind comes up in fixed shares (`KINDS`): a teacher's search meets them unevenly ("No <colour> here"
is about half its verdicts). The verdict's words come from `teacher.verdict`, the same function the
scripted searches use, so the base practises the very sentences its SFT data will hold.
"""

from __future__ import annotations

import random

from . import description, hints, protocol, scenes
from .teacher import naming_box, opening, verdict

KINDS = {"none": 0.3, "decoy": 0.2, "spot": 0.15, "here": 0.1, "answer": 0.25}
DEPTHS = (1, 2, 2, 3)  # zooms from the original to the fragment's tile


def step_example(preset, seed: int, rng: random.Random, kind: str | None = None):
    """One fragment from freshly generated scenes: (messages, images, kind, depth, action).

    `kind` (default: drawn from `KINDS`) is the verdict the last turn must give; scenes and tiles are
    drawn until one gives it (the seed moves on within its split's stream, as in `base_tasks.make_example`).
    """
    data = preset.data
    kind = kind or rng.choices(list(KINDS), list(KINDS.values()))[0]
    while True:
        scene = scenes.generate(seed, rng.choice(list(scenes.DIFFICULTIES)), data.canvas, preset.min_pixels,
                                preset.max_pixels, data.colours, data.shapes)
        seed += 1 + rng.randrange(1000)
        full = scenes.full_region(scene)
        decoys = [o for o in scene.objects if o.role == "decoy"]
        guide = scene.target if kind in ("answer", "here", "spot") else None
        if kind == "decoy" and decoys:
            guide = rng.choice(decoys)
        region, depth = full, rng.choice(DEPTHS)
        for _ in range(depth):  # towards the guide, with a tenth of the zooms anywhere
            i = scenes.tile_of(region, guide) if guide is not None and rng.random() < 0.9 else rng.randrange(4)
            region = scenes.sub_region(region, scenes.TILE_BOXES[i])
        seen = scenes.seen(scene, region, preset.min_pixels, preset.max_pixels)
        got, decision = verdict(scene, seen, depth)
        if got in ("here", "spot"):  # zoom in: the view's first quadrant, as the teacher's search does
            move = scenes.sub_region(region, scenes.TILE_BOXES[0])
        else:  # move on: the next tile of a depth-first search (None after the last one, or for an answer)
            move = scenes.next_tile(full, region) if got != "answer" else None
        if got == kind and (move is not None or kind == "answer"):
            break
    W, H = full[2], full[3]

    def fraction(r: scenes.Region) -> tuple[float, float, float, float]:
        return r[0] / W, r[1] / H, r[2] / W, r[3] / H

    first = protocol.assistant_text(f"{description.of_view(scene, full, preset)[0]} {opening(scene.target.name)}",
                                    protocol.tool_call_text(fraction(region), protocol.ORIGINAL_IMAGE))
    if kind == "answer":
        action = protocol.answer_text(scene.target.mark)
    else:
        action = protocol.tool_call_text(fraction(move), protocol.ORIGINAL_IMAGE)
        if preset.tile_hints:  # the teacher's words with hints: the verdict names the box it zooms
            decision = naming_box(decision, fraction(move))
    hint = hints.hint_text(fraction(region)) if preset.tile_hints else None
    last = protocol.assistant_text(f"{description.of_view(scene, region, preset)[0]} {decision}", action)
    messages = protocol.messages_for(scene.question) + [
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        protocol.observation_message(1, hint),
        {"role": "assistant", "content": [{"type": "text", "text": last}]},
    ]
    canvas = scene.render()
    return messages, [canvas, canvas.crop(region)], kind, depth, action


def held_out(preset, n_per_kind: int = 32) -> list[tuple]:
    """The same `n_per_kind` held-out fragments of each kind for every checkpoint (test seeds)."""
    rng = random.Random("fragments/held-out")
    return [step_example(preset, preset.data.test_seed * 7919 + rng.randrange(10**9), rng, kind)
            for kind in KINDS for _ in range(n_per_kind)]


def score(truth: str, reply: str) -> dict[str, bool]:
    """A reply against the fragment's target turn: its description, its verdict (the rest of the
    thought, box included), and its action (the call's box or the answer), each word for word."""
    def parts(text: str) -> tuple[str, str, str]:
        said, decision = description.split(text) or ("", "")
        return said, decision, text.split("</think>")[-1].strip()

    (d, v, a), (d2, v2, a2) = parts(truth), parts(reply)
    return {"description": d == d2, "verdict": v == v2, "action": a == a2}
