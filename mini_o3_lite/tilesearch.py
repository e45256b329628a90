"""A scripted tile search that sees only through a model: do the base VLM's skills compose?

Before SFT teaches the agent *when* to zoom, this checks that the tiny base VLM's perception is
enough to solve the task: a fixed depth-first search over the tile hierarchy (quadrants in reading
order, up to three levels), where every decision comes from the model's own greedy answers, never
from the scene's ground truth:

- presence ("Is there a purple square in this view?"): `no` prunes the tile, `maybe` (only a spot
  of that colour) and `yes` go on;
- recognition ("What colour is the dot on the purple square?") when the model says `yes`: if its
  description reads the target's dot, its answer ends the search; otherwise the search goes deeper.

With `decide="description"` the presence verdict is read from the model's own description of the view
(its "I see ..." before the answer) by the scripted teacher's rule, instead of from its yes/no: the
target named -> yes, only a spot of its colour -> maybe, else no. The two numbers separate perception
from decision: a base that describes right and answers wrong solves more searches read from its words.

Searches of a whole batch of records advance together (one batched `generate` per round), each as a
Python generator that yields the view it wants to ask about and receives the model's reply; the
questions are asked and decoded as the base's held-out examples are (`base_tasks.generate_replies`).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field

import torch
from PIL import Image

from . import description, protocol, scenes
from .base_tasks import Example, generate_replies

Query = tuple[str, Image.Image]  # (question, view)


@dataclass
class SearchResult:
    id: str
    answer: str | None
    correct: bool
    zooms: int
    difficulty: str | None
    visits: list[dict] = field(default_factory=list)  # region, depth, question, reply


def target_name(question: str) -> str:
    match = re.search(r"dot on the (.+?)\?", question)
    if match is None:
        raise ValueError(f"not a VisualProbe-lite question ('What colour is the dot on the ...?'): {question!r}")
    return match.group(1)


def presence_in_words(reply: str, name: str) -> str | None:
    """The presence verdict a reply's description implies (the teacher's rule); None without a description."""
    think = description.read(reply)  # the first sentence, not a look-up line after it
    if think is None or not think.startswith("I see "):
        return None
    objects, _, spots = think.partition("spots:")
    if re.search(rf"\b{re.escape(name)}\b", objects):
        return "yes"
    return "maybe" if re.search(rf"\b{re.escape(name.split()[0])}\b", spots) else "no"


DECIDERS = ("answer", "description")


def tile_search(canvas: Image.Image, name: str, max_zooms: int, max_depth: int = scenes.LEVELS,
                visits: list | None = None, decide: str = "answer") -> Generator[Query, str, str | None]:
    """Depth-first search over quadrant tiles; yields (question, view), receives the model's reply.

    `decide`: presence from the model's answer word ("answer") or from its description ("description").
    """
    if decide not in DECIDERS:
        raise ValueError(f"decide must be one of {DECIDERS}, got {decide!r}")
    zooms = 0
    visits = visits if visits is not None else []
    dot = re.compile(rf"\b{re.escape(name)} with an? (\w+) dot")

    def visit(region: scenes.Region, depth: int):
        nonlocal zooms
        view = canvas.crop(region)
        reply = yield (f"Is there a {name} in this view?", view)
        visits.append({"region": list(region), "depth": depth, "presence": reply})
        presence = protocol.extract_answer(reply) if decide == "answer" else presence_in_words(reply, name)
        if depth > 0 and presence == "no":
            return None
        if presence == "yes":
            reply = yield (f"What colour is the dot on the {name}?", view)
            visits[-1]["recognition"] = reply
            if dot.search(protocol.extract_think(reply) or "") and protocol.extract_answer(reply):
                return protocol.extract_answer(reply)
        if depth == max_depth:
            return None
        for box in scenes.TILE_BOXES:
            if zooms >= max_zooms:
                return None
            zooms += 1
            found = yield from visit(scenes.sub_region(region, box), depth + 1)
            if found:
                return found
        return None

    answer = yield from visit((0, 0, canvas.width, canvas.height), 0)
    visits.append({"zooms": zooms})
    return answer


@torch.no_grad()
def run_tile_search(model, processor, records: list, images: dict | None = None, root=None, max_zooms: int = 12,
                    batch_size: int = 32, system_prompt: bool = True, decide: str = "answer") -> list[SearchResult]:
    """Run one search per record, all advancing together; returns a result per record.

    Images come from `images[record.id]` when given (records made in memory), else from disk.
    """
    model.eval()
    searches, pending, results = {}, {}, {}
    for rec in records:
        visits: list = []
        canvas = images[rec.id] if images is not None else rec.load_image(root)
        gen = tile_search(canvas, target_name(rec.question), max_zooms, visits=visits, decide=decide)
        searches[rec.id] = (gen, visits, rec)
        pending[rec.id] = next(gen)
    while pending:
        ids = list(pending)[:batch_size]
        examples = []
        for rid in ids:
            question, view = pending[rid]
            messages = protocol.messages_for(question)[0 if system_prompt else 1 :]
            messages.append({"role": "assistant", "content": [{"type": "text", "text": ""}]})  # dropped by collate
            examples.append(Example(messages, [view], "search", 0, ""))
        for rid, reply in zip(ids, generate_replies(model, processor, examples, max_new_tokens=96), strict=True):
            gen, visits, rec = searches[rid]
            try:
                pending[rid] = gen.send(reply)
            except StopIteration as stop:
                del pending[rid]
                zooms = visits[-1]["zooms"]
                results[rid] = SearchResult(rid, stop.value, stop.value == rec.answer, zooms, rec.difficulty, visits)
    return [results[rec.id] for rec in records]


def summarise(results: list[SearchResult]) -> dict:
    """Accuracy and mean zooms, overall and per difficulty."""
    out = {}
    groups = {"all": results} | {d: [r for r in results if r.difficulty == d] for d in scenes.DIFFICULTIES}
    for key, rs in groups.items():
        if rs:
            out[key] = {"n": len(rs), "accuracy": round(sum(r.correct for r in rs) / len(rs), 4),
                        "mean_zooms": round(sum(r.zooms for r in rs) / len(rs), 2)}
    return out
