"""Tests for mini_o3_lite.manifest (stage caching by config hash) and mini_o3_lite.cli (the notebook runner)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mini_o3_lite import __version__, cli, manifest, runner
from mini_o3_lite.manifest import MANIFEST, cached_stage, config_hash, read_manifest
from mini_o3_lite.presets import as_dict, load_preset

REPO = Path(__file__).resolve().parents[1]


class CountingBuild:
    """A stage builder that records how often it ran and writes one output file."""

    def __init__(self, metrics: dict | None = None):
        self.calls = 0
        self.metrics = metrics or {"accuracy": 0.5}

    def __call__(self, folder: Path) -> dict:
        self.calls += 1
        assert folder.is_dir()
        (folder / "out.txt").write_text(f"build {self.calls}\n")
        return dict(self.metrics)


def test_config_hash_is_stable():
    config = {"a": 1, "b": [1, 2], "c": {"d": "x"}}
    # Pinned: a change of the hashing would silently invalidate every cached stage of every user.
    assert config_hash(config) == "b12cb406c90ad347"
    assert config_hash({"c": {"d": "x"}, "b": [1, 2], "a": 1}) == config_hash(config)  # key order is irrelevant
    assert config_hash(json.loads(json.dumps(config))) == config_hash(config)  # survives a JSON round trip
    assert len(config_hash(config)) == 16 and int(config_hash(config), 16) >= 0


def test_config_hash_changes_with_the_config():
    base = as_dict(load_preset("tiny"))
    assert config_hash(base) == config_hash(as_dict(load_preset("tiny")))
    assert config_hash(base) != config_hash(as_dict(load_preset("tiny", **{"base.steps": 1})))
    assert config_hash(base) != config_hash(as_dict(load_preset("full")))
    assert config_hash({"a": 1}) != config_hash({"a": 1.5}) != config_hash({"a": "1.5"})
    assert config_hash({"a": [1, 2]}) != config_hash({"a": [2, 1]})


def test_cached_stage_builds_once_and_reuses(tmp_path):
    folder = tmp_path / "runs" / "tiny" / "data"
    build = CountingBuild({"n_scenes": 3})
    config = {"n_train": 3, "seed": 0}
    first = cached_stage(folder, config, build, inputs={"base": "runs/tiny/base"}, seed=7)
    assert build.calls == 1
    assert (folder / "out.txt").read_text() == "build 1\n"
    on_disk = read_manifest(folder)
    assert on_disk == json.loads((folder / MANIFEST).read_text()) == first
    assert first["config"] == config
    assert first["config_hash"] == config_hash({"config": config, "inputs": {"base": "runs/tiny/base"}})
    assert first["metrics"] == {"n_scenes": 3} and first["inputs"] == {"base": "runs/tiny/base"}
    assert first["seed"] == 7 and first["package_version"] == __version__ and first["stage"] == "data"
    assert first["wall_seconds"] >= 0

    second = cached_stage(folder, {"seed": 0, "n_train": 3}, build, inputs={"base": "runs/tiny/base"})
    assert build.calls == 1  # same config (other key order), same inputs: reused
    assert second == first
    assert (folder / "out.txt").read_text() == "build 1\n"
    cached_stage(folder, config, build, inputs={"base": "runs/tiny/other"})
    assert build.calls == 2  # another input stage: rebuilt


def test_cached_stage_rebuilds_when_the_config_changes(tmp_path):
    folder = tmp_path / "stage"
    build = CountingBuild()
    cached_stage(folder, {"steps": 10}, build)
    changed = cached_stage(folder, {"steps": 20}, build)
    assert build.calls == 2
    expected = config_hash({"config": {"steps": 20}, "inputs": {}})
    assert changed["config"] == {"steps": 20} and read_manifest(folder)["config_hash"] == expected
    assert (folder / "out.txt").read_text() == "build 2\n"
    cached_stage(folder, {"steps": 20}, build)  # the new manifest is reused in turn
    assert build.calls == 2
    cached_stage(folder, {"steps": 10}, build)  # going back is a change too
    assert build.calls == 3


def test_interrupted_stage_is_built_again(tmp_path):
    folder = tmp_path / "stage"

    def crash(_folder: Path) -> dict:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_stage(folder, {"steps": 10}, crash)
    assert read_manifest(folder) is None  # no manifest: nothing will be mistaken for a finished stage
    build = CountingBuild()
    cached_stage(folder, {"steps": 10}, build)
    assert build.calls == 1


def test_a_changed_config_never_resumes_the_old_checkpoints(tmp_path):
    folder = tmp_path / "stage"

    def interrupted(folder: Path) -> dict:
        (folder / "checkpoint").mkdir()
        raise KeyboardInterrupt

    def resuming(folder: Path) -> dict:
        return {"resumed": (folder / "checkpoint").exists()}

    with pytest.raises(KeyboardInterrupt):
        cached_stage(folder, {"steps": 10}, interrupted)
    assert cached_stage(folder, {"steps": 10}, resuming)["metrics"] == {"resumed": True}  # same config: resume
    with pytest.raises(KeyboardInterrupt):
        cached_stage(folder, {"steps": 10, "lr": 1}, interrupted)
    assert cached_stage(folder, {"steps": 20}, resuming)["metrics"] == {"resumed": False}  # other config: fresh
    assert not (folder / ".building").exists()


def test_a_shipped_copy_is_taken_only_when_its_config_matches(tmp_path):
    shipped, folder = tmp_path / "assets" / "evals" / "sft", tmp_path / "runs" / "tiny" / "eval" / "sft"
    build = CountingBuild({"accuracy": 0.5})
    cached_stage(shipped, {"max_turns": 16}, build, inputs={"data": "abc"})  # the kit's copy, made once
    assert build.calls == 1
    taken = cached_stage(folder, {"max_turns": 16}, build, inputs={"data": "abc"}, shipped=shipped)
    assert build.calls == 1 and taken == read_manifest(shipped)  # copied, not built
    assert (folder / "out.txt").read_text() == "build 1\n"
    other = cached_stage(folder, {"max_turns": 32}, build, inputs={"data": "abc"}, shipped=shipped)
    assert build.calls == 2 and other["config"] == {"max_turns": 32}  # another protocol: computed
    cached_stage(folder, {"max_turns": 16}, build, inputs={"data": "other"}, shipped=shipped)
    assert build.calls == 3  # other data: computed
    cached_stage(tmp_path / "elsewhere", {"max_turns": 16}, build, inputs={"data": "abc"},
                 shipped=tmp_path / "missing")
    assert build.calls == 4  # no copy: computed


def test_ship_evals_copies_a_finished_evaluation_and_names_a_missing_one(tmp_path, monkeypatch, capsys):
    from mini_o3_lite import evaluate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "mini_o3_lite").mkdir()
    monkeypatch.setattr(evaluate, "SHIPPED_EVALS", tmp_path / "shipped")
    done = tmp_path / "runs" / "tiny" / "eval" / "SFT_16turns"

    def evaluation(out):
        (out / "rows.jsonl").write_text("{}\n")
        (out / "memory.json").write_text("[]")
        return {}

    cached_stage(done, {"max_turns": 16}, evaluation)
    assert cli.main(["ship-evals", "SFT_16turns"]) == 0
    assert (tmp_path / "shipped" / "tiny" / "SFT_16turns" / "rows.jsonl").read_text() == "{}\n"
    assert read_manifest(tmp_path / "shipped" / "tiny" / "SFT_16turns") == read_manifest(done)
    assert cli.main(["ship-evals", "SFT_32turns"]) == 2
    assert "SFT_32turns: no finished evaluation" in capsys.readouterr().err


def test_read_manifest_of_a_missing_folder(tmp_path):
    assert read_manifest(tmp_path / "nothing") is None


def test_stage_dir_is_under_the_checkout(monkeypatch):
    monkeypatch.chdir(REPO / "tests")
    assert manifest.repo_root() == REPO
    assert manifest.stage_dir("tiny", "sft") == REPO / "runs" / "tiny" / "sft"


@pytest.mark.parametrize(
    "text, value",
    [
        ("8", 8),
        ("-3", -3),
        ("2e-4", 2e-4),
        ("0.5", 0.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 2, 3]", [1, 2, 3]),
        ('{"steps": 10}', {"steps": 10}),
        ('"quoted"', "quoted"),
        ("tiny", "tiny"),
        ("/models/Qwen2.5-VL-7B-Instruct", "/models/Qwen2.5-VL-7B-Instruct"),
        ("", ""),
        ("True", "True"),  # JSON booleans are lower case; anything else stays a string
    ],
)
def test_parse_value(text, value):
    parsed = cli.parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_notebook_selection(tmp_path):
    for name in ("00_tiny_base_vlm.ipynb", "01_data.ipynb", "05_rl.ipynb", "07_scaling.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    names = lambda first, last: [nb.name for nb in runner.notebooks(tmp_path, first, last)]  # noqa: E731
    assert names(None, None) == ["00_tiny_base_vlm.ipynb", "01_data.ipynb", "05_rl.ipynb", "07_scaling.ipynb"]
    assert names("01", "05") == ["01_data.ipynb", "05_rl.ipynb"]
    assert names("05", None) == ["05_rl.ipynb", "07_scaling.ipynb"]
    assert names(None, "00") == ["00_tiny_base_vlm.ipynb"]
    assert names("99", None) == []


def test_run_with_no_matching_notebooks_returns_0(checkout, monkeypatch, capsys):
    # A stand-in checkout with two notebooks, so the real runs/ folder is left alone and nothing executes.
    tmp_path = checkout
    (tmp_path / "notebooks").mkdir()
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (tmp_path / "notebooks" / name).write_text("not a notebook: executing it would fail")
    monkeypatch.chdir(tmp_path / "notebooks")
    assert cli.main(["run", "--preset", "tiny", "--from", "99"]) == 0
    assert "no notebooks to run" in capsys.readouterr().out
    assert (tmp_path / "runs" / "tiny" / "notebooks").is_dir()


def test_run_summary_has_key_metrics_and_names_the_failed_cell(checkout, monkeypatch, capsys):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    tmp_path = checkout
    (tmp_path / "notebooks").mkdir()
    params = new_code_cell('preset = "full"\nscale = 1', metadata={"tags": ["parameters"]})
    ok = new_notebook(cells=[params, new_code_cell(
        "from mini_o3_lite.manifest import key_metrics\nkey_metrics(preset=preset, accuracy=0.25 * scale)")])
    bad = new_notebook(cells=[params, new_code_cell("x = 1"), new_code_cell("raise ValueError('no data at runs/x')")])
    for name, nb in (("00_ok.ipynb", ok), ("01_bad.ipynb", bad)):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(tmp_path / "notebooks" / name))
    monkeypatch.chdir(tmp_path / "notebooks")
    assert cli.main(["run", "--preset", "tiny", "-p", "scale=2"]) == 1
    out = capsys.readouterr().out.split("\nsummary\n")[-1]
    assert "00_ok.ipynb" in out and "preset tiny, accuracy 0.5" in out
    # cell 4 of the executed notebook: papermill injects the parameters after the parameters cell
    assert "01_bad.ipynb" in out and "FAILED in cell 4: ValueError: no data at runs/x" in out
    executed = tmp_path / "runs/tiny/notebooks/00_ok.ipynb"
    assert manifest.read_key_metrics(executed) == {"preset": "tiny", "accuracy": 0.5}


def test_run_rejects_a_parameter_without_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: nothing is created in the repository
    with pytest.raises(SystemExit, match="key=value"):
        cli.main(["run", "--preset", "tiny", "--from", "99", "-p", "max_turns"])


def test_cli_help():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("mini-o3-lite")
    if not exe.is_file():
        exe = Path(shutil.which("mini-o3-lite") or REPO / ".venv" / "bin" / "mini-o3-lite")
    assert exe.is_file(), f"console script missing: {exe} (pip install -e .)"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "usage: mini-o3-lite" in result.stdout and "run" in result.stdout
    result = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    for flag in ("--preset", "--from", "--to", "-p", "--parameters-file"):
        assert flag in result.stdout


# ---------------------------------------------------------------- `eval` and `export`
def _tiny_dataset(folder: Path, n: int = 2) -> Path:
    """A dataset folder like `dataset.ensure_dataset`'s, with n test and n train records."""
    from mini_o3_lite import dataset
    from mini_o3_lite.data import write_records

    p = load_preset("tiny")
    for split in ("train", "test"):
        records, images = dataset.make_split(p.data, split, p.min_pixels, p.max_pixels, n=n)
        write_records(folder / f"{split}.jsonl", records, images)
    return folder


@pytest.mark.parametrize("command", ["eval", "export"])
def test_eval_and_export_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    flags = {"eval": ("--preset", "--model", "--split", "--n", "--max-turns", "--samples", "--temperature", "--name"),
             "export": ("--preset", "--format", "--out", "--split", "--trajectories")}[command]
    for flag in flags:
        assert flag in out, flag
    assert "eval" in cli.__doc__ and "export" in cli.__doc__


def test_eval_bad_model_path_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-such-checkpoint"
    assert cli.main(["eval", "--preset", "tiny", "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and err.startswith("mini-o3-lite eval: error:")
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    assert cli.main(["eval", "--model", str(tmp_path)]) == 2
    assert "holds a 'llama' model; supported: Qwen2.5-VL" in capsys.readouterr().err


def test_eval_model_words_and_argument_errors(capsys):
    from mini_o3_lite import modeling

    tiny, full = load_preset("tiny"), load_preset("full")
    assert cli.model_dir("base", tiny) == modeling.SHIPPED_BASE
    assert cli.model_dir("sft", tiny) == modeling.shipped("sft")
    with pytest.raises(modeling.ModelPathError, match="model_path"):
        cli.model_dir("base", full)  # the full preset names no checkpoint of its own
    assert cli.main(["eval", "--set", "no_such_setting=1"]) == 2  # a one-line error naming the setting
    assert "unknown setting 'no_such_setting'" in capsys.readouterr().err
    for bad in (["eval", "--model", "base", "--n", "0"], ["eval", "--model", "base", "--max-turns", "0"],
                ["eval", "--model", "base", "--split", "val"],
                ["export", "--out", "x", "--format", "json"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(bad)
        assert exit_.value.code == 2
    capsys.readouterr()


def test_eval_runs_the_shipped_base_and_prints_table_and_protocol(tmp_path, monkeypatch, capsys):
    from mini_o3_lite import evaluate

    data = _tiny_dataset(tmp_path / "data")
    monkeypatch.setattr(evaluate, "ensure_dataset", lambda preset, split=None, n=None: (data, {"config_hash": "test"}))
    monkeypatch.chdir(tmp_path)  # runs/ goes under tmp_path, not the checkout
    assert cli.main(["eval", "--preset", "tiny", "--model", "base", "--n", "2", "--max-turns", "1"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "\nprotocol\n" in out and "max_turns: 1" in out and "n: 2" in out
    assert (tmp_path / "runs" / "tiny" / "eval" / "cli-base-test-t1-n2" / "rows.jsonl").is_file()


def test_export_cli_writes_verl_files_and_reports_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    from mini_o3_lite import dataset

    data = _tiny_dataset(tmp_path / "data", n=1)
    monkeypatch.setattr(dataset, "ensure_dataset", lambda preset, split=None, n=None: (data, {"config_hash": "test"}))
    assert cli.main(["export", "--format", "verl", "--out", str(tmp_path / "out"), "--split", "test"]) == 0
    assert (tmp_path / "out" / "verl" / "test.parquet").is_file()
    assert not (tmp_path / "out" / "verl" / "train.parquet").exists()
    assert "test.parquet" in capsys.readouterr().out
    missing = tmp_path / "no-coldstart"
    assert cli.main(["export", "--format", "sharegpt", "--out", str(tmp_path / "out"),
                     "--trajectories", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "no trajectories file" in err
