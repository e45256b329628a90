"""Pretraining the tiny base VLM: teach a fresh tiny Qwen2.5-VL to *see* before it learns to search.

The tasks, batches and evaluation are `base_tasks.py`'s; this module is the training loop. It is plain
PyTorch (AdamW, transformers' linear warm-up + cosine schedule) rather than the transformers `Trainer`
SFT uses, because exact resume is the point: the batch of step s depends only on (seed, s) and is built
on the fly from freshly generated scenes (no dataset for a `Trainer` to shuffle), and `checkpoint.py`
saves model, optimizer and scheduler every few minutes, swapped in atomically.
Run it with `mini-o3-lite pretrain`; `mini-o3-lite release` measures and ships the result.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from . import fragments
from .base_tasks import Example, collate, corpus, evaluate, example_batch
from .checkpoint import recover_checkpoint, save_checkpoint
from .modeling import build_tiny, count_parameters, freeze_vision, load, save
from .presets import Preset


def train(preset: Preset, out: str | Path, init: str | Path | None = None, progress: bool = True, log=print,
          until: int | None = None, vision_from: str | Path | None = None) -> dict:
    """Pretrain (or resume) the tiny base VLM into `out`; returns a summary with the final metrics.

    Starts from a fresh model, or from the checkpoint directory `init` (e.g. the shipped base, for a
    short continuation run), or resumes from `out/checkpoint` when one exists. With `until`, stops
    after that step with a checkpoint, exactly as an interrupted run would be left (for time-boxed
    runs and the resume test). `vision_from`: a checkpoint whose vision tower and merger replace the
    starting model's (same vision config), for a language-model-only continuation (`base.freeze_vision`).
    """
    cfg, out = preset.base, Path(out)
    ckpt = out / "checkpoint"
    torch.manual_seed(cfg.seed)
    recover_checkpoint(ckpt)
    if (ckpt / "trainer_state.pt").exists():
        model, processor = load(ckpt)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        log(f"resuming from {ckpt} at step {state['step']}")
    else:
        if init is not None:
            model, processor = load(init)
        else:
            model, processor = build_tiny(corpus(preset), cfg, preset.min_pixels, preset.max_pixels)
        if vision_from is not None:
            model.model.visual.load_state_dict(load(vision_from)[0].model.visual.state_dict())
        state = {"step": 0, "curve": [], "evals": [], "seconds": 0.0}
    model.train()
    if cfg.freeze_vision:
        freeze_vision(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.steps * cfg.warmup), cfg.steps)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    held_out = example_batch(preset, "test", 0, min(cfg.n_eval, 128))
    if cfg.step_share:  # and the agent's step after a zoom, when it is trained
        held_out += [Example(*f) for f in fragments.held_out(preset, 8)]
    last_save, started = time.time(), time.time() - state["seconds"]
    bar = tqdm(range(state["step"], cfg.steps), initial=state["step"], total=cfg.steps, disable=not progress,
               desc="pretrain")
    for step in bar:
        if until is not None and step >= until:
            save_checkpoint(model, processor, optimizer, scheduler, state | {"seconds": time.time() - started}, ckpt)
            return {"steps": state["step"], "interrupted": True}
        batch = collate(example_batch(preset, "train", step, cfg.batch_size), processor)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] = step + 1
        state["curve"].append([step + 1, round(loss.item(), 4), round(time.time() - started, 1)])
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            metrics = evaluate(model, processor, held_out)
            state["evals"].append({"step": step + 1, "seconds": round(time.time() - started, 1), **metrics})
            log(json.dumps(state["evals"][-1]))
        if time.time() - last_save > 60 * cfg.checkpoint_minutes or step + 1 == cfg.steps:
            state["seconds"] = time.time() - started
            save_checkpoint(model, processor, optimizer, scheduler, state, ckpt)
            last_save = time.time()
    state["seconds"] = time.time() - started
    save(model, processor, out)
    final = evaluate(model, processor, example_batch(preset, "test", 1, cfg.n_eval))
    summary = {"preset": asdict(preset), "steps": state["step"], "wall_seconds": round(state["seconds"], 1),
               "parameters": count_parameters(model), "final_eval": final}
    (out / "training_log.json").write_text(json.dumps({**summary, "curve": state["curve"], "evals": state["evals"]}))
    return summary
