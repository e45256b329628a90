"""The model card's generated parts from a metrics dict, and the `release` command's checks of its inputs."""

from mini_o3_lite import cli
from mini_o3_lite.release import presence_line, recognition_line, search_table, step_table

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
    assert presence_line({"skills": {"presence": 0.85}}) == ""


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
