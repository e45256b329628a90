"""The max-pixels sweep: the same scenes at another budget, adapted and measured, end to end at toy scale."""

from __future__ import annotations

import copy

import pytest

from mini_o3_lite import modeling, pixels, pixelsweep
from mini_o3_lite.presets import load_preset


def test_at_budget_rejects_a_side_qwen_cannot_keep():
    preset = load_preset("tiny")
    assert pixelsweep.at_budget(preset, 224).max_pixels == 224 * 224 == pixelsweep.at_budget(preset, 224).min_pixels
    with pytest.raises(ValueError, match="side 100 is not a multiple of 28"):
        pixelsweep.at_budget(preset, 100)


def test_sweep_adapts_and_measures_each_budget_on_the_same_scenes(tiny, checkout):
    tmp_path = checkout
    model, processor = tiny
    init = modeling.save(copy.deepcopy(model), processor, tmp_path / "init")
    preset = load_preset("tiny",
                         **{"data.n_train": 4, "data.n_test": 2, "sft.n_trajectories": 4, "sft.batch_size": 2})
    results = pixelsweep.sweep(preset, [112, 224], init, epochs=0.5, n=2, max_new_tokens=4, log=lambda s: None)
    assert [r["side"] for r in results] == [112, 224]
    assert [r["tokens_per_view"] for r in results] == [16, 64]
    for r in results:
        side = r["side"]
        assert r["protocol"]["max_pixels"] == r["protocol"]["min_pixels"] == side * side
        assert modeling.pixel_budget(modeling.load_processor(tmp_path / f"runs/tiny/pixels/{side}px")) == (side**2,) * 2
        assert r["sft"]["steps"] == 1 and r["teacher"]["records"] == 4 and 0 <= r["first_view_exact"] <= 1
        assert r["mean_tokens"] == sum(row["tokens"] for row in r["rows"]) / 2
    # the larger view shows more, so the teacher needs no more zooms (turns) than at the smaller one
    assert sum(k * v for k, v in results[1]["teacher"]["turns"].items()) <= sum(
        k * v for k, v in results[0]["teacher"]["turns"].items()) or results[1]["teacher"]["kept"] > results[0][
        "teacher"]["kept"]
    rows = pixelsweep.table(results, preset.context_length)
    assert [r["tokens_per_view"] for r in rows] == [16, pixels.max_visual_tokens(224 * 224)]
    pixelsweep.save(results, tmp_path / "sweep.json", command="test")
    assert pixelsweep.load_results(tmp_path / "sweep.json")["results"][1]["side"] == 224


def test_missing_results_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no max-pixels sweep results at .*nothing.json"):
        pixelsweep.load_results(tmp_path / "nothing.json")
