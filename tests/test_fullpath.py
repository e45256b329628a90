"""The `full` preset's code path on CPU, through randomly initialised stand-ins of real checkpoints.

`mini_o3_lite.standin` writes a shrunken Qwen2.5-VL (and Qwen3-VL) directory with the real file layout:
Qwen's chat template (no generation markers, a default system turn), processor config, special tokens,
a vocabulary padded past the tokenizer, grouped KV heads, an untied head, window attention. These tests
run the same functions a researcher's `-p preset full -p model_path=...` runs; only the pixel budget,
canvas and token caps are made small (preset overrides, never a second code path).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import pytest
import torch
from PIL import Image

from mini_o3_lite import dataset, grpo, modeling, pixels, protocol, sft
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import Batcher, RolloutConfig, model_policy, replay_policy, rollout

SMALL = {"dtype": "float32", "min_pixels": 64 * 64, "max_pixels": 128 * 128, "max_new_tokens": 48,
         "data.canvas": 512, "data.n_train": 8, "data.n_test": 4}


def full(standin, **overrides):
    """The full preset on a stand-in, at a small pixel budget and canvas."""
    return load_preset("full", model_path=str(standin), **{**SMALL, **overrides})


@dataclass
class Rec:
    id: str
    question: str = "What colour is the dot on the red square?"
    answer: str = "blue"
    choices: list | None = None


def call(box, source="original_image") -> str:
    return protocol.assistant_text("Too small to read.", protocol.tool_call_text(box, source))


ANSWER = protocol.assistant_text("I can read it.", protocol.answer_text("blue"))
BAD_CALL = '<think>hm</think><grounding>{"bbox_2d": [0.9, 0.9, 0.1, 0.1], "source": "original_image"}</grounding>'


def scene_image(seed: int = 0) -> Image.Image:
    return Image.fromarray(torch.randint(0, 256, (300, 420, 3), generator=torch.Generator().manual_seed(seed),
                                         dtype=torch.uint8).numpy())


@pytest.fixture(params=["qwen25", "qwen3"])
def standin(request):
    return request.getfixturevalue(f"{request.param}_standin")


def test_processor_gets_generation_markers_and_rollout_ids_equal_the_template(standin):
    processor = modeling.processor_for(full(standin))
    assert modeling.has_generation_markers(processor.chat_template)
    script = {"a": [call((0.0, 0.0, 0.5, 0.5)), BAD_CALL, call((0.2, 0.2, 0.6, 0.6), "observation_1"), ANSWER]}
    t = rollout([Rec("a")], [scene_image()], processor, replay_policy(script), RolloutConfig(max_turns=6))[0]
    assert (t.finish, t.turns, len(t.images)) == ("answer", 4, 3)
    batcher = Batcher(processor)
    rendered = batcher.expand(batcher.text_ids(t.messages, generation_prompt=False), t.images)
    closing = processor.tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert rendered == t.input_ids + closing  # no system turn slipped in before observation or error turns
    # TRL's assistant-only loss reads these markers: loss on exactly the model's tokens
    out = processor.tokenizer.apply_chat_template(t.messages, tokenize=True, return_dict=True,
                                                  return_assistant_tokens_mask=True)
    model_tokens = sum(t.model_mask)
    assert sum(out["assistant_masks"]) == model_tokens + t.turns  # + the <|im_end|> closing each turn (a stop string
    # ends the sampled turn before it; the environment writes it)


def test_pixel_arithmetic_follows_the_checkpoint(standin):
    processor = modeling.processor_for(full(standin))
    factor = modeling.resize_factor(processor)
    patch, merge = processor.image_processor.patch_size, processor.image_processor.merge_size
    assert factor == {"qwen2_5_vl": 28, "qwen3_vl": 32}[json.loads((standin / "config.json").read_text())["model_type"]]
    for width, height in [(420, 300), (97, 1000), (2000, 1500)]:
        grid = processor.image_processor(images=[Image.new("RGB", (width, height))], return_tensors="pt")
        expected = pixels.grid(height, width, SMALL["min_pixels"], SMALL["max_pixels"], patch, merge)
        assert tuple(grid["image_grid_thw"][0].tolist()) == expected


class ForceScript:
    """A logits processor that makes `generate` say scripted text, placed after the kit's log-prob recorder:
    the tokens are forced, the recorded log-probs are the model's own (so they test positions and attention)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.rows, self.step = tokenizer, [], 0

    def set(self, texts: list[str]) -> None:
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [end] for t in texts]
        self.step = 0

    def __call__(self, input_ids, scores):
        forced = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(self.rows):
            forced[row, ids[min(self.step, len(ids) - 1)]] = 0.0
        self.step += 1
        return forced


def forced_policy(model, processor, script: dict[str, list[str]], reuse_cache: bool):
    config = RolloutConfig(max_new_tokens=64, do_sample=False)
    inner, force = model_policy(model, config, reuse_cache=reuse_cache), ForceScript(processor.tokenizer)
    generate = model.generate

    def forced_generate(**kwargs):
        kwargs["logits_processor"].append(force)
        return generate(**kwargs)

    model.generate = forced_generate

    def policy(active, batcher):
        force.set([script[t.id][t.turns] for t in active])
        return inner(active, batcher)

    return policy


@pytest.mark.parametrize("wrap", ["plain", "lora"])
def test_cached_and_reencoded_rollouts_agree_also_under_peft(standin, wrap):
    """Rows leave the batch at different turns; the last rows left have only error turns (no new image)."""
    from peft import get_peft_model

    model, processor = modeling.load_for(full(standin))
    if wrap == "lora":
        model = get_peft_model(copy.deepcopy(model), modeling.lora_config(8)).eval()
    script = {"a": [call((0.0, 0.0, 0.5, 0.5)), ANSWER],
              "b": [call((0.5, 0.5, 1.0, 1.0)), BAD_CALL, BAD_CALL, ANSWER],
              "c": [BAD_CALL, BAD_CALL, BAD_CALL, ANSWER]}
    recs, images = [Rec(k) for k in script], [scene_image(i) for i in range(3)]
    cfg = RolloutConfig(max_turns=6, max_new_tokens=64, do_sample=False, batch_size=3)
    runs = []
    for reuse in (True, False):
        runs.append(rollout(recs, images, processor, forced_policy(model, processor, script, reuse), cfg))
        del model.generate  # the class's own again
    for cached, fresh in zip(*runs, strict=True):
        assert cached.finish == fresh.finish == "answer" and cached.input_ids == fresh.input_ids
        assert cached.logprobs == pytest.approx(fresh.logprobs, abs=2e-3)
    assert [t.turns for t in runs[0]] == [2, 4, 4]


def trajectories(processor, n: int = 2):
    script = {f"r{i}": [call((0.0, 0.0, 0.5, 0.5)), ANSWER] for i in range(n)}
    return rollout([Rec(k) for k in script], [scene_image(i) for i in range(n)], processor, replay_policy(script),
                   RolloutConfig(max_turns=4))


def test_sft_step_with_lora_saves_a_merged_model_that_loads(qwen25_standin, tmp_path):
    preset = full(qwen25_standin)
    assert preset.sft.lora and preset.gradient_checkpointing
    args = sft.sft_config(preset, tmp_path, 2)
    assert args.activation_checkpointing and args.assistant_only_loss
    summary = sft.train_sft(preset, trajectories(modeling.processor_for(preset)), tmp_path / "sft", qwen25_standin,
                            max_steps=1, save_strategy="no", disable_tqdm=True, logging_steps=1, warmup_steps=0,
                            learning_rate=1e-3)  # one step that moves the adapters
    assert summary["lora"] and summary["steps"] == 1 and summary["train_loss"] > 0
    merged, processor = modeling.load(tmp_path / "sft")
    base, _ = modeling.load(qwen25_standin)
    assert not hasattr(merged, "peft_config") and modeling.has_generation_markers(processor.chat_template)
    changed = [k for k, v in merged.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert changed and all("language_model" in k for k in changed)  # LoRA on the language model only


def test_grpo_prepare_with_lora_checkpoints_and_turns_dropout_off(qwen25_standin, tmp_path):
    preset = full(qwen25_standin)  # device "auto": the CPU here
    model, ref, processor, state = grpo.prepare(preset, qwen25_standin, tmp_path / "checkpoint")
    assert ref is None and hasattr(model, "peft_config") and state["step"] == 0
    assert modeling.core(model).is_activation_checkpointing
    batch, mask = grpo.masked_batch(Batcher(processor), trajectories(processor), "cpu")
    model.eval()
    with torch.no_grad():
        evaluated = grpo.token_logprobs(model, batch, mask, 1.0)[0]
    grpo.train_without_dropout(model)
    assert model.training and not any(m.training for m in model.modules() if isinstance(m, torch.nn.Dropout))
    with torch.no_grad():
        trained = grpo.token_logprobs(model, batch, mask, 1.0)[0]
    assert torch.allclose(evaluated, trained, atol=1e-5)  # the importance ratio starts at exactly 1


def test_grpo_step_with_lora_then_resume(qwen25_standin, tmp_path, monkeypatch):
    preset = full(qwen25_standin, **{"rl.steps": 2, "rl.prompts_per_step": 1, "rl.group_size": 2,
                                     "rl.mini_batch_prompts": 1, "rl.save_every": 1, "rl.refill": 0,
                                     "max_turns_train": 2})
    records, images = dataset.make_split(preset.data, "train", preset.min_pixels, preset.max_pixels, n=2)
    images = [images[r.id] for r in records]
    monkeypatch.setattr(grpo, "reward", lambda traj, record: float(traj.id.endswith("#0")))  # a group with signal
    first = grpo.train(preset, qwen25_standin, tmp_path, records, images, progress=False, until=1)
    assert len(first) == 1 and first[0]["informative_groups"] == 1
    assert (tmp_path / "checkpoint" / "adapter_config.json").is_file()
    history = grpo.train(preset, qwen25_standin, tmp_path, records, images, progress=False)
    assert [h["step"] for h in history] == [1, 2] and history[0] == first[0]
    merged, _ = modeling.load(tmp_path / "model")
    assert not hasattr(merged, "peft_config")


def test_cli_takes_a_model_path_and_preset_settings(qwen25_standin, checkout, capsys):
    from mini_o3_lite import cli

    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    assert cli.main(["eval", "--preset", "full", "--model-path", str(qwen25_standin), "--n", "2",
                     "--max-turns", "2", *sets]) == 0
    out = capsys.readouterr().out
    assert "protocol" in out and str(qwen25_standin) in out
    assert cli.main(["export", "--preset", "full", "--format", "verl", "--out", str(checkout / "x"),
                     "--model-path", str(qwen25_standin), *sets]) == 0


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert modeling.resolve_device("auto") == "cuda" and modeling.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert modeling.resolve_device("auto") == "cpu"


def test_notebook_runs_the_full_preset_on_a_model_path(qwen25_standin, checkout):
    """Papermill's `-p preset full -p model_path=...`, as a researcher runs it (small overrides for a CPU)."""
    import papermill as pm

    from mini_o3_lite.manifest import read_key_metrics

    notebook = modeling.ASSETS.parents[1] / "notebooks" / "02_zoom_tool_and_agent_loop.ipynb"
    (checkout / "notebooks").mkdir()
    out = checkout / "notebooks" / notebook.name  # run from notebooks/, as `mini-o3-lite run` does
    pm.execute_notebook(str(notebook), str(out), cwd=str(out.parent), kernel_name="python3", progress_bar=False,
                        parameters={"preset": "full", "model_path": str(qwen25_standin), "n_rollouts": 3,
                                    "overrides": SMALL})
    assert read_key_metrics(out)["rollouts"] == 3
    assert (checkout / "runs" / "full" / "data" / "test.jsonl").is_file()


def test_notebooks_open_checkpoints_with_the_preset():
    """Every notebook reads `model_path` and `overrides` into its preset and opens checkpoints through it
    (`load_for`: the preset's device, dtype and pixel budget), never with `modeling.load`'s defaults."""
    folder = modeling.ASSETS.parents[1] / "notebooks"
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        cells = [("".join(c["source"]), c.get("metadata", {}).get("tags", []))
                 for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        params = next(src for src, tags in cells if "parameters" in tags)
        code = "\n".join(src for src, tags in cells if "parameters" not in tags)
        assert "overrides = None" in params and "from_parameters(preset, overrides" in code, path.name
        if "modeling" in code:
            assert "model_path = None" in params and "model_path=model_path" in code, path.name
        assert "modeling.load(" not in code and "load_preset(preset)" not in code, path.name
