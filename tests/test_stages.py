"""Stage helpers: cached evaluations with their protocol, shipped checkpoints, the batch mask picture."""

from __future__ import annotations

import copy

import matplotlib
import pytest

from mini_o3_lite import evaluate, modeling, viz
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout

matplotlib.use("Agg")


def test_shipped_names_a_missing_checkpoint():
    assert modeling.shipped("base") == modeling.SHIPPED_BASE
    with pytest.raises(modeling.ModelPathError, match="no shipped tiny 'nothing' checkpoint"):
        modeling.shipped("nothing")


def test_ensure_eval_is_cached_and_records_its_protocol(tiny, checkout):
    model, processor = tiny
    path = modeling.save(copy.deepcopy(model), processor, checkout / "model")
    preset = load_preset("tiny", **{"data.n_train": 4, "data.n_test": 3})
    cfg = evaluate.settings(preset, max_turns=2, max_new_tokens=6)
    rows, manifest = evaluate.ensure_eval(preset, path, "toy", n=2, config=cfg, progress=False)
    assert len(rows) == 2 and manifest["metrics"]["summary"][0]["n"] == 2
    spec = manifest["config"]["protocol"]
    assert spec["max_turns"] == 2 and spec["decoding"] == "greedy" and spec["n"] == 2
    assert spec["model_hash"] == evaluate.model_hash(path) and len(spec["prompt_hash"]) == 16
    again, manifest2 = evaluate.ensure_eval(preset, path, "toy", n=2, config=cfg, progress=False)
    assert again == rows and manifest2["wall_seconds"] == manifest["wall_seconds"]  # reused, not re-run


def test_batch_mask_picture(tiny_processor, make_image):
    class Rec:
        def __init__(self, i):
            self.id, self.question, self.answer, self.choices = f"r{i}", "What colour is it?", "red", None

    recs = [Rec(0), Rec(1)]
    call = '<grounding>{"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"}</grounding>'
    script = {"r0": ["<think>x</think>\n<answer>red</answer>"], "r1": ["<think>x</think>\n" + call]}
    trajs = rollout(recs, [make_image(200, 200)] * 2, tiny_processor, replay_policy(script), RolloutConfig(max_turns=1))
    assert [t.exceeded for t in trajs] == [False, True]
    fig = viz.draw_batch_mask(trajs, [1.0, 0.0])
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2, max(len(t.model_mask) for t in trajs))
    assert set(image[0][: len(trajs[0].model_mask)].tolist()) == {1.0, 2.0}  # environment + loss
    assert 3.0 in image[1].tolist() and 2.0 not in image[1].tolist()  # the exceeded row is masked
