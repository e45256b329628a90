"""From a stage name to its checkpoint: the one place notebooks, the CLI and the trainers resolve one.

A pipeline stage leaves an ordinary transformers checkpoint directory: the cold start's in
`runs/<preset>/sft/`, an RL variant's in `runs/<preset>/<variant>/model/`. For the tiny preset the
kit ships these checkpoints (`mini_o3_lite/assets/`), so a notebook loads them in seconds unless it is
asked to train them again.
"""

from __future__ import annotations

from pathlib import Path

from .grpo import ensure_rl
from .manifest import stage_dir
from .modeling import model_path, shipped
from .presets import STAGES, Preset
from .sft import ensure_sft


def checkpoint(preset: Preset, stage: str | Path, train: bool = False, build: bool = True) -> Path:
    """The checkpoint directory of `stage` ("base", "sft", an RL variant, or a directory) for `preset`.

    "base" is the preset's model (`model_path`). For tiny, a trained stage is the shipped checkpoint
    unless `train`; otherwise it is the run's own under `runs/<preset>/`, trained there when missing
    (an interrupted run resumes) unless `build=False`, which only names the folder.
    """
    if str(stage) not in STAGES:
        return Path(stage)
    if stage == "base":
        return model_path(preset.model_path, preset.name)
    if preset.name == "tiny" and not train:
        return shipped(stage)
    if stage == "sft":
        return ensure_sft(preset)[0] if build else stage_dir(preset.name, "sft")
    return (ensure_rl(preset, stage)[0] if build else stage_dir(preset.name, stage)) / "model"
