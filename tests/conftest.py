"""Shared fixtures: one tiny Qwen2.5-VL (built once per test session) and deterministic test images."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

# Nothing is downloaded in tests: every model, tokenizer and processor is built or read locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The test model's pixel budget: a view of up to 112 x 112 pixels, i.e. at most 8 x 8 patches = 16 tokens.
TEST_MIN_PIXELS = 28 * 28
TEST_MAX_PIXELS = 112 * 112


def make_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic noise image (RGB) of the given size."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def tokenizer_corpus() -> list[str]:
    """A small corpus shaped like the kit's texts: the system prompt, tool calls, observations, answers."""
    from mini_o3_lite import protocol

    texts = [protocol.SYSTEM_PROMPT, protocol.error_text("the box has zero width")]
    for i, box in enumerate([(0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75), (0.5, 0.0, 1.0, 0.5)]):
        source = protocol.ORIGINAL_IMAGE if i == 0 else protocol.source_name(i)
        call = protocol.tool_call_text(box, source)
        texts.append(protocol.assistant_text("The target is too small to make out.", call))
        before, after = protocol.observation_text(i + 1)
        texts.append(before + after)
    texts.append(protocol.assistant_text("I can read it now.", protocol.answer_text("red")))
    texts.append(protocol.user_prompt("What colour is the small square?", ["red", "blue", "green"]))
    return texts


@pytest.fixture(scope="session")
def tiny_base():
    """The tiny preset's base config shrunk further (1 head of 64, 2 layers) so tests stay fast."""
    from mini_o3_lite.presets import load_preset

    return dataclasses.replace(
        load_preset("tiny").base, hidden=64, layers=2, vision_depth=2, vision_hidden=64, vocab_size=400
    )


@pytest.fixture(scope="session")
def tiny(tiny_base):
    """(model, processor): a freshly initialised tiny Qwen2.5-VL in eval mode. Do not mutate it in tests;
    copy it (`copy.deepcopy`) before wrapping it with PEFT or changing the processor's budget."""
    from mini_o3_lite import modeling

    model, processor = modeling.build_tiny(tokenizer_corpus(), tiny_base, TEST_MIN_PIXELS, TEST_MAX_PIXELS)
    model.eval()
    return model, processor


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A stand-in checkout (pyproject.toml + mini_o3_lite/) as the working directory, so a test's
    `runs/` goes under its own folder and the real one is left alone. Returns its path."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "mini_o3_lite").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(name="make_image", scope="session")
def make_image_fixture():
    """`make_image(width, height, seed=0)` for tests that need images."""
    return make_image


@pytest.fixture(scope="session")
def tiny_model(tiny):
    return tiny[0]


@pytest.fixture(scope="session")
def tiny_processor(tiny):
    return tiny[1]


@pytest.fixture(scope="session")
def qwen25_standin(tmp_path_factory):
    """A shrunken, randomly initialised Qwen/Qwen2.5-VL-7B-Instruct with the real file layout (`standin.py`)."""
    from mini_o3_lite.standin import write_standin

    return write_standin(tmp_path_factory.mktemp("qwen25_standin"), "qwen2_5_vl")


@pytest.fixture(scope="session")
def qwen3_standin(tmp_path_factory):
    """A shrunken, randomly initialised Qwen/Qwen3-VL-8B-Instruct with the real file layout (`standin.py`)."""
    from mini_o3_lite.standin import write_standin

    return write_standin(tmp_path_factory.mktemp("qwen3_standin"), "qwen3_vl")


@pytest.fixture(scope="session")
def tiny_dir(tiny, tmp_path_factory):
    """The `tiny` test model saved as a checkpoint directory, for code that opens models by path (CLI, evaluations)."""
    from mini_o3_lite import modeling

    return modeling.save(*tiny, tmp_path_factory.mktemp("tiny_checkpoint"))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """A dataset folder like `dataset.ensure_dataset`'s for the tiny preset: 3 train and 2 test records (the test
    ones with choices) and their PNGs. The export tests and verl's (`tests/verl/`) read it."""
    from mini_o3_lite.data import write_records
    from mini_o3_lite.dataset import make_split
    from mini_o3_lite.presets import load_preset

    preset = load_preset("tiny")
    folder = tmp_path_factory.mktemp("data")
    for split, n in (("train", 3), ("test", 2)):
        records, images = make_split(preset.data, split, preset.min_pixels, preset.max_pixels, n=n,
                                            choices=split == "test")
        write_records(folder / f"{split}.jsonl", records, images)
    return folder
