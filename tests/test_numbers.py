"""The result tables of README.md and papers/numbers.md are generated from the shipped results files."""

from __future__ import annotations

import pytest

from mini_o3_lite import numbers


def test_the_documents_tables_match_the_results_files():
    assert numbers.main(["--check"]) == 0, "run `python -m mini_o3_lite.numbers` and commit the documents"


def test_a_hand_edited_table_is_reported_stale_and_rewritten(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "doc.md"
    fresh = f"intro\n<!-- numbers:training -->\n{numbers.training()}\n<!-- /numbers:training -->\nend\n"
    doc.write_text(fresh.replace("2,571", "2,500"))  # someone typed a number into the table
    monkeypatch.setattr(numbers, "DOCUMENTS", [doc])
    monkeypatch.setattr(numbers, "KIT", tmp_path)
    assert numbers.main(["--check"]) == 1
    assert "doc.md: stale" in capsys.readouterr().out
    assert "2,500" in doc.read_text()  # --check writes nothing
    assert numbers.main([]) == 0 and doc.read_text() == fresh
    assert numbers.main(["--check"]) == 0


def test_an_unknown_block_is_named():
    with pytest.raises(KeyError, match="tables"):
        numbers.render("<!-- numbers:tables -->\n<!-- /numbers:tables -->")


def test_a_missing_results_file_names_the_command_that_makes_it(monkeypatch, tmp_path):
    monkeypatch.setattr(numbers, "EVALS", tmp_path)
    with pytest.raises(FileNotFoundError, match="ship-evals SFT_16turns"):
        numbers.rows("SFT_16turns")
