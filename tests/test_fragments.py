"""Step fragments (the base practising the turn after a zoom): the teacher's words, every kind, exact resume."""

from __future__ import annotations

import random
import re

import pytest

from mini_o3_lite import base_tasks, fragments, hints, protocol
from mini_o3_lite.presets import load_preset

BOX = r"\[[0-9., ]+\]"


def text(message: dict) -> str:
    return message["content"][-1]["text"]


@pytest.mark.parametrize("kind", list(fragments.KINDS))
def test_fragment_is_the_teachers_step_with_the_hints_box(kind):
    preset = load_preset("tiny", tile_hints=True)
    messages, images, got, depth, action = fragments.step_example(preset, 123, random.Random(kind), kind)
    assert got == kind and 1 <= depth <= 3 and len(images) == 2
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    first = protocol.parse_action(text(messages[2]), 0)
    assert isinstance(first, protocol.ToolCall) and text(messages[2]).startswith("<think>I see ")
    hint = hints.hint_text(first.bbox)
    assert text(messages[3]).endswith("\n" + hint)  # observation_1 ends with the tile's hint
    last = text(messages[4])
    assert last.endswith(action) and last.startswith("<think>I see ")
    if kind == "answer":
        dot = re.search(r"has an? (\w+) dot\.</think>", last).group(1)
        assert action == protocol.answer_text(dot)
        return
    words = {"none": "here: next tile", "decoy": "Not the", "spot": "spot: zoom in", "here": "is here: zoom in"}[kind]
    assert words in last
    named = re.search(rf"(zoom in|next tile) ({BOX})\.</think>", last)
    call = protocol.parse_action(last, 1)
    assert protocol.box_text(call.bbox) == named.group(2)  # the call copies the verdict's box ...
    assert f"{named.group(1)} {named.group(2)}" in hint  # ... which is the hint's box for that move


def test_fragments_without_hints_keep_mini_o3_observation_text():
    preset = load_preset("tiny", tile_hints=False)
    messages, *_ = fragments.step_example(preset, 7, random.Random(0), "none")
    assert "Tiles:" not in text(messages[3])
    assert re.search(r"No \w+ here: next tile\.</think>", text(messages[4]))


def test_fragments_are_deterministic_and_kinds_come_in_their_shares():
    preset = load_preset("tiny", tile_hints=True)
    a = fragments.step_example(preset, 99, random.Random(5))
    b = fragments.step_example(preset, 99, random.Random(5))
    assert a[0] == b[0] and a[1][1].tobytes() == b[1][1].tobytes()
    rng = random.Random(1)
    kinds = [fragments.step_example(preset, 1000 + i, rng)[2] for i in range(40)]
    assert set(kinds) == set(fragments.KINDS)


def test_score_reads_description_verdict_and_action_apart():
    truth = ('<think>I see red square. No blue here: next tile [0.5, 0.0, 1.0, 0.5].</think>\n'
             '<grounding>{"bbox_2d": [0.5, 0.0, 1.0, 0.5], "source": "original_image"}</grounding>')
    assert fragments.score(truth, truth) == {"description": True, "verdict": True, "action": True}
    wrong_box = truth.replace("[0.5, 0.0, 1.0, 0.5]", "[0.0, 0.5, 0.5, 1.0]")
    assert fragments.score(truth, wrong_box) == {"description": True, "verdict": False, "action": False}
    assert fragments.score(truth, truth.replace("red square", "red circle"))["description"] is False


def test_pretraining_mixes_fragments_in_by_share_and_scores_their_action():
    preset = load_preset("tiny", tile_hints=True, **{"base.step_share": 1.0})
    batch = base_tasks.example_batch(preset, "train", 3, 4)
    assert all(ex.task in fragments.KINDS for ex in batch)
    assert batch[0].messages == base_tasks.example_batch(preset, "train", 3, 4)[0].messages  # exact resume
    ex = batch[0]
    truth = text(ex.messages[-1])
    assert base_tasks.is_correct(ex, truth)
    assert not base_tasks.is_correct(ex, truth.split("</think>")[0] + "</think>\n<answer>none</answer>")
    plain = load_preset("tiny", tile_hints=True)  # share 0: the pretraining mix is untouched
    assert all(ex.task in base_tasks.TASKS for ex in base_tasks.example_batch(plain, "train", 3, 8))
