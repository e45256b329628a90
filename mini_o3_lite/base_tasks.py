"""The base model's tasks: examples, batches with the loss on the last turn, greedy evaluation.

The kit's tiny model starts from nothing, while Mini-o3 starts from Qwen2.5-VL-7B-Instruct, which already
reads small things. A model this small learns to describe a view in words sooner than it learns to bind a
question to the image, so every task is answered the way the agent will answer: the assistant turn's
`<think>` first describes the view in canonical words (`description.sentence`), then the action follows
from those words:

- presence:    "Is there a purple triangle in this view?"  -> yes / maybe (only a spot) / no
- recognition: "What colour is the dot on the purple triangle?" on views where the dot is readable
- where:       "Which quadrant of this view holds the purple object?" -> top-left / ...
- box:         "Zoom in on the purple object." -> a Mini-o3 `<grounding>` call with its relative box

Views are full scenes and tiles of the tile hierarchy at every depth, at the preset's pixel budget, in
the agent's chat format (system prompt, image, question); a share of examples shows the view as an
observation after a first zoom, as the agent sees it, and with `base.step_share` a share are the agent's
step after a zoom (`fragments.py`). A batch is determined by (seed, split, index) alone, so a training
run resumes exactly. The same examples, scored greedily (`evaluate`), measure every base checkpoint
(`pretrain.train` during training, `release.report` before shipping), and `tilesearch` asks its
questions through the same batching and decoding.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import torch
from PIL import Image

from . import description, fragments, protocol, scenes
from .presets import BaseConfig, Preset

TASKS = ("presence", "recognition", "where", "box")
# Batches come in three layouts, so that examples of one batch have similar lengths (padding is
# the main cost on a CPU): plain (one view, no system prompt), two-view (the view arrives as
# observation_1 after a first zoom, as in the agent loop) and with the ~160-token system prompt.
LAYOUTS = {"plain": 0.8, "two_view": 0.15, "system": 0.05}


@dataclass
class Example:
    messages: list[dict]  # the whole conversation; the last assistant turn is the target
    images: list[Image.Image]
    task: str
    depth: int
    answer: str
    presence_blind: bool = False  # another scene's view under these words: loss on what follows the description
    detail_px: float | None = None  # recognition: the dot's diameter in view pixels (readable from `scenes.MARK_PX`)


# ----------------------------------------------------------------------------------------------
# Examples
# ----------------------------------------------------------------------------------------------


def random_view(scene: scenes.Scene, rng: random.Random,
                depth_weights: tuple[float, ...] = BaseConfig.depth_weights) -> tuple[scenes.Region, int, list[int]]:
    """A view of the tile hierarchy: half the time along the target's path, else random tiles."""
    depth = rng.choices(range(4), depth_weights)[0]
    follow = rng.random() < 0.5
    region, tiles = scenes.full_region(scene), []
    for _ in range(depth):
        i = scenes.tile_of(region, scene.target) if follow else rng.randrange(4)
        tiles.append(i)
        region = scenes.sub_region(region, scenes.TILE_BOXES[i])
    return region, depth, tiles


def relative_box(outer: scenes.Region, inner: scenes.Region, digits: int = 2) -> list[float]:
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    box = [(inner[0] - outer[0]) / w, (inner[1] - outer[1]) / h, (inner[2] - outer[0]) / w, (inner[3] - outer[1]) / h]
    return [round(min(max(v, 0.0), 1.0), digits) for v in box]


def task_turn(task: str, seen: list, rng: random.Random, data, region,
              source: str = protocol.ORIGINAL_IMAGE, hard: float = 0.0) -> tuple[str, str, str] | None:
    """(question, action text, answer) for a task on a view, or None when the view cannot pose it.

    `source` is the name of the view in the conversation (a box is relative to it). `hard`: share of
    presence questions that name a shape in view with a colour seen elsewhere in it (another object's,
    a dot's or a spot's): the mix-up the base made most (`base.presence_hard`).
    """
    colours, shapes = data.colours, data.shapes
    if task == "presence":
        if hard and seen and rng.random() < hard:
            obj = rng.choice(seen)[0]
            elsewhere = {o.colour for o, _ in seen} | {o.mark for o, lv in seen if lv == "mark"}
            elsewhere -= {obj.colour}
            colour = rng.choice(sorted(elsewhere) or [c for c in colours if c != obj.colour])
            shape = obj.shape
        else:
            colour, shape = rng.choice(colours), rng.choice(shapes)
            if seen and rng.random() < 0.6:  # ask about something that is there, often
                obj = rng.choice(seen)[0]
                colour, shape = obj.colour, (obj.shape if rng.random() < 0.6 else shape)
        match = any(o.colour == colour and o.shape == shape and lv != "spot" for o, lv in seen)
        spot = any(o.colour == colour and lv == "spot" for o, lv in seen)
        answer = "yes" if match else "maybe" if spot else "no"
        return f"Is there a {colour} {shape} in this view?", protocol.answer_text(answer), answer
    if task == "recognition":
        names = [o.name for o, _ in seen]
        readable = [o for o, lv in seen if lv == "mark" and names.count(o.name) == 1]
        if not readable:
            return None
        obj = next((o for o in readable if o.role == "target"), None) or rng.choice(readable)
        return f"What colour is the dot on the {obj.name}?", protocol.answer_text(obj.mark), obj.mark
    colours_seen = [o.colour for o, _ in seen]
    unique = [o for o, _ in seen if colours_seen.count(o.colour) == 1]
    if not unique:
        return None
    obj = rng.choice(unique)
    if task == "where":
        answer = scenes.TILE_NAMES[scenes.tile_of(region, obj)]
        return f"Which quadrant of this view holds the {obj.colour} object?", protocol.answer_text(answer), answer
    x0, y0, x1, y1 = obj.box
    pad = (x1 - x0) // 2
    box = relative_box(region, (x0 - pad, y0 - pad, x1 + pad, y1 + pad))
    call = protocol.tool_call_text(box, source, digits=2)
    return f"Zoom in on the {obj.colour} object.", call, json.dumps(box)


def make_example(preset: Preset, seed: int, rng: random.Random, layout: str = "system", train: bool = False,
                 pose: str | None = None) -> Example:
    """One pretraining example from a freshly generated scene (train and test use disjoint seeds).

    `train`: draw tasks with the preset's training mix (`base.task_weights`, `base.depth_weights`, `base.presence_hard`,
    `base.presence_blind`, and a share `base.step_share` of the agent's step after a zoom, `fragments.py`);
    held-out examples always use the default mix, so every checkpoint is measured on the same questions.
    `pose`: this task instead of one drawn from the mix (a view that cannot pose it is redrawn).
    """
    defaults = BaseConfig()
    if train and preset.base.step_share and rng.random() < preset.base.step_share:
        return Example(*fragments.step_example(preset, seed, rng))
    weights = preset.base.task_weights if train else defaults.task_weights
    hard = preset.base.presence_hard if train else defaults.presence_hard
    depths = preset.base.depth_weights if train else defaults.depth_weights
    data = preset.data
    while True:
        difficulty = rng.choice(list(scenes.DIFFICULTIES))
        scene = scenes.generate(seed, difficulty, data.canvas, preset.min_pixels, preset.max_pixels,
                                data.colours, data.shapes)
        region, depth, tiles = random_view(scene, rng, depths)
        seen = scenes.seen(scene, region, preset.min_pixels, preset.max_pixels)
        task = pose or rng.choices(TASKS, weights)[0]
        two_view = depth > 0 and layout == "two_view"  # the view arrives as observation_1
        turn = task_turn(task, seen, rng, data, region, "observation_1" if two_view else protocol.ORIGINAL_IMAGE, hard)
        if turn is not None:
            break
        seed += 1 + rng.randrange(1000)  # stay in this split's seed stream
    question, action, answer = turn
    detail = None
    if task == "recognition":  # how large the asked dot looks: readable from MARK_PX, easy from twice that
        obj = next(o for o, lv in seen if lv == "mark" and question.endswith(f"the {o.name}?"))
        detail = round(obj.mark_size * scenes.view_scale(region, preset.min_pixels, preset.max_pixels), 1)
    canvas = scene.render()
    view = canvas.crop(region)
    side = random.Random(f"blind/{seed}")  # its own stream: the other examples of a run stay as they were
    blind = train and task == "presence" and side.random() < preset.base.presence_blind
    if blind:  # another scene's view under this view's words: only the words tell the answer
        other = scenes.generate(seed + 1 + side.randrange(1000), side.choice(list(scenes.DIFFICULTIES)), data.canvas,
                                preset.min_pixels, preset.max_pixels, data.colours, data.shapes)
        view = other.render().crop(random_view(other, side)[0])
    thought = description.sentence(seen, data.colours, data.shapes)
    if task == "presence" and preset.base.presence_lookup:
        thought += " " + scenes.lookup(seen, question.split()[3], data.shapes)  # "Is there a <colour> ..."
    target = protocol.assistant_text(thought, action)
    messages = protocol.messages_for(question)[0 if layout == "system" else 1 :]
    images = [view]
    if two_view:
        full = scenes.full_region(scene)
        seen0 = scenes.seen(scene, full, preset.min_pixels, preset.max_pixels)
        first = protocol.assistant_text(
            description.sentence(seen0, data.colours, data.shapes),
            protocol.tool_call_text(relative_box(full, region, 3), protocol.ORIGINAL_IMAGE),
        )
        messages += [{"role": "assistant", "content": [{"type": "text", "text": first}]},
                     protocol.observation_message(1)]
        images = [canvas, view]
    messages.append({"role": "assistant", "content": [{"type": "text", "text": target}]})
    return Example(messages, images, task, depth, answer, blind, detail)


def example_batch(preset: Preset, split: str, index: int, n: int) -> list[Example]:
    """Batch `index` of a split: determined by (seed, split, index) alone, which makes resume exact."""
    stream = preset.data.train_seed if split == "train" else preset.data.test_seed
    rng = random.Random(f"pretrain/{preset.base.seed}/{split}/{index}")
    layout = rng.choices(list(LAYOUTS), list(LAYOUTS.values()))[0] if split == "train" else "system"
    return [make_example(preset, stream * 7919 + rng.randrange(10**9), rng, layout, split == "train") for _ in range(n)]


def corpus(preset: Preset, n: int = 3000) -> list[str]:
    """Texts the tokenizer's merges are learned from: prompts, observations, thoughts, calls, answers."""
    texts = [protocol.SYSTEM_PROMPT, protocol.error_text("bbox_2d must be a list of 4 numbers")]
    texts += [" ".join(protocol.observation_text(i)) for i in range(1, 41)]
    rng = random.Random(f"corpus/{preset.base.seed}")
    for _ in range(n):
        ex = make_example(preset, rng.randrange(10**9), rng)
        texts += [c["text"] for m in ex.messages for c in m["content"] if c["type"] == "text"]
    for depth in range(1, 5):
        for box in scenes.TILE_BOXES:
            texts.append(protocol.tool_call_text(box, protocol.source_name(depth - 1)))
    # sentences in the register of the teacher's decisions (not `teacher.verdict`'s own sentences), so that the
    # tokenizer's merges cover the words of the agent's decisions; changing them changes a fresh base's vocabulary
    for colour in preset.data.colours:
        for shape in preset.data.shapes:
            for tile in scenes.TILE_NAMES:
                texts += [
                    f"No {colour} here, so the {colour} {shape} is elsewhere: back to the original image.",
                    f"A {colour} spot is here: zoom in on the {tile} tile to check it.",
                    f"This is not the {colour} {shape}; back to the previous view, next tile {tile}.",
                    f"The {colour} {shape} is here but its dot is too small: zoom in closer.",
                    f"The dot on the {colour} {shape} is {colour}. Let me check it again before answering.",
                ]
    return texts


# ----------------------------------------------------------------------------------------------
# Batches with loss on the final assistant turn only
# ----------------------------------------------------------------------------------------------


def collate(examples: list[Example], processor, train: bool = True) -> dict[str, torch.Tensor]:
    """Tokenise conversations with their images; labels cover only the last assistant turn.

    Only the last turn is the target: in a two-view example the first assistant turn is context, which
    TRL's assistant-only loss would also train on; a presence-blind example masks its description too.

    With `train=False` the last assistant turn is left out and a generation prompt added (left
    padding), for greedy evaluation.
    """
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "right" if train else "left"
    convs = [ex.messages if train else ex.messages[:-1] for ex in examples]
    texts = [processor.apply_chat_template(c, tokenize=False, add_generation_prompt=not train) for c in convs]
    batch = processor(text=texts, images=[im for ex in examples for im in ex.images], padding=True,
                      return_tensors="pt")
    if train:
        batch["labels"] = final_turn_labels(batch["input_ids"], batch["attention_mask"], tokenizer)
        for row, ex in enumerate(examples):
            if ex.presence_blind:  # mask the description: the loss is on the look-up line, if any, and the answer
                target = ex.messages[-1]["content"][0]["text"]
                line = description.split(target)[1]
                marker = line or "<answer"
                labelled = (batch["labels"][row] != -100).nonzero().flatten().tolist()
                ids = batch["input_ids"][row].tolist()
                # the first token of the shortest labelled tail that holds the marker (it may merge with a neighbour)
                start = next(k for k in reversed(labelled) if marker in tokenizer.decode(ids[k : labelled[-1] + 1]))
                batch["labels"][row, :start] = -100
    return dict(batch)


def final_turn_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor, tokenizer) -> torch.Tensor:
    """-100 everywhere but the final assistant turn's text and its <|im_end|>."""
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    header = len(tokenizer("assistant\n")["input_ids"])
    labels = torch.full_like(input_ids, -100)
    for row in range(input_ids.shape[0]):
        ids = input_ids[row].tolist()
        start = max(i for i, t in enumerate(ids) if t == start_id) + 1 + header
        end = max(i for i, t in enumerate(ids) if t == end_id and attention_mask[row, i])
        labels[row, start : end + 1] = input_ids[row, start : end + 1]
    return labels


# ----------------------------------------------------------------------------------------------
# Evaluation (held-out scenes, greedy decoding)
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def generate_replies(model, processor, examples: list[Example], max_new_tokens: int = 96) -> list[str]:
    """Greedy replies to one batch of conversations (their final assistant turn left out), as text.

    The model's train/eval mode is left to the caller.
    """
    batch = collate(examples, processor, train=False)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def predict(model, processor, examples: list[Example], batch_size: int = 32, max_new_tokens: int = 96) -> list[str]:
    """Greedy replies to the examples' conversations in batches, the model in eval mode meanwhile."""
    model.eval()
    replies = []
    for i in range(0, len(examples), batch_size):
        replies += generate_replies(model, processor, examples[i : i + batch_size], max_new_tokens)
    model.train()
    return replies


def is_correct(example: Example, reply: str) -> bool:
    """The reply's action is right: the answer word, or a zoom box overlapping the object (IoU >= 0.5)."""
    if example.task in fragments.KINDS:  # a step fragment: its move or answer, word for word
        return reply.split("</think>")[-1].strip() == example.answer
    action = protocol.parse_action(reply, len(example.images) - 1)
    if example.task == "box":
        return isinstance(action, protocol.ToolCall) and box_iou(list(action.bbox), json.loads(example.answer)) >= 0.5
    return isinstance(action, protocol.Answer) and action.text == example.answer


def evaluate(model, processor, examples: list[Example], batch_size: int = 32) -> dict:
    """Greedy accuracy per task and view depth: the action, and the description word for word."""
    hits: dict[str, list[float]] = {}
    # a step fragment's turn (description, verdict with its box, call) runs to ~130 tokens
    longest = 160 if any(ex.task in fragments.KINDS for ex in examples) else 96
    for ex, reply in zip(examples, predict(model, processor, examples, batch_size, longest), strict=True):
        ok = is_correct(ex, reply)
        if ex.task in fragments.KINDS:  # step fragments: the action, then the verdict as well
            truth = ex.messages[-1]["content"][0]["text"]
            pairs = (("fragment", ok), (f"fragment/{ex.task}", ok),
                     ("fragment/verdict", fragments.score(truth, reply)["verdict"]))
        else:
            described = description.read(reply) == description.read(ex.messages[-1]["content"][0]["text"])
            pairs = ((ex.task, ok), (f"{ex.task}/d{ex.depth}", ok), ("describe", described),
                     (f"describe/d{ex.depth}", described))
        for key, value in pairs:
            hits.setdefault(key, []).append(float(value))
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(hits.items())} | {"n": len(examples)}


def box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
