"""The model card's generated parts: tile-search table and the presence sentence, from a metrics dict."""

from mini_o3_lite.release import presence_line, search_table

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
