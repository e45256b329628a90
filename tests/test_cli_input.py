"""The CLI refuses bad input before doing any work: one line naming what is wrong, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from mini_o3_lite import cli, runner

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def two_notebooks(checkout, monkeypatch):
    """A stand-in checkout with two notebooks whose parameters cells differ; nothing in them may run."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    (checkout / "notebooks").mkdir()
    for name, params in (("00_a.ipynb", 'preset = "tiny"\nmax_turns = None\noverrides = None'),
                         ("01_b.ipynb", 'preset = "tiny"\nmodel_path = None\nn_eval: int = 4')):
        cells = [new_code_cell(params, metadata={"tags": ["parameters"]}), new_code_cell("raise SystemError('ran')")]
        nbformat.write(new_notebook(cells=cells), str(checkout / "notebooks" / name))
    monkeypatch.chdir(checkout / "notebooks")
    return checkout


def refused(capsys, *args: str) -> str:
    """`mini-o3-lite run ARGS` must exit 2 with one line on stderr; returns that line."""
    assert cli.main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mini-o3-lite run: error:"), err
    return err


def test_parameters_are_read_from_the_parameters_cells(two_notebooks):
    found = [runner.notebook_parameters(nb) for nb in sorted((two_notebooks / "notebooks").glob("*.ipynb"))]
    assert found == [{"preset", "max_turns", "overrides"}, {"preset", "model_path", "n_eval"}]


def test_every_shipped_notebook_takes_the_preset_and_overrides():
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        assert {"preset", "overrides"} <= runner.notebook_parameters(nb), nb.name


def test_unknown_parameters_are_refused_with_a_suggestion(two_notebooks, capsys):
    assert "did you mean 'max_turns'?" in refused(capsys, "-p", "max_turn=32")
    err = refused(capsys, "-p", "nosuch=1")
    assert "'nosuch'" in err and "max_turns, model_path, n_eval, overrides, preset" in err
    assert "did you mean 'n_eval'?" in refused(capsys, "--from", "00", "--to", "01", "-p", "n_evals=2")
    assert "'model_path'" in refused(capsys, "--to", "00", "-p", "model_path=x")  # 00 has no such parameter
    yaml_file = two_notebooks / "params.yaml"
    yaml_file.write_text("max_turns: 8\nnosuch: 1\n")
    assert "'nosuch'" in refused(capsys, "--parameters-file", str(yaml_file))
    assert not list((two_notebooks / "runs" / "tiny" / "notebooks").iterdir())  # nothing ran


def test_presets_settings_and_model_paths_are_checked(two_notebooks, capsys):
    assert "unknown preset 'nosuch'; choose one of: tiny, full" in refused(capsys, "--preset", "nosuch")
    assert not (two_notebooks / "runs" / "nosuch").exists()
    assert "unknown setting 'nosuch'" in refused(capsys, "-p", 'overrides={"nosuch": 1}')
    assert "must be a dict" in refused(capsys, "-p", "overrides=3")
    assert "nowhere" in refused(capsys, "--model-path", str(two_notebooks / "nowhere"))


def test_an_unwritable_output_folder_is_refused(two_notebooks, capsys):
    (two_notebooks / "runs").write_text("a file where the runs folder goes")
    assert "cannot write to" in refused(capsys)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--from", "one"])
    assert exit_.value.code == 2


def test_export_refuses_an_unwritable_output_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert cli.main(["export", "--format", "trl", "--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to" in err and str(tmp_path / "file" / "out") in err
