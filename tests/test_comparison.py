"""Paired standard errors on hand-built rows, and a tiny comparison end to end."""

from __future__ import annotations

import json
import math

import pytest

from mini_o3_lite import cli, comparison


def rows(correct: list[int], sample: int | None = None, turns: int = 3) -> list[dict]:
    diff = ["easy", "medium", "hard"]
    return [{"id": f"q{i}", "difficulty": diff[i % 3], "correct": bool(c), "turns": turns, "exceeded": False,
             "finish": "answer" if i % 2 == 0 else "context"}
            | ({} if sample is None else {"sample": sample}) for i, c in enumerate(correct)]


def test_per_question_averages_the_samples():
    got = comparison.per_question(rows([1, 0, 1], 0) + rows([1, 1, 0], 1))
    assert got == {"q0": 1.0, "q1": 0.5, "q2": 0.5}


def test_paired_se_is_the_se_of_per_question_differences():
    a = {"q0": 0.0, "q1": 1.0, "q2": 0.0, "q3": 1.0}
    b = {"q0": 1.0, "q1": 1.0, "q2": 0.0, "q3": 1.0}
    got = comparison.paired(a, b)
    # differences 1, 0, 0, 0: mean 0.25, sample std 0.5, SE 0.25
    assert got["mean"] == 0.25 and got["se"] == pytest.approx(0.25) and got["z"] == 1.0 and got["n"] == 4
    assert comparison.paired(a, b, ["q1", "q2"])["mean"] == 0  # a subset (e.g. the hard questions)


def test_summarise_run_counts_per_difficulty_and_turns():
    got = comparison.summarise_run(rows([1, 0, 1, 1, 0, 0]), budget=16)
    assert got["accuracy"]["mean"] == 0.5 and got["accuracy"]["n"] == 6
    assert got["by_difficulty"]["easy"]["mean"] == 1.0 and got["by_difficulty"]["hard"]["mean"] == 0.5
    assert got["turns"] == {"mean": 3.0, "se": 0.0, "n": 6} and got["turn_histogram"] == {"3": 6}
    assert got["finishes"] == {"answer": 3, "context": 3}  # questions 0, 2, 4 answered, 2 of them right
    assert got["right_when_answering"] == round(2 / 3, 4)
    assert math.isnan(comparison.mean_se([1.0])["se"])


def test_sampled_turns_have_their_se_over_questions_not_runs():
    # two questions, each run twice: 2 and 4 turns on q0, 6 and 8 on q1 -> per question 3 and 7
    runs = [r | {"turns": t} for r, t in zip(rows([1, 0], 0) + rows([1, 0], 1), [2, 6, 4, 8], strict=True)]
    got = comparison.summarise_run(runs, budget=16)["turns"]
    assert got == {"mean": 5.0, "se": 2.0, "n": 2}  # std of (3, 7) is 2.83, over sqrt(2)


def test_compare_command_writes_both_protocols_with_pairs(tiny_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/ goes under the test's folder
    out = tmp_path / "comparison.json"
    code = cli.main(["compare", "--models", "sft", str(tiny_dir), "--n", "3", "--max-turns", "2",
                     "--samples", "2", "--set", "max_new_tokens=8", "--out", str(out)])
    assert code == 0 and "paired se" in capsys.readouterr().out
    got = json.loads(out.read_text())
    assert set(got["protocols"]) == {"greedy", "avg@2"} and got["n"] == 3
    assert got["command"].startswith("mini-o3-lite compare --models sft ")  # how to make it again
    for run in got["protocols"].values():
        assert list(run["models"]) == ["sft", str(tiny_dir)] and run["models"]["sft"]["accuracy"]["n"] == 3
        pair = run["paired"][f"{tiny_dir} - sft"]  # the second agent against the reference, question by question
        a, b = run["models"]["sft"]["accuracy"]["mean"], run["models"][str(tiny_dir)]["accuracy"]["mean"]
        assert pair["n"] == 3 and pair["mean"] == pytest.approx(b - a, abs=1e-4)


def test_compare_command_names_a_missing_checkpoint(tmp_path, capsys):
    assert cli.main(["compare", "--models", "sft", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
