"""Training checkpoints that survive an interrupt: model directory + optimizer/scheduler/step state.

Shared by pretraining and RL; SFT uses the transformers Trainer's own checkpoints. Pretraining and RL
are hand-written loops (RL because no trainer runs a multi-turn image tool, see grpo.py; pretraining
to stay one readable loop beside it), so they cannot use `Trainer`'s checkpoints, and accelerate's
`save_state` would bring a second launcher for the state of one optimizer. What they need is small:
the model as an ordinary checkpoint directory (loadable on its own), the optimizer and scheduler
states, the step and the loop's logs, swapped in atomically, so that an interrupt at any moment
leaves one complete checkpoint to resume from.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .modeling import save


def save_checkpoint(model, processor, optimizer, scheduler, state: dict, path: Path) -> None:
    """Model directory plus optimizer/scheduler (None: a constant rate)/step, written to a temp dir then swapped in.

    At every moment a complete checkpoint exists under `path`, `path.tmp` or `path.old`;
    `recover_checkpoint` puts it back in place after a crash.
    """
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save(model, processor, tmp)
    schedule = {} if scheduler is None else {"scheduler": scheduler.state_dict()}
    torch.save({**state, "optimizer": optimizer.state_dict(), **schedule}, tmp / "trainer_state.pt")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def recover_checkpoint(path: Path) -> None:
    """After a crash mid-swap: the newest complete checkpoint (`.tmp`, then `.old`) becomes `path`."""
    if (path / "trainer_state.pt").exists():
        return
    for spare in (path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")):
        if (spare / "trainer_state.pt").exists():
            shutil.rmtree(path, ignore_errors=True)
            spare.rename(path)
            return
