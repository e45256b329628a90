"""Tests for mini_o3_lite.ask and `mini-o3-lite ask`: one search on one photo, its turns, its pictures, its errors."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from mini_o3_lite import cli, protocol
from mini_o3_lite.ask import turn_lines, write_report
from mini_o3_lite.data import Record
from mini_o3_lite.evaluate import settings
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import replay_policy, rollout

FIXTURE = Path(__file__).resolve().parents[1] / "data_samples/benchmarks/vstar/direct_attributes/sa_1001.jpg"
QUESTION = "What is the color of the red square?"


def _search(tiny_processor, make_image):
    """A scripted search on a 400 x 200 photo: a zoom, an invalid call, a zoom into the zoom, the answer."""
    calls = [protocol.assistant_text("Too small.", protocol.tool_call_text((0.5, 0.0, 1.0, 0.5), "original_image")),
             '<grounding>{"bbox_2d": [0.9, 0.1, 0.1, 0.5], "source": "original_image"}</grounding>',
             protocol.assistant_text("Closer.", protocol.tool_call_text((0.0, 0.0, 0.5, 0.5), "observation_1")),
             protocol.assistant_text("Red.", protocol.answer_text("red"))]
    record = Record(id="ask", image="", question=QUESTION, answer="")
    config = settings(load_preset("tiny"), 6)
    return rollout([record], [make_image(400, 200)], tiny_processor, replay_policy({"ask": calls}), config)[0]


def test_turn_lines_say_each_zoom_in_original_pixels(tiny_processor, make_image):
    lines = turn_lines(_search(tiny_processor, make_image))
    assert lines[0].startswith("turn 1: <think>Too small.</think>")
    assert "zoom 1: bbox_2d [0.5, 0.0, 1.0, 0.5] of original_image = pixels [200, 0, 400, 100]" in lines[1]
    assert lines[1].endswith("-> observation_1")
    assert lines[3].startswith("  invalid: bbox_2d [0.9, 0.1, 0.1, 0.5] has x0 >= x1")
    assert "zoom 2: bbox_2d [0.0, 0.0, 0.5, 0.5] of observation_1 = pixels [200, 0, 300, 50]" in lines[5]
    assert lines[7] == "  answer: red" and lines[-1] == "finish: answer after 4 turns"


def test_report_writes_every_zoom_a_picture_and_the_trajectory(tiny_processor, make_image, tmp_path):
    traj = _search(tiny_processor, make_image)
    written = write_report(traj, tmp_path / "out", 28 * 28, 112 * 112)
    assert [p.name for p in written] == ["zoom_1.png", "zoom_2.png", "trajectory.png", "trajectory.json"]
    assert Image.open(written[0]).size == (200, 100) and Image.open(written[1]).size == (100, 50)
    Image.open(written[2]).verify()
    saved = json.loads(written[3].read_text())
    assert saved["answer"] == "red" and saved["images"] == ["original_image", "zoom_1.png", "zoom_2.png"]


def test_ask_with_the_shipped_agent_on_a_fixture_photo(checkout, capsys):
    assert cli.main(["ask", "--model", "sft", "--image", str(FIXTURE), "--question", QUESTION,
                     "--max-turns", "2"]) == 0
    out = capsys.readouterr().out
    assert "turn 1: <think>" in out and "finish: " in out
    folder = checkout / "runs" / "tiny" / "ask" / "sa_1001"
    pictures = sorted(folder.glob("*.png"))
    assert folder / "trajectory.png" in pictures and len(pictures) >= 2  # the agent zooms on its first turn
    for picture in pictures:
        Image.open(picture).verify()


def test_ask_with_a_qwen25_standin(qwen25_standin, tmp_path, capsys):
    assert cli.main(["ask", "--preset", "full", "--model-path", str(qwen25_standin), "--image", str(FIXTURE),
                     "--question", QUESTION, "--choices", "blue", "red", "--max-turns", "2", "--out", str(tmp_path),
                     "--set", "dtype=float32", "--set", "min_pixels=3136", "--set", "max_pixels=12544",
                     "--set", "max_new_tokens=16"]) == 0
    out = capsys.readouterr().out
    assert "turn 1: " in out and "finish: " in out
    Image.open(tmp_path / "trajectory.png").verify()
    assert json.loads((tmp_path / "trajectory.json").read_text())["turns"] >= 1


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    def error(*args: str) -> str:
        assert cli.main(["ask", "--question", QUESTION, "--out", str(tmp_path / "out"), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("mini-o3-lite ask: error:")
        return err

    assert "image file not found" in error("--image", str(tmp_path / "missing.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    err = error("--image", str(tmp_path / "broken.jpg"))
    assert "broken.jpg" in err and "cannot be decoded" in err
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text('{"model_type": "llama"}')
    assert "holds a 'llama' model" in error("--image", str(FIXTURE), "--model", str(tmp_path / "llama"))
    (tmp_path / "file").write_text("")
    unwritable = tmp_path / "file" / "out"  # a folder under a file
    assert cli.main(["ask", "--question", QUESTION, "--image", str(FIXTURE), "--out", str(unwritable)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to" in err and "Not a directory" in err
