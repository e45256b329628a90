"""The sharegpt export read by LLaMA-Factory's own dataset loader and tokenized by its SFT preprocessing.

LLaMA-Factory 0.9.5 lives in `.venv-verl` beside verl (installed without its dependencies, `make test-verl`). Two
things stand between it and this environment, both outside the kit's data path:
- its version check (transformers <= 5.6.0, datasets <= 4.0.0, peft <= 0.20.0, accelerate <= 1.15.0) refuses
  verl's environment, so `DISABLE_VERSION_CHECK=1`, LLaMA-Factory's own switch, turns it off;
- its data package imports torchaudio at the top, for audio datasets. PyPI's torchaudio wheels are each built
  against one torch release (the newest, 2.11.1, against torch 2.11) and none against the torch here, so where
  torchaudio cannot load, an empty module stands in: the kit's trajectories hold no audio and nothing calls it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

if importlib.util.find_spec("llamafactory") is None:
    pytest.skip("LLaMA-Factory is installed in .venv-verl only (make test-verl)", allow_module_level=True)

os.environ["DISABLE_VERSION_CHECK"] = "1"
try:
    import torchaudio  # noqa: F401
except (ImportError, OSError):
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    sys.modules["torchaudio"].__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)

from llamafactory.data import get_template_and_fix_tokenizer  # noqa: E402
from llamafactory.data.loader import get_dataset  # noqa: E402
from llamafactory.data.parser import get_dataset_list  # noqa: E402
from llamafactory.hparams import DataArguments, ModelArguments  # noqa: E402
from llamafactory.model import load_tokenizer  # noqa: E402
from transformers import Seq2SeqTrainingArguments  # noqa: E402

from mini_o3_lite import dataset, export, protocol, trajectory  # noqa: E402
from mini_o3_lite.presets import load_preset  # noqa: E402
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout  # noqa: E402

P = load_preset("tiny")
TINY_BASE = Path(__file__).resolve().parents[2] / "mini_o3_lite" / "assets" / "tiny-base"


def call(bbox, source: str) -> str:
    return protocol.assistant_text("Too small to read.", protocol.tool_call_text(bbox, source))


@pytest.fixture(scope="module")
def trajectories(processor):
    """Two cold-start trajectories through the kit's loop: nested zooms, and a malformed call (an error turn)."""
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=2)
    first, second = records
    script = {first.id: [call((0.0, 0.0, 0.5, 0.5), "original_image"), call((0.5, 0.5, 1.0, 1.0), "observation_1"),
                         protocol.assistant_text("Found it.", protocol.answer_text(first.answer))],
              second.id: ['<think>Zoom.</think>\n<grounding>{"bbox_2d": [0.9, 0.1, 0.2, 0.4], '
                          '"source": "original_image"}</grounding>',
                          protocol.assistant_text("Found it.", protocol.answer_text(second.answer))]}
    return rollout(records, [images[r.id] for r in records], processor, replay_policy(script),
                   RolloutConfig(max_turns=6))


@pytest.fixture(scope="module")
def sharegpt(trajectories, tmp_path_factory):
    coldstart = tmp_path_factory.mktemp("coldstart")
    trajectory.save_trajectories(coldstart, trajectories, {t.id: "depth_first" for t in trajectories})
    out = tmp_path_factory.mktemp("sharegpt")
    export.export_sharegpt(coldstart, out)
    return out


def arguments(folder, tmp_path):
    """LLaMA-Factory's arguments for Qwen2.5-VL SFT on the export, at the kit's pixel budget."""
    model = ModelArguments(model_name_or_path=str(TINY_BASE), image_min_pixels=P.min_pixels,
                           image_max_pixels=P.max_pixels)
    data = DataArguments(dataset=export.DATASET_NAME, dataset_dir=str(folder), template="qwen2_vl", cutoff_len=8192)
    return model, data, Seq2SeqTrainingArguments(output_dir=str(tmp_path), do_train=True)


def test_llamafactory_reads_the_export_as_the_kits_conversations(sharegpt, trajectories, tmp_path):
    from llamafactory.data.loader import _load_single_dataset

    model, data, training = arguments(sharegpt, tmp_path)
    (attr,) = get_dataset_list([export.DATASET_NAME], str(sharegpt))
    assert attr.formatting == "sharegpt" and attr.images == "images"
    aligned = _load_single_dataset(attr, model, data, training)
    assert len(aligned) == len(trajectories)
    for row, traj in zip(aligned, trajectories, strict=True):
        assert row["_system"] == protocol.SYSTEM_PROMPT
        turns = row["_prompt"] + row["_response"]
        kit = [(m["role"], export.message_text(m["content"])) for m in traj.messages[1:]]
        assert [(t["role"], t["content"]) for t in turns] == kit
        assert len(row["_images"]) == len(traj.images) == sum(t["content"].count("<image>") for t in turns)
    assert any("reported an error" in t["content"] for t in aligned[1]["_prompt"])


def test_llamafactory_trains_on_the_kits_tokens(sharegpt, trajectories, tmp_path):
    """Its Qwen2-VL template and plugin give the kit's own rollout tokens, loss on every assistant turn."""
    model, data, training = arguments(sharegpt, tmp_path)
    loaded = load_tokenizer(model)
    tokenizer = loaded["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data)
    train = get_dataset(template, model, data, training, stage="sft", **loaded)["train_dataset"]
    close = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.encode("\n", add_special_tokens=False)[0]
    for row, traj in zip(train, trajectories, strict=True):
        assert row["input_ids"] == traj.input_ids + list(close)  # the kit's last turn is closed here too
        trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label >= 0])
        answers = [export.message_text(m["content"]) for m in traj.messages if m["role"] == "assistant"]
        assert trained == "".join(a + "<|im_end|>\n" for a in answers)
