"""A trajectory, one run of the agent loop kept as data, and the folder format it is saved in.

`Trajectory` holds a conversation exactly as the model saw it (messages, images in order), the token
sequence with its model mask and sampling log-probabilities, each turn's call and the outcome (turns,
finish reason, exceeded, answer, reward). `rollout.py` builds it turn by turn; SFT, RL, evaluation and
the exports read it.

A saved folder holds `trajectories.jsonl`, one trajectory a line (`Trajectory.to_json` plus the question,
the answer key and, when known, the reasoning pattern; keys sorted), and each trajectory's images as
PNGs under `images/<id>/<k>.png` (k = 0 for the original, then the observations), written with the
record format's deterministic PNG writer so that the same trajectories give the same bytes. Token ids are
not saved: they follow from the messages and images through the chat template.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from .data import save_png

FILE = "trajectories.jsonl"


@dataclass
class Trajectory:
    id: str
    question: str
    answer_key: str | None
    messages: list[dict]
    images: list[Image.Image]  # [original, observation_1, ...] at full resolution
    input_ids: list[int] = field(default_factory=list)
    model_mask: list[int] = field(default_factory=list)  # 1 where the token was produced by the model
    logprobs: list[float] = field(default_factory=list)  # sampling log-prob of model tokens, 0 elsewhere
    calls: list[dict | None] = field(default_factory=list)  # per turn: bbox, source, valid, error
    turns: int = 0
    finish: str | None = None
    exceeded: bool = False
    answer: str | None = None
    reward: float | None = None
    context_images: list[Image.Image] = field(default_factory=list)  # in-context exemplars' images (few-shot)

    @property
    def done(self) -> bool:
        return self.finish is not None

    def to_json(self, image_names: Sequence[str] | None = None) -> dict:
        """The saved fields of one line of `trajectories.jsonl` (images as file names when given)."""
        return {
            "id": self.id, "messages": self.messages, "images": list(image_names or []), "reward": self.reward,
            "turns": self.turns, "finish": self.finish, "exceeded": self.exceeded, "answer": self.answer,
            "calls": self.calls,
        }


def image_names(t: Trajectory) -> list[str]:
    """The image files of a saved trajectory, relative to its folder: `images/<id>/<k>.png`."""
    return [f"images/{t.id}/{k}.png" for k in range(len(t.images))]


def save_trajectories(folder, trajectories, patterns: dict | None = None, append: bool = False) -> None:
    """`trajectories.jsonl` plus each trajectory's images as PNGs under `images/<id>/`.

    `patterns` ({id: reasoning pattern}) adds each line's `pattern`. `append` adds to an existing
    `trajectories.jsonl` (the scripted teacher writes one chunk at a time).
    """
    folder = Path(folder)
    lines = []
    for t in trajectories:
        names = image_names(t)
        (folder / "images" / t.id).mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, t.images, strict=True):
            save_png(image, folder / name)  # the record format's deterministic PNGs
        row = t.to_json(names) | {"question": t.question, "answer_key": t.answer_key}
        if patterns is not None:
            row["pattern"] = patterns[t.id]
        lines.append(json.dumps(row, sort_keys=True))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / FILE, "a" if append else "w") as f:
        f.write("".join(line + "\n" for line in lines))


def load_patterns(folder) -> dict[str, str]:
    """{trajectory id: reasoning pattern} of a folder written by `save_trajectories` with patterns."""
    lines = (Path(folder) / FILE).read_text().splitlines()
    return {row["id"]: row.get("pattern", "unknown") for row in map(json.loads, lines)}


def load_trajectories(folder, limit: int | None = None, images: bool = True) -> list[Trajectory]:
    """Trajectories saved by `save_trajectories`, with their images, ready for SFT (`sft.to_dataset`).

    `limit`: the first trajectories only. `images=False` leaves each image as its file path (369
    tiny trajectories hold 2 GB of decoded images); `open_images` opens them for one trajectory.
    """
    folder, out = Path(folder), []
    lines = (folder / FILE).read_text().splitlines()
    for line_no, line in enumerate(lines[:limit], 1):
        try:
            row = json.loads(line)
            paths = [folder / name for name in row["images"]]
            pictures = [_open_rgb(path) for path in paths] if images else paths
            out.append(Trajectory(row["id"], row["question"], row["answer_key"], row["messages"], pictures,
                                  calls=row["calls"], turns=row["turns"], finish=row["finish"],
                                  exceeded=row["exceeded"], answer=row["answer"], reward=row["reward"]))
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError(f"{folder / FILE}, line {line_no}: cannot read this trajectory ({exc!r})") from exc
    return out


def _open_rgb(path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def open_images(trajectory: Trajectory) -> Trajectory:
    """A copy of a trajectory loaded with `images=False`, its images opened."""
    return replace(trajectory, images=[_open_rgb(p) if not hasattr(p, "size") else p for p in trajectory.images])
