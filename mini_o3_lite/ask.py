"""One question about one photo: the agent's search turn by turn, and a picture of every zoom.

`mini-o3-lite ask --image PATH --question TEXT` runs this: the same agent loop as training and evaluation
(`rollout.py`) on a single record, then `turn_lines` says what happened at each turn (the thought, the call with
its box in pixels of the original photo, the error or the answer) and `write_report` saves each zoom-in image,
a picture of the whole search (`viz.draw_trajectory`) and the trajectory as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from . import protocol
from .data import Record
from .rollout import RolloutConfig, model_policy, rollout
from .trajectory import Trajectory
from .viz import draw_trajectory, zoom_regions

ZOOM_SIDE = 1024  # zoom pictures are written at most this long (a zoom into an 8K photo can be thousands of pixels)


def ask(model, processor, image: Image.Image, question: str, config: RolloutConfig,
        choices: list[str] | None = None) -> Trajectory:
    """One search on `image` (full resolution: every zoom is cut from it) for `question` (options: `choices`)."""
    record = Record(id="ask", image="", question=question, answer="", choices=choices)
    return rollout([record], [image], processor, model_policy(model, config), config)[0]


def turn_lines(traj: Trajectory) -> list[str]:
    """What happened at each turn, for printing: the model's words, then the zoom (box in pixels of the original),
    the error the tool reported, or the answer; last, how the search ended."""
    texts = [m["content"][0]["text"] for m in traj.messages if m["role"] == "assistant"]
    regions = iter(zoom_regions(traj.calls, *traj.images[0].size))
    lines, zooms = [], 0
    for turn, (text, call) in enumerate(zip(texts, traj.calls, strict=True), start=1):
        lines.append(f"turn {turn}: {text.strip()}")
        if call is None:
            lines.append(f"  answer: {traj.answer}")
        elif not call.get("executed", True):
            lines.append("  call not executed: no turns or images left")
        elif call.get("valid"):
            zooms += 1
            box = ", ".join(f"{v:.0f}" for v in next(regions))
            lines.append(f"  zoom {zooms}: bbox_2d {protocol.box_text(call['bbox'])} of {call['source']} "
                         f"= pixels [{box}] of the original -> {protocol.source_name(zooms)}")
        else:
            lines.append(f"  invalid: {call['error']}")
    lines.append(f"finish: {traj.finish} after {traj.turns} turns" + (" (exceeded)" if traj.exceeded else ""))
    return lines


def write_report(traj: Trajectory, out: str | Path, min_pixels: int, max_pixels: int) -> list[Path]:
    """`out/zoom_<i>.png` for every zoom-in image, `trajectory.png` (the photo with the numbered boxes, then what
    the model saw), `trajectory.json` (messages, calls, answer); returns the paths written."""
    import matplotlib.pyplot as plt  # deferred, as in viz.py: matplotlib loads only when something is drawn

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, view in enumerate(traj.images[1:], start=1):
        picture = view.copy()
        picture.thumbnail((ZOOM_SIDE, ZOOM_SIDE))
        written.append(out / f"zoom_{i}.png")
        picture.save(written[-1])
    fig = draw_trajectory(traj, min_pixels, max_pixels)
    written.append(out / "trajectory.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)
    names = ["original_image"] + [f"zoom_{i}.png" for i in range(1, len(traj.images))]
    written.append(out / "trajectory.json")
    written[-1].write_text(json.dumps(traj.to_json(names), indent=1) + "\n")
    return written
