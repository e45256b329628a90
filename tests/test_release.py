"""The model card's generated parts from a metrics dict, and the `release` command's checks of its inputs."""

import json
import shutil

from huggingface_hub import ModelCard

from mini_o3_lite import cli
from mini_o3_lite.modeling import SHIPPED_BASE
from mini_o3_lite.release import presence_line, recognition_line, search_table, step_table, write_model_card

METRICS = {
    "skills": {"presence": 0.85},
    "presence_from_description": {"presence": 0.97, "presence/d0": 0.96, "presence/d1": 0.98, "n": 304},
    "tile_search_easy_medium_12_zooms": {"all": {"n": 64, "accuracy": 0.59, "mean_zooms": 7.25}},
    "tile_search_easy_medium_12_zooms_description": {"all": {"n": 64, "accuracy": 0.8, "mean_zooms": 5.88}},
}


def test_search_table_has_a_row_per_decider_and_split():
    rows = search_table(METRICS).splitlines()
    assert rows[2:] == ["| answer word | all | 64 | 0.590 | 7.25 |", "| description | all | 64 | 0.800 | 5.88 |"]
    older = {k: v for k, v in METRICS.items() if not k.endswith("_description")}  # a card measured before
    assert len(search_table(older).splitlines()) == 3


def test_presence_line_sets_description_against_answer_word():
    line = presence_line(METRICS)
    assert "(304 questions;" in line and ": 0.970 (d0 0.960, d1 0.980), against 0.850" in line
    assert "0.030 of the questions are wrong instead of 0.150: the answer word loses 0.120" in line
    assert presence_line({"skills": {"presence": 0.85}}) == ""


def test_presence_line_says_what_the_numbers_say_and_nothing_fixed():
    worse = METRICS | {"presence_from_description": {"presence": 0.80, "presence/d0": 0.8, "n": 304}}
    line = presence_line(worse)
    assert "the answer word is right more often than the description read by rule" in line
    assert "(0.150 of the questions wrong instead of 0.200)" in line and "decision" not in line
    level = METRICS | {"presence_from_description": {"presence": 0.85, "presence/d0": 0.85, "n": 304}}
    assert presence_line(level).endswith("the two are right equally often.")


def test_the_card_of_a_shipped_base_is_a_hugging_face_model_card(tmp_path):
    for name in ("training_log.json", "metrics.json", "config.json"):  # the shipped base's measured files
        shutil.copy(SHIPPED_BASE / name, tmp_path / name)
    text = write_model_card(tmp_path, "mini-o3-lite release --model runs/tiny/base", "2 CPU cores",
                            "Stage X: what was tried.").read_text()
    assert text.startswith("---\n")
    meta = ModelCard(text).data.to_dict()  # the Hub's parser of the front matter
    assert (meta["license"], meta["library_name"], meta["pipeline_tag"]) == (
        "apache-2.0", "transformers", "image-text-to-text")
    assert {"mini-o3", "visual-search", "multi-turn", "visualprobe-lite"} <= set(meta["tags"])
    assert "base_model" not in meta and "datasets" not in meta  # Hub ids only; the kit's are named in the text
    for section in ("## Intended use", "## Training data", "## Training", "## Evaluation", "## Limitations",
                    "## What was tried, and what each gave"):
        assert f"\n{section}\n" in text
    assert "`mini-o3-lite release --model runs/tiny/base`" in text and "Stage X: what was tried." in text
    log, metrics = (json.loads((tmp_path / f).read_text()) for f in ("training_log.json", "metrics.json"))
    assert f"({log['parameters']['total']:,} parameters" in text and "square and triangle shapes" in text
    assert f"| presence | {metrics['skills']['presence']:.3f} |" in text and presence_line(metrics) in text
    assert "DESIGN" not in text and "not the seeing" not in text  # no file outside the kit, no fixed claim
    assert "/work/" not in text and str(tmp_path) not in text


def test_step_table_has_a_row_per_verdict_kind_and_is_empty_for_older_cards():
    steps = {"none": {"description": 0.9, "verdict": 0.5, "action": 0.5, "n": 32},
             "all": {"description": 0.8, "verdict": 0.4, "action": 0.45, "n": 160}, "tile_hints": True}
    table = step_table(METRICS | {"step_fragments": steps})
    assert "with tile hints" in table
    assert "| none | 32 | 0.900 | 0.500 | 0.500 |" in table and "| all | 160 | 0.800 | 0.400 | 0.450 |" in table
    assert step_table(METRICS) == ""


def test_recognition_line_gives_each_dot_size_and_is_empty_for_older_cards():
    sizes = {"all": {"accuracy": 0.85, "n": 512}, "under 14 px": {"accuracy": 0.8, "n": 384},
             "14 px and over": {"accuracy": 0.95, "n": 128}}
    line = recognition_line(METRICS | {"recognition_by_size": sizes})
    assert line.startswith("Recognition on 512 more held-out readable views")
    assert ": 0.850; by the dot's size in the view, under 14 px 0.800 (384), 14 px and over 0.950 (128)." in line
    assert recognition_line(METRICS) == ""


def test_the_release_command_refuses_a_missing_checkpoint_or_findings_file_before_measuring(tmp_path, capsys):
    assert cli.main(["release", "--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mini-o3-lite release: error:") and str(tmp_path / "nothing") in err
    assert cli.main(["release", "--model", "base", "--ship", str(tmp_path / "copy"), "--findings", "nope.md"]) == 2
    assert "no findings file 'nope.md'" in capsys.readouterr().err
    assert cli.main(["release", "--model", "base", "--set", "base.nosuch=1"]) == 2
    assert "unknown setting 'base.nosuch'" in capsys.readouterr().err
