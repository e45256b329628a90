"""The shipped checkpoints as the ecosystem expects them: a Hugging Face model card each, and manifests that read
the same on every machine (no absolute paths; each stage's inputs name its parent by a repository-relative path or
its config hash)."""

import json
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from mini_o3_lite import grpo, manifest, sft, teacher
from mini_o3_lite.manifest import config_hash, portable
from mini_o3_lite.modeling import ASSETS
from mini_o3_lite.presets import load_preset

SHIPPED = ("tiny-base", "tiny-sft", "tiny-rl", "tiny-rl-nomask")
SECTIONS = ("## Intended use", "## Training data", "## Training", "## Evaluation", "## Limitations")
# a path from the root of a machine or a home folder: "/work/...", "~/x/...", "C:\..."; not a URL's "//host/..."
ABSOLUTE = re.compile(r"(?:^|[\s`\"'(=])(~?/(?:[\w.-]+/)+[\w.-]*|[A-Za-z]:\\[\w\\.-]+)")


def test_every_shipped_checkpoint_has_a_model_card_with_the_hub_metadata():
    for name in SHIPPED:
        text = (ASSETS / name / "README.md").read_text()
        meta = ModelCard(text).data.to_dict()  # the Hub's own parser of the YAML front matter
        assert meta["license"] == "apache-2.0" and meta["library_name"] == "transformers", name
        assert meta["pipeline_tag"] == "image-text-to-text", name
        assert {"mini-o3", "visual-search", "multi-turn", "visualprobe-lite"} <= set(meta["tags"]), name
        assert "base_model" not in meta  # a Hub id only, and the kit's checkpoints are not on the Hub: named in text
        assert all(f"\n{s}\n" in text for s in SECTIONS), name
    assert "sft" in ModelCard((ASSETS / "tiny-sft" / "README.md").read_text()).data.tags
    for name, parent in (("tiny-sft", "tiny-base"), ("tiny-rl", "tiny-sft"), ("tiny-rl-nomask", "tiny-sft")):
        card = (ASSETS / name / "README.md").read_text()
        assert "**Fine-tuned from**: the kit's" in card and f"`mini_o3_lite/assets/{parent}`" in card, name
        assert "grpo" in ModelCard(card).data.tags or name == "tiny-sft"


def test_no_shipped_manifest_or_card_holds_an_absolute_path():
    files = [f for name in SHIPPED for f in sorted((ASSETS / name).iterdir())
             if f.name in ("README.md", "manifest.json", "reproduce.sh")]
    assert len([f for f in files if f.name == "manifest.json"]) == 3
    for f in files:
        found = [m.group(1) for line in f.read_text().splitlines() for m in ABSOLUTE.finditer(line)
                 if not line.lstrip().startswith("#!")]
        assert not found, f"{f}: {found}"


def test_the_absolute_path_check_finds_machine_paths_and_not_urls():
    hits = [m.group(1) for m in ABSOLUTE.finditer('"init": "/work/main/x", ~/models/q, see https://arxiv.org/abs/1')]
    assert hits == ["/work/main/x", "~/models/q"]


def test_shipped_manifests_are_consistent_and_chain_by_hash():
    found = {name: json.loads((ASSETS / name / "manifest.json").read_text()) for name in SHIPPED[1:]}
    for name, m in found.items():
        assert m["config_hash"] == config_hash({"config": m["config"], "inputs": m["inputs"]}), name
    assert found["tiny-sft"]["inputs"]["init"] == "mini_o3_lite/assets/tiny-base"
    sft_hash = found["tiny-sft"]["config_hash"]
    assert found["tiny-rl"]["inputs"]["sft"] == found["tiny-rl-nomask"]["inputs"]["sft"] == sft_hash
    assert found["tiny-rl"]["config"]["rl"]["over_turn_masking"] is True
    assert found["tiny-rl-nomask"]["config"]["rl"]["over_turn_masking"] is False


def test_portable_is_relative_inside_the_checkout_and_the_package_and_as_given_elsewhere(tmp_path, monkeypatch):
    root = manifest.repo_root()
    assert portable(root / "runs" / "tiny" / "sft") == "runs/tiny/sft"
    assert portable(ASSETS / "tiny-base") == "mini_o3_lite/assets/tiny-base"
    assert portable(tmp_path / "model") == str(tmp_path / "model")
    monkeypatch.chdir(tmp_path)  # no checkout around the working directory (an installed kit)
    assert manifest.checkout() is None
    assert portable(ASSETS / "tiny-base") == "mini_o3_lite/assets/tiny-base"  # the package's own files, still
    assert portable("relative/model") == "relative/model"


@pytest.fixture
def recorded(monkeypatch):
    """The inputs each stage hands to `cached_stage`, without building anything."""
    got = {}

    def cached(folder, config, build, inputs=None, seed=0):
        got["inputs"] = inputs
        return {"config_hash": config_hash({"config": config, "inputs": inputs or {}})}

    for module in (sft, grpo, teacher):
        monkeypatch.setattr(module, "cached_stage", cached)
    return got


def test_new_manifests_record_the_base_and_the_start_policy_relative_to_the_checkout(recorded, monkeypatch):
    tiny = load_preset("tiny")
    monkeypatch.setattr(sft, "ensure_coldstart", lambda preset: (Path("x"), {"config_hash": "c0ffee"}))
    sft.ensure_sft(tiny)
    assert recorded["inputs"] == {"coldstart": "c0ffee", "init": "mini_o3_lite/assets/tiny-base"}

    monkeypatch.setattr(grpo, "ensure_dataset", lambda preset, split: (Path("x"), {"config_hash": "da7a"}))
    grpo.ensure_rl(tiny, "rl", init=manifest.repo_root() / "runs" / "tiny" / "sft")
    assert recorded["inputs"] == {"sft": "runs/tiny/sft", "data": "da7a"}

    monkeypatch.setattr(teacher.dataset, "ensure_dataset",
                        lambda preset, split, n: (Path("x"), {"config_hash": "da7a"}))
    teacher.ensure_coldstart(tiny)
    assert recorded["inputs"] == {"data": "da7a", "processor": "mini_o3_lite/assets/tiny-base"}


def test_the_shipped_sft_manifest_is_what_ensure_sft_writes_today_for_the_same_cold_start(recorded, monkeypatch):
    """On any machine and in any clone: the config hash no longer depends on where the checkout lies."""
    shipped = json.loads((ASSETS / "tiny-sft" / "manifest.json").read_text())
    tiny = load_preset("tiny")
    monkeypatch.setattr(sft, "ensure_coldstart",
                        lambda preset: (Path("x"), {"config_hash": shipped["inputs"]["coldstart"]}))
    assert sft.ensure_sft(tiny)[1]["config_hash"] == shipped["config_hash"]
