"""Cold-start SFT: exactly which tokens carry loss, a tiny end-to-end run through TRL's SFTTrainer, exact resume."""

from __future__ import annotations

from PIL import Image
from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

from mini_o3_lite import protocol
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout


class Rec:
    def __init__(self, rid):
        self.id, self.answer, self.choices = rid, "blue", None
        self.question = "What colour is the dot on the red square?"


TURNS = [
    protocol.assistant_text("I see spots: red. Zoom in.",
                            protocol.tool_call_text((0.5, 0.0, 1.0, 0.5), "original_image")),
    '<think>Oops.</think><grounding>{"bbox_2d": [0.9, 0.1, 0.2, 0.4], "source": "observation_1"}</grounding>',
    protocol.assistant_text("I see red square with a blue dot.", protocol.answer_text("blue")),
]


def trajectory(processor):
    image = Image.new("RGB", (400, 400), (128, 128, 128))
    return rollout([Rec("t")], [image], processor, replay_policy({"t": TURNS}), RolloutConfig(max_turns=6))[0]


def test_loss_is_on_assistant_turns_only(tiny_processor):
    traj = trajectory(tiny_processor)
    roles = ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert [m["role"] for m in traj.messages] == roles
    collator = DataCollatorForVisionLanguageModeling(tiny_processor, assistant_only_loss=True)
    batch = collator([{"messages": traj.messages, "images": traj.images}])
    labels = batch["labels"][0]
    carried = [t for t in labels.tolist() if t != -100]
    tok = tiny_processor.tokenizer
    # exactly the three assistant turns, each closed by <|im_end|>; nothing of the system prompt, question,
    # images, observation turn or error turn
    assert tok.decode(carried) == "".join(t + "<|im_end|>" for t in TURNS)
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert image_id not in carried and int((batch["input_ids"][0] == image_id).sum()) > 0
    # the same tokens the agent loop marks as the model's (the loop's last turn stops at </answer>)
    model_tokens = [t for t, m in zip(traj.input_ids, traj.model_mask, strict=True) if m]
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert [t for t in carried if t != end] == [t for t in model_tokens if t != end]


def test_tiny_sft_run_trains_language_only_and_saves(tiny, tmp_path):
    import torch

    from mini_o3_lite import modeling, sft
    from mini_o3_lite.presets import load_preset

    model, processor = tiny
    init = modeling.save(model, processor, tmp_path / "init")
    trajs = [trajectory(processor) for _ in range(2)]
    preset = load_preset("tiny", **{"sft.batch_size": 2, "sft.epochs": 2.0, "sft.lr": 1e-3})
    summary = sft.train_sft(preset, trajs, tmp_path / "sft", init, logging_steps=1, save_steps=1)
    assert summary["steps"] == 2 and summary["lora"] is False and summary["curve"]
    assert all(e["peak_rss_mb"] > 0 for e in summary["curve"])  # memory of every logged step
    after, _ = modeling.load(tmp_path / "sft")
    before = dict(model.named_parameters())
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(not n.startswith("model.visual") for n in changed)  # vision tower frozen
    assert (tmp_path / "sft" / "sft_log.json").is_file()


def test_interrupted_sft_resumes_to_the_same_weights(tiny, tmp_path):
    import shutil

    import torch

    from mini_o3_lite import modeling, sft
    from mini_o3_lite.presets import load_preset

    model, processor = tiny
    init = modeling.save(model, processor, tmp_path / "init")
    trajs = [trajectory(processor) for _ in range(2)]
    preset = load_preset("tiny", **{"sft.batch_size": 2, "sft.epochs": 3.0, "sft.lr": 1e-3})
    sft.train_sft(preset, trajs, tmp_path / "whole", init, logging_steps=1, save_steps=1)
    sft.train_sft(preset, trajs, tmp_path / "cut", init, logging_steps=1, save_steps=1)
    # an interrupt during step 3 of 3: checkpoint-2 is the last one a killed run would leave
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "checkpoint-3")
    (tmp_path / "cut" / "model.safetensors").unlink()
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-2").is_dir()
    summary = sft.train_sft(preset, trajs, tmp_path / "cut", init, logging_steps=1, save_steps=1)
    assert summary["steps"] == 3 and [e["step"] for e in summary["curve"]] == [1, 2, 3]  # the log carries on, once
    whole, _ = modeling.load(tmp_path / "whole")
    resumed = dict(modeling.load(tmp_path / "cut")[0].named_parameters())
    for name, p in whole.named_parameters():
        assert torch.allclose(p, resumed[name], atol=1e-6), name
