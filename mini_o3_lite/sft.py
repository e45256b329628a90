"""Cold-start SFT with TRL's `SFTTrainer` on multi-turn, multi-image trajectories.

Mini-o3 fine-tunes Qwen2.5-VL-7B-Instruct on its cold-start trajectories (LLaMA-Factory, full
fine-tune, vision tower and projector frozen, lr 1e-5, 3 epochs, cosine, warm-up 0.1). The kit does
the same with TRL: each trajectory is a `messages` conversation with its `images` (original, then
every observation), loss on the assistant turns only (`assistant_only_loss`, which reads the
`{% generation %}` markers of the chat template): the system prompt, the question, the images and
the observation or error turns never carry loss.

- `full` preset: LoRA (PEFT) on the language model's projections, bf16, gradient checkpointing.
- `tiny` preset: full fine-tune of the language model (vision frozen): at 7.7M parameters there is
  no memory to save with LoRA, and a low-rank update only restricts what a tiny model can learn.
  `sft.lora=True` switches tiny to LoRA too, for comparison.
Checkpoints are TRL/transformers checkpoints; a run that is interrupted resumes from the last one.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from . import memory
from .manifest import cached_stage, portable, stage_dir
from .modeling import freeze_vision, load_for, lora_config, model_path, resolve_device, save
from .presets import Preset
from .teacher import ensure_coldstart
from .trajectory import load_trajectories


def to_dataset(trajectories):
    """A `datasets.Dataset` of {messages, images} rows, the conversational VLM format TRL reads.

    `length` (characters of text plus a share per image) lets the trainer batch trajectories of
    similar length together: on a CPU, padding a 600-token trajectory to 2,700 is most of the cost.
    """
    from datasets import Dataset  # deferred, like TRL and transformers' Trainer below: seconds to import

    def length(t) -> int:
        chars = sum(len(c.get("text", "")) for m in t.messages for c in m["content"])
        return chars + 64 * len(t.images)

    rows = [{"messages": t.messages, "images": list(t.images), "length": length(t)} for t in trajectories]
    return Dataset.from_list(rows)


def sft_config(preset: Preset, out: Path, n_examples: int, **overrides):
    """TRL `SFTConfig` from the preset's `sft` section (Mini-o3's recipe at the preset's scale)."""
    from trl import SFTConfig  # deferred (seconds to import)

    cfg = preset.sft
    gpu = resolve_device(preset.device) != "cpu"
    args = dict(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=cfg.lr,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup,  # a float below 1 is a fraction of the training steps (Mini-o3: 0.1)
        weight_decay=0.0,
        logging_steps=max(1, n_examples // cfg.batch_size // 20),
        save_strategy="steps",
        save_steps=max(10, n_examples // cfg.batch_size // 2),
        save_total_limit=2,
        report_to="none",
        seed=preset.seed,
        data_seed=preset.seed,
        assistant_only_loss=True,
        max_length=None,  # never truncate: the teacher keeps only trajectories within the preset's context
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        bf16=gpu and preset.dtype == "bfloat16",
        use_cpu=not gpu,
        activation_checkpointing=preset.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if preset.gradient_checkpointing else None,
        dataloader_num_workers=0,
        disable_tqdm=False,
        train_sampling_strategy="group_by_length",  # less padding: batches of similar-length trajectories
    )
    args.update(overrides)
    return SFTConfig(**args)


def memory_callback():
    """A `TrainerCallback` that puts each logged step's peak RSS (and GPU max allocated) into the trainer's logs."""
    from transformers import TrainerCallback  # deferred: loads transformers' Trainer

    class MemoryCallback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            memory.reset_peak()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.log_history and "loss" in state.log_history[-1]:  # the Trainer logged a copy of `logs`
                state.log_history[-1].update(memory.snapshot())

    return MemoryCallback()


def resumable(trainer_cls):
    """`trainer_cls` whose resume loads a full checkpoint's weights through `from_pretrained`.

    Written by hand because transformers 5 saves Qwen2.5-VL in its original key layout (`visual.*`,
    `model.layers.*`) while `Trainer._load_from_checkpoint` loads the file into the renamed modules
    (`model.visual.*`, `model.language_model.*`) without converting: no key matches, the weights stay
    at `init` while the optimizer and schedule resume (huggingface/transformers#43701, open; tests/test_sft.py).
    `from_pretrained` converts.
    LoRA checkpoints (adapters only) keep the trainer's own loading.
    """

    class Resumable(trainer_cls):
        def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
            model = self.model if model is None else model
            if hasattr(model, "peft_config"):
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            saved = type(model).from_pretrained(resume_from_checkpoint, dtype=model.dtype)
            model.load_state_dict(saved.state_dict())  # strict: every weight, or an error that names it

    return Resumable


def train_sft(preset: Preset, trajectories, out: str | Path, init: str | Path, **overrides) -> dict:
    """Fine-tune the checkpoint `init` on the trajectories; the result is saved to `out` (HF directory).

    Returns a summary with the loss curve (also written to `out/sft_log.json`).
    """
    from trl import SFTTrainer  # deferred (seconds to import)

    out = Path(out)
    model, processor = load_for(preset, init)  # the preset's device, dtype and pixel budget
    freeze_vision(model)
    peft = lora_config(preset.sft.lora_rank) if preset.sft.lora else None
    dataset = to_dataset(trajectories)
    args = sft_config(preset, out, len(dataset), **overrides)
    trainer = resumable(SFTTrainer)(model=model, args=args, train_dataset=dataset, processing_class=processor,
                                    peft_config=peft, callbacks=[memory_callback()])
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    checkpoints = sorted(Path(args.output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    result = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)
    model = trainer.model.merge_and_unload() if peft is not None else trainer.model
    save(model, processor, out)
    log = [e for e in trainer.state.log_history if "loss" in e]
    summary = {"steps": trainer.state.global_step, "train_loss": round(result.training_loss, 4),
               "seconds": round(result.metrics.get("train_runtime", 0.0), 1), "lora": peft is not None,
               "trainable": trainable,
               "curve": [{k: e[k] for k in ("step", "loss", "rss_mb", "peak_rss_mb", "gpu_max_allocated_mb") if k in e}
                         for e in log]}
    (out / "sft_log.json").write_text(json.dumps(summary, indent=1))
    return summary


def ensure_sft(preset: Preset, init: str | Path | None = None, **overrides):
    """`runs/<preset>/sft/`: the cold-start model, trained once per config from `ensure_coldstart`'s data.

    `init` defaults to the preset's model (the shipped tiny base for `tiny`). Returns (folder, manifest);
    the folder is an ordinary checkpoint directory (`modeling.load(folder)`).
    """
    init = model_path(init if init is not None else preset.model_path, preset.name)
    data_dir, data = ensure_coldstart(preset)
    folder = stage_dir(preset.name, "sft")

    def build(out):
        summary = train_sft(preset, load_trajectories(data_dir), out, init, **overrides)
        return {k: v for k, v in summary.items() if k != "curve"}

    config = {"sft": asdict(preset.sft), "dtype": preset.dtype, "seed": preset.seed, "overrides": overrides}
    return folder, cached_stage(folder, config, build, {"coldstart": data["config_hash"], "init": portable(init)},
                                preset.seed)
