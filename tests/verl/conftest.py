"""The verl side's fixtures: the kit's exports, composed by verl's own entry point and read by verl's own classes.

These tests run in `.venv-verl` (`make test-verl`). In the kit's `.venv`, which has no verl (nor LLaMA-Factory),
every test module here skips at import, so this file imports nothing of either at module level.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mini_o3_lite import export
from mini_o3_lite.presets import load_preset

TINY_BASE = Path(__file__).resolve().parents[2] / "mini_o3_lite" / "assets" / "tiny-base"
P = load_preset("tiny")  # its pixel budget is the tiny base's processor's, so verl and the kit count the same tokens


@pytest.fixture(scope="session")
def processor():
    """The kit's shipped tiny Qwen2.5-VL processor, loaded the way verl loads a checkpoint's (AutoProcessor)."""
    from verl.utils import hf_processor

    return hf_processor(str(TINY_BASE))


@pytest.fixture(scope="session")
def exported(dataset, tmp_path_factory) -> Path:
    """`export --format verl` of the dataset, the originals' pixel budget set to the tiny processor's."""
    out = tmp_path_factory.mktemp("verl")
    export.export_verl(dataset, out, min_pixels=P.min_pixels, max_pixels=P.max_pixels)
    return out


def _run_script(folder: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """Run an exported launch script with Hydra's `--cfg job`: verl's main_ppo composes and prints its
    configuration, then stops before anything starts (no Ray, no GPU)."""
    env = os.environ | {"PYTHON": sys.executable, "MODEL_PATH": str(TINY_BASE)}
    return subprocess.run(["bash", str(folder / name), *extra, "--cfg", "job"], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="session")
def run_script():
    """`run_script(folder, script_name, *extra_overrides)`: a launch script run with `--cfg job`."""
    return _run_script


@pytest.fixture(scope="session")
def composed(exported) -> dict:
    """Each launch script's configuration as verl's main_ppo composes it (an OmegaConf DictConfig per script)."""
    from omegaconf import OmegaConf

    configs = {}
    for name in export.SCRIPTS:
        done = _run_script(exported, name)
        assert done.returncode == 0, done.stderr[-3000:]
        configs[name] = OmegaConf.create(done.stdout)
    return configs
