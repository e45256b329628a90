"""Trajectory pictures: the turn written under each view is the one about that view; the trajectory browser."""

from __future__ import annotations

import dataclasses

import matplotlib
import pytest

from mini_o3_lite import evaluate, viz
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout

matplotlib.use("Agg")

LO = HI = 112 * 112


class Rec:
    def __init__(self, i, difficulty="easy"):
        self.id, self.question, self.answer, self.choices = f"r{i}", "What colour is it?", "red", None
        self.difficulty, self.source = difficulty, "test"


def zoom(box, source="original_image", said="x"):
    return f'<think>I see {said}.</think>\n<grounding>{{"bbox_2d": {list(box)}, "source": "{source}"}}</grounding>'


@pytest.fixture(scope="module")
def search(tiny_processor, make_image):
    """Two zooms, a malformed call (an error turn, no image), the answer: four turns, three images."""
    script = {"r0": [zoom((0, 0, 0.5, 0.5), said="the original"),
                     zoom((0, 0, 0.5, 0.5), "observation_1", said="observation one"),
                     "<think>I see observation two.</think>\n<grounding>[0.1, 0.1, 0.4, 0.4]</grounding>",
                     "<think>I see observation two again.</think>\n<answer>red</answer>"]}
    return rollout([Rec(0)], [make_image(200, 200)], tiny_processor, replay_policy(script),
                   RolloutConfig(max_turns=6, on_invalid="observe"))[0]


def test_views_seen_counts_only_executed_zooms(search):
    assert search.turns == 4 and len(search.images) == 3
    assert viz.views_seen(search) == [0, 1, 2, 2]  # the invalid turn brings no image


def test_each_view_carries_the_turn_about_it(search):
    fig = viz.draw_trajectory(search, LO, HI)
    titles = [ax.get_title() for ax in fig.axes]
    captions = [ax.get_xlabel().replace("\n", " ") for ax in fig.axes]
    assert titles == ["r0: answer 'red', 4 turns", "observation_1", "observation_2"]
    assert captions[0].startswith("turn 1 (about this view): <think>I see the original.")
    assert captions[1].startswith("turn 2 (about this view): <think>I see observation one.")
    assert captions[2].startswith("turn 3 (about this view): <think>I see observation two.")


def test_views_left_out_and_a_view_no_turn_looked_at(search):
    fig = viz.draw_trajectory(search, LO, HI, max_views=1)
    assert [ax.get_title() for ax in fig.axes] == ["r0: answer 'red', 4 turns", "observation_1 (of 2)"]
    # A search cut (by the context) right after a zoom: its last view has no turn about it.
    assistant = [i for i, m in enumerate(search.messages) if m["role"] == "assistant"]
    cut = dataclasses.replace(search, messages=search.messages[: assistant[2]], calls=search.calls[:2], turns=2,
                              finish="context", answer=None)
    fig = viz.draw_trajectory(cut, LO, HI)
    assert fig.axes[0].get_title() == "r0: context, 2 turns"
    assert fig.axes[2].get_xlabel() == "no turn after this view (context)"


@pytest.fixture(scope="module")
def browsed(tiny_processor, make_image):
    recs = [Rec(0, "easy"), Rec(1, "hard"), Rec(2, "hard")]
    call = zoom((0, 0, 0.5, 0.5))
    script = {"r0": ["<think>x</think>\n<answer>blue</answer>"], "r1": [call, "<think>x</think>\n<answer>red</answer>"],
              "r2": [call, call, "<think>x</think>\n<answer>red</answer>"]}
    trajs = {t.id: t for t in rollout(recs, [make_image(200, 200)] * 3, tiny_processor, replay_policy(script),
                                      RolloutConfig(max_turns=4))}
    return [evaluate.row(trajs[r.id], r) for r in recs], trajs


def test_browser_static_pictures_outside_a_kernel(browsed):
    rows, trajs = browsed
    replayed = []
    assert viz.browser(rows, lambda q: replayed.append(q) or trajs[q], LO, HI, interactive=False) is None
    assert replayed == ["r1", "r0"]  # the first right and the first wrong trajectory, drawn whole


def test_browser_shows_the_widget_too_in_a_kernel(browsed, monkeypatch):
    import IPython.display

    rows, trajs = browsed
    shown, replayed = [], []
    monkeypatch.setattr(viz, "live_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    assert viz.browser(rows, lambda q: replayed.append(q) or trajs[q], LO, HI) is None
    assert replayed == ["r1", "r0"]  # the widget opens on r1, already replayed for its picture
    (bundle, raw), = shown
    assert raw and "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Trajectory browser")


def test_browser_widget_opens_on_a_question_and_follows_the_filters(browsed, monkeypatch):
    rows, trajs = browsed
    drawn = []
    monkeypatch.setattr(viz, "draw_turn", lambda traj, turn, *a, **k: drawn.append((traj.id, turn)))
    ui = viz.browser(rows, lambda q: trajs[q], LO, HI, interactive=True)
    difficulty, outcome = ui.children[0].children
    question, turn = ui.children[1], ui.children[2]
    assert [v for _, v in question.options] == ["r0", "r1", "r2"]
    assert question.value == "r1" and (turn.value, turn.max) == (1, 2)  # not blank: the first right one
    assert drawn == [("r1", 1)]
    turn.value = 2
    assert drawn[-1] == ("r1", 2)
    outcome.value = "incorrect"  # r1 is filtered out: the first that stays is chosen
    assert [v for _, v in question.options] == ["r0"] and question.value == "r0"
    assert (turn.value, turn.max) == (1, 1) and drawn[-1] == ("r0", 1)
    outcome.value, difficulty.value = "all", "hard"
    assert question.value == "r1"
    question.value = "r2"
    assert (turn.value, turn.max) == (1, 3) and drawn[-1] == ("r2", 1)


def test_draw_turn_is_large_and_names_its_view(browsed):
    _, trajs = browsed
    fig = viz.draw_turn(trajs["r1"], 2, LO, HI)
    assert "sees observation_1" in fig.axes[1].get_title() and "answer" in fig.axes[1].get_xlabel()
    width, height = fig.get_size_inches() * fig.dpi
    assert width >= 900 and height >= 500  # each view about 450 pixels wide: the dot shows
