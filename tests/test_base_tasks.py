"""The base model's tasks: examples, loss masks, greedy scoring."""

from __future__ import annotations

import random

from mini_o3_lite import base_tasks, description, protocol, scenes, tilesearch
from mini_o3_lite.presets import load_preset


def test_examples_are_deterministic_and_start_with_a_description():
    preset = load_preset("tiny")
    a = base_tasks.example_batch(preset, "train", 3, 6)
    b = base_tasks.example_batch(preset, "train", 3, 6)
    assert [e.messages for e in a] == [e.messages for e in b]
    assert [e.images[-1].tobytes() for e in a] == [e.images[-1].tobytes() for e in b]
    for ex in a:
        target = ex.messages[-1]["content"][0]["text"]
        assert protocol.extract_think(target).startswith("I see ")
        assert ex.task in base_tasks.TASKS and 0 <= ex.depth <= 3
        action = protocol.parse_action(target, len(ex.images) - 1)
        assert isinstance(action, protocol.ToolCall if ex.task == "box" else protocol.Answer)
    assert base_tasks.example_batch(preset, "test", 3, 6)[0].messages != a[0].messages


def test_a_posed_recognition_question_records_how_large_its_readable_dot_looks():
    preset = load_preset("tiny")
    rng = random.Random(0)
    examples = [base_tasks.make_example(preset, 1000 + i, rng, pose="recognition") for i in range(8)]
    for ex in examples:
        assert ex.task == "recognition" and ex.answer in preset.data.colours
        assert scenes.MARK_PX <= ex.detail_px <= 40
        assert f"a {ex.answer} dot" in ex.messages[-1]["content"][0]["text"] or f"an {ex.answer} dot" in \
            ex.messages[-1]["content"][0]["text"]
    mixed = base_tasks.example_batch(preset, "test", 0, 16)
    assert all((ex.detail_px is None) == (ex.task != "recognition") for ex in mixed)


def test_hard_presence_questions_pair_a_shape_in_view_with_a_colour_seen_elsewhere():
    preset = load_preset("tiny")
    scene = scenes.generate(5, "medium", preset.data.canvas, preset.min_pixels, preset.max_pixels,
                            preset.data.colours, preset.data.shapes)
    seen = scenes.seen(scene, scenes.full_region(scene), preset.min_pixels, preset.max_pixels)
    assert seen
    rng = random.Random(0)
    for _ in range(50):
        question, _, answer = base_tasks.task_turn("presence", seen, rng, preset.data, None, hard=1.0)
        colour, shape = question.removeprefix("Is there a ").removesuffix(" in this view?").split()
        assert shape in {o.shape for o, _ in seen}
        assert colour in {o.colour for o, _ in seen} | {o.mark for o, lv in seen if lv == "mark"}
        truth = any(o.colour == colour and o.shape == shape and lv != "spot" for o, lv in seen)
        assert answer == ("yes" if truth else "maybe" if any(o.colour == colour and lv == "spot" for o, lv in seen)
                          else "no")
    # the training mix is a setting; held-out examples keep the default mix, so checkpoints stay comparable
    hard = load_preset("tiny", **{"base.presence_hard": 0.5})
    assert [e.messages for e in base_tasks.example_batch(hard, "test", 0, 8)] == \
        [e.messages for e in base_tasks.example_batch(preset, "test", 0, 8)]
    assert [e.messages for e in base_tasks.example_batch(hard, "train", 0, 8)] != \
        [e.messages for e in base_tasks.example_batch(preset, "train", 0, 8)]


def test_labels_cover_only_the_final_assistant_turn(tiny_processor):
    preset = load_preset("tiny")
    examples = [e for i in range(40) for e in base_tasks.example_batch(preset, "train", i, 1) if len(e.images) == 2][:2]
    batch = base_tasks.collate(examples, tiny_processor)
    tok = tiny_processor.tokenizer
    for row, ex in enumerate(examples):
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert tok.decode(labelled) == ex.messages[-1]["content"][0]["text"] + "<|im_end|>"


def test_depth_weights_shape_the_training_views_only():
    full_views = load_preset("tiny", **{"base.depth_weights": (1.0, 0.0, 0.0, 0.0)})
    deep = load_preset("tiny", **{"base.depth_weights": (0.0, 0.0, 0.0, 1.0)})
    assert {e.depth for e in base_tasks.example_batch(full_views, "train", 3, 8)} == {0}
    assert {e.depth for e in base_tasks.example_batch(deep, "train", 3, 8)} == {3}
    # held-out examples keep the default views, so checkpoints trained on any mix are measured alike
    default = base_tasks.example_batch(load_preset("tiny"), "test", 0, 8)
    assert [e.messages for e in base_tasks.example_batch(deep, "test", 0, 8)] == [e.messages for e in default]


def test_blind_presence_puts_the_loss_on_the_answer_alone(tiny_processor):
    blind = load_preset("tiny", **{"base.presence_blind": 1.0, "base.task_weights": (1.0, 0.0, 0.0, 0.0)})
    seeing = load_preset("tiny", **{"base.task_weights": (1.0, 0.0, 0.0, 0.0)})
    examples, control = base_tasks.example_batch(blind, "train", 3, 4), base_tasks.example_batch(seeing, "train", 3, 4)
    assert all(e.presence_blind for e in examples) and not any(e.presence_blind for e in control)
    # the same words and answers, another scene's picture
    assert [e.messages for e in examples] == [e.messages for e in control]
    assert all(a.images[-1].tobytes() != b.images[-1].tobytes() for a, b in zip(examples, control, strict=True))
    batch = base_tasks.collate(examples, tiny_processor)
    for row, ex in enumerate(examples):
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        text = tiny_processor.tokenizer.decode(labelled)
        assert text.endswith(f"<answer>{ex.answer}</answer><|im_end|>") and len(text) <= len(ex.answer) + 32, text
    # held-out examples never go blind
    assert not any(e.presence_blind for e in base_tasks.example_batch(blind, "test", 0, 8))


def test_blind_presence_with_lookup_puts_the_loss_on_the_line_and_answer(tiny_processor):
    blind = load_preset("tiny", **{"base.presence_blind": 1.0, "base.presence_lookup": True,
                                   "base.task_weights": (1.0, 0.0, 0.0, 0.0)})
    examples = base_tasks.example_batch(blind, "train", 3, 4)
    batch = base_tasks.collate(examples, tiny_processor)
    for row, ex in enumerate(examples):
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        text = tiny_processor.tokenizer.decode(labelled)
        target = ex.messages[-1]["content"][0]["text"]
        line = protocol.extract_think(target).split(". ", 1)[1]
        # the look-up line and the answer are learned, the description (not what the picture shows) is not
        assert target.endswith(text.removesuffix("<|im_end|>")) and line in text and "I see" not in text, text
        assert len(text) <= len(line) + len(ex.answer) + 40, text


def test_presence_lookup_line_decides_the_answer():
    looked, plain = load_preset("tiny", **{"base.presence_lookup": True}), load_preset("tiny")
    pairs = zip(*(base_tasks.example_batch(p, "test", 0, 32) for p in (looked, plain)), strict=True)
    asked = [(ex, control) for ex, control in pairs if ex.task == "presence"]
    assert len(asked) >= 8
    for ex, control in asked:
        text, question = ex.messages[-1]["content"][0]["text"], ex.messages[-2]["content"][-1]["text"]
        first, line = protocol.extract_think(text).split(". ", 1)
        # the description is the one without the line; the line's shapes decide the answer
        assert description.read(text) == description.read(control.messages[-1]["content"][0]["text"]) == first
        found = line.rstrip(".").split(": ")[1].split(", ")
        shape = question.split()[4]
        assert ex.answer == ("yes" if shape in found else "maybe" if "spot" in found else "no"), text
        assert tilesearch.presence_in_words(text, " ".join(question.split()[3:5])) == ex.answer
