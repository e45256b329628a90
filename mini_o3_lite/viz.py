"""Pictures for the notebooks: boxes drawn on images, what the model sees, images in a row.

Everything here draws; nothing decides. Boxes are in pixels of the image they are drawn on (turn a
relative `bbox_2d` into pixels with `relative_to_pixels`). Figures stay small (a notebook is
committed with its outputs), so the defaults are a figure 8 inches wide at 80 dpi; the one turn the
trajectory browser draws at a time (`draw_turn`) is larger, so that the dot of a zoomed view shows.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .pixels import smart_resize
from .protocol import source_index

# matplotlib (and ipywidgets) are imported inside the functions that draw with them: deferred, so that
# importing the kit (the CLI, `ask`) does not load a plotting backend.

Box = Sequence[float]  # (x0, y0, x1, y1) in pixels of the image drawn on

# Distinct, readable on grey scenes; cycled when there are more boxes than colours.
BOX_COLOURS = ((255, 255, 255), (0, 0, 0), (255, 0, 255), (0, 255, 255), (255, 255, 0), (255, 128, 0))


def relative_to_pixels(bbox: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """A relative box ([0, 1] coordinates, Mini-o3's `bbox_2d`) in pixels of a `width` x `height` image."""
    x0, y0, x1, y1 = bbox
    return x0 * width, y0 * height, x1 * width, y1 * height


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Box],
    labels: Sequence[str] | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
    width: int | None = None,
    font_size: int | None = None,
    pad: float = 0,
) -> Image.Image:
    """A copy of `image` with each pixel box outlined and, when given, labelled at its top-left corner.

    `pad` grows every box by that many pixels on each side, so the outline does not hide what it marks.
    """
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"got {len(boxes)} boxes but {len(labels)} labels; pass one label per box")
    out = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(out)
    side = max(out.size)
    width = width or max(1, side // 200)
    font = ImageFont.load_default(size=font_size or max(10, side // 40))
    colours = colours or BOX_COLOURS
    for i, box in enumerate(boxes):
        colour = tuple(colours[i % len(colours)])
        x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=width)
        if labels is not None and labels[i]:
            draw.text((x0 + 2 * width, y0 + width), labels[i], fill=colour, font=font)
    return out


def model_view(image: Image.Image, min_pixels: int, max_pixels: int, upscale_to: int | None = None) -> Image.Image:
    """The image as the model gets it: resized (bicubic, like Qwen2.5-VL's processor) into the pixel budget.

    With `upscale_to`, the result is then enlarged with nearest-neighbour until its long side is about
    `upscale_to` pixels, so each of the model's pixels shows as a visible block (no new detail).
    """
    h, w = smart_resize(image.height, image.width, min_pixels, max_pixels)
    view = image.convert("RGB").resize((w, h), resample=Image.Resampling.BICUBIC)
    if upscale_to:
        k = max(1, round(upscale_to / max(w, h)))
        view = view.resize((w * k, h * k), resample=Image.Resampling.NEAREST)
    return view


def show_images(
    images: Sequence[Image.Image],
    titles: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
    figsize: tuple[float, float] = (8, 3),
    dpi: int = 80,
    fontsize: float = 8,
):
    """Images in one row: a title above and a caption (wrapped) below each. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=figsize, dpi=dpi, squeeze=False)
    for i, (ax, img) in enumerate(zip(axes[0], images, strict=True)):
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
        if captions is not None:
            chars = max(12, int(figsize[0] * 90 / (fontsize * len(images))))
            ax.set_xlabel(textwrap.fill(captions[i], chars), fontsize=fontsize)
    fig.tight_layout()
    return fig


def zoom_regions(calls: Sequence[dict | None], width: int, height: int) -> list[tuple[float, float, float, float]]:
    """Each valid zoom's region in pixels of the original image (nested zooms composed), in order.

    `calls` are a trajectory's per-turn calls (`trajectory.Trajectory.calls`): a box relative to its
    source, `original_image` or `observation_<i>`; region i + 1 is observation i + 1.
    """
    regions = [(0.0, 0.0, float(width), float(height))]
    for call in calls:
        if not call or not call.get("valid") or not call.get("executed", True):
            continue
        source = source_index(call["source"])
        x0, y0, x1, y1 = regions[source]
        bx0, by0, bx1, by1 = (min(max(v, 0.0), 1.0) for v in call["bbox"])
        w, h = x1 - x0, y1 - y0
        regions.append((x0 + bx0 * w, y0 + by0 * h, x0 + bx1 * w, y0 + by1 * h))
    return regions[1:]


def views_seen(traj) -> list[int]:
    """For each assistant turn, in order, the image it answered to: 0 for the original, i for observation_i.

    A turn sees the latest image it has received: the original on turn 1, then the observation made by
    the last valid, executed zoom before it (an error turn brings no image, so the view stays the same).
    """
    turns = sum(1 for m in traj.messages if m["role"] == "assistant")
    seen, out = 0, []
    for k in range(turns):
        out.append(seen)
        call = traj.calls[k] if k < len(traj.calls) else None
        if call and call.get("valid") and call.get("executed", True):
            seen += 1
    return out


def draw_trajectory(traj, min_pixels: int, max_pixels: int, max_views: int = 6, fontsize: float = 7):
    """One trajectory: the original with each zoom box numbered, then the observations the model got.

    Under each view is the turn that answered to it, labelled "turn k (about this view)": the model's
    next turn, whose "I see ..." describes that view (turn 1 under the original). Box i on the original
    is observation_i. The original's title holds the finish and the answer. Returns the figure.
    """
    import matplotlib.pyplot as plt

    original = traj.images[0]
    regions = zoom_regions(traj.calls, *original.size)
    texts = [m["content"][0]["text"] for m in traj.messages if m["role"] == "assistant"]
    seen = views_seen(traj)
    views = traj.images[1 : 1 + max_views]

    def caption(view: int) -> str:
        turns = [k for k, v in enumerate(seen) if v == view]
        if not turns:  # the zoom was made, but the search ended before a turn looked at it
            return f"no turn after this view ({traj.finish})"
        return f"turn {turns[0] + 1} (about this view): {texts[turns[0]]}"

    fig, axes = plt.subplots(1, 1 + len(views), figsize=(2.1 * (1 + len(views)), 3.4), dpi=80, squeeze=False)
    labels = [str(i + 1) for i in range(len(regions))]
    drawn = draw_boxes(original, regions, labels=labels, width=max(2, original.width // 150))
    answer = f" {traj.answer!r}" if traj.answer is not None else ""
    panels = [(drawn, f"{traj.id}: {traj.finish}{answer}, {traj.turns} turns", caption(0))]
    more = len(traj.images) - 1 > len(views)  # views left out: the last title says how many there are
    panels += [(model_view(v, min_pixels, max_pixels),
                f"observation_{i + 1}" + (f" (of {len(traj.images) - 1})" if more and i == len(views) - 1 else ""),
                caption(i + 1))
               for i, v in enumerate(views)]
    for ax, (image, title, text) in zip(axes[0], panels, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=fontsize + 1)
        ax.set_xlabel(textwrap.fill(text, 34), fontsize=fontsize)
    fig.tight_layout()
    return fig


def token_chips(tokens: Sequence[str], mask: Sequence[int], image_token: str = "<|image_pad|>") -> list[tuple]:
    """(text, mask) chips for display: runs of image tokens collapse into one '[image x N]' chip."""
    chips: list[tuple[str, int]] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == image_token:
            j = i
            while j < len(tokens) and tokens[j] == image_token:
                j += 1
            chips.append((f"[image x{j - i}]", mask[i]))
            i = j
        else:
            chips.append((tokens[i], mask[i]))
            i += 1
    return chips


def draw_token_mask(tokens: Sequence[str], mask: Sequence[int], columns: int = 110, fontsize: float = 6.5):
    """The sequence as text, each token shaded by whether it carries loss (mask 1: the model's own tokens).

    Returns the figure; model tokens are on green, everything the environment wrote on grey.
    """
    import matplotlib.pyplot as plt

    lines: list[list[tuple[str, int]]] = [[]]
    used = 0
    for text, m in token_chips(tokens, mask):
        for k, part in enumerate(text.split("\n")):
            if k > 0 or used + len(part) > columns:
                lines.append([])
                used = 0
            if part:
                lines[-1].append((part, m))
                used += len(part)
    fig = plt.figure(figsize=(10, 0.16 * len(lines) + 0.3), dpi=80)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, columns)
    ax.set_ylim(len(lines), 0)
    ax.axis("off")
    for row, chips in enumerate(lines):
        x = 0.0
        for text, m in chips:
            ax.text(x, row + 0.5, text, family="monospace", fontsize=fontsize, va="center",
                    bbox={"facecolor": "#9be29b" if m else "#e6e6e6", "edgecolor": "none", "pad": 0.6})
            x += len(text)
    return fig


def draw_batch_mask(trajectories: Sequence, weights: Sequence[float], labels: Sequence[str] | None = None,
                    title: str = ""):
    """One row per trajectory, one column per token: which tokens carry RL loss.

    Grey: written by the environment (prompt, images, observations); green: the model's tokens that
    carry loss; red: the model's tokens of a trajectory whose weight is 0 (over-turn masking).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    width = max(len(t.model_mask) for t in trajectories)
    grid = np.full((len(trajectories), width), 0.0)  # 0: padding (white)
    for row, (t, w) in enumerate(zip(trajectories, weights, strict=True)):
        m = np.asarray(t.model_mask)
        grid[row, : len(m)] = np.where(m == 1, 2.0 if w else 3.0, 1.0)
    fig, ax = plt.subplots(figsize=(9, 0.22 * len(trajectories) + 0.8), dpi=80)
    ax.imshow(grid, aspect="auto", interpolation="nearest", vmin=0, vmax=3,
              cmap=ListedColormap(["white", "#d9d9d9", "#31a354", "#de2d26"]))
    ax.set_yticks(range(len(trajectories)), labels or [t.id for t in trajectories], fontsize=6)
    ax.set_xlabel("token position")
    ax.set_title(title or "grey: environment, green: loss, red: exceeded (masked)", fontsize=8)
    fig.tight_layout()
    return fig


def draw_turn(traj, turn: int, min_pixels: int, max_pixels: int, fontsize: float = 9,
              figsize: tuple[float, float] = (10, 5.4), dpi: int = 100):
    """Turn `turn` (1-based) of a trajectory: the original with the zooms made before it, and the view
    the model was answering to (the original on turn 1, else the latest observation) with its words.

    Drawn large (by default two panels of about 450 pixels), so that the dot the question asks about
    shows in the zoomed view: the widget of `browser` draws with it.
    """
    import matplotlib.pyplot as plt

    original = traj.images[0]
    regions = zoom_regions(traj.calls[: turn - 1], *original.size)
    texts = [m["content"][0]["text"] for m in traj.messages if m["role"] == "assistant"]
    seen = len(regions)  # observation_<seen> is the latest image the model got before this turn
    panels = [(draw_boxes(original, regions, labels=[str(i + 1) for i in range(seen)],
                          width=max(2, original.width // 150)), f"{traj.id}: zooms before turn {turn}", ""),
              (model_view(traj.images[seen], min_pixels, max_pixels),
               f"turn {turn}/{traj.turns}, sees {f'observation_{seen}' if seen else 'original_image'}",
               texts[turn - 1] if turn <= len(texts) else "")]
    fig, axes = plt.subplots(1, 2, figsize=figsize, dpi=dpi)
    for ax, (image, title, text) in zip(axes, panels, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=fontsize)
        ax.set_xlabel(textwrap.fill(text, int(figsize[0] * 60 / fontsize)), fontsize=fontsize)
    fig.tight_layout()
    return fig


def live_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, but also papermill and nbval)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def browser_widget(rows: Sequence[dict], replay, min_pixels: int, max_pixels: int, trajectory=None):
    """The trajectory browser: pick a difficulty, right or wrong, a question, then step through its turns.

    `rows` are `evaluate` rows; `replay(id)` returns that question's trajectory (`trajectory`, a cached
    form of it, when given). It opens on the first question the model got right (else the first), at
    turn 1, already drawn; a filter that leaves the chosen question out moves to the first that stays.
    Returns the `ipywidgets` box (dropdowns, question, turn slider, picture).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    trajectory = trajectory or replay
    difficulty = widgets.Dropdown(options=["all", *sorted({r["difficulty"] for r in rows})], description="difficulty")
    outcome = widgets.Dropdown(options=["all", "correct", "incorrect"], description="outcome")
    question = widgets.Dropdown(options=[], description="question", layout=widgets.Layout(width="32em"))
    turn = widgets.IntSlider(min=1, max=1, description="turn")
    out = widgets.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            if question.value:
                draw_turn(trajectory(question.value), turn.value, min_pixels, max_pixels)
                plt.show()

    def pick_question(*_):
        turn.unobserve(redraw, "value")  # one picture per new question, not one per slider change
        turn.value = 1
        turn.max = max(1, trajectory(question.value).turns) if question.value else 1
        turn.observe(redraw, "value")
        redraw()

    def refilter(*_):
        keep = [r for r in rows if difficulty.value in ("all", r["difficulty"])
                and outcome.value in ("all", "correct" if r["correct"] else "incorrect")]
        chosen = question.value
        question.options = [(f"{r['id']} ({r['turns']} turns, {'right' if r['correct'] else 'wrong'})", r["id"])
                            for r in keep]  # ipywidgets then selects nothing: choose again below
        ids = [r["id"] for r in keep]
        first = next((r["id"] for r in keep if r["correct"]), ids[0] if ids else None)
        question.value = chosen if chosen in ids else first

    difficulty.observe(refilter, "value")
    outcome.observe(refilter, "value")
    question.observe(pick_question, "value")
    turn.observe(redraw, "value")
    refilter()  # preselects the first right question and draws its turn 1
    return widgets.VBox([widgets.HBox([difficulty, outcome]), question, turn, out])


def browser(rows: Sequence[dict], replay, min_pixels: int, max_pixels: int, interactive: bool = False):
    """Browse evaluated trajectories: static pictures, and the widget wherever a Jupyter kernel runs.

    `rows` are `evaluate` rows; `replay(id)` returns that question's trajectory (a greedy re-run gives
    back the evaluated one; each is replayed once). With `interactive=False` the first right and the
    first wrong trajectory are drawn whole, then, inside a Jupyter kernel, the widget of
    `browser_widget` is displayed below them, opened on the first right question. A kernel cannot tell
    whether a front end is watching, so both are always shown: a reader in JupyterLab gets the widget
    without changing anything, while papermill and nbval record it as one line of text beside the
    pictures, which is what GitHub shows. Returns nothing. With `interactive=True` only the widget is
    built, and returned (a cell that ends with it displays it).
    """
    import matplotlib.pyplot as plt

    cache: dict[str, object] = {}

    def trajectory(question_id: str):
        if question_id not in cache:
            cache[question_id] = replay(question_id)
        return cache[question_id]

    if interactive:
        return browser_widget(rows, replay, min_pixels, max_pixels, trajectory)
    for pick in (next((r for r in rows if r["correct"]), None), next((r for r in rows if not r["correct"]), None)):
        if pick is not None:
            draw_trajectory(trajectory(pick["id"]), min_pixels, max_pixels)
            plt.show()
    if live_kernel():
        try:
            box = browser_widget(rows, replay, min_pixels, max_pixels, trajectory)
        except ImportError:  # no ipywidgets: the pictures above are all there is
            return None
        from IPython.display import display

        bundle = box._repr_mimebundle_()  # the widget for a live front end, and the line a static reader sees
        bundle["text/plain"] = ("Trajectory browser: open this notebook in Jupyter and run it to pick a question "
                                "and step through its turns.")
        display(bundle, raw=True)
    return None
