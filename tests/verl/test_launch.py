"""The exported launch scripts and parquet against verl's own code: Hydra composition, config checks, RLHFDataset."""

from __future__ import annotations

import io

import pytest

# A submodule: without verl installed, `import verl` alone finds this folder (tests/verl) as a namespace package.
pytest.importorskip("verl.protocol")
import verl  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from mini_o3_lite import export, protocol  # noqa: E402
from mini_o3_lite.data import read_records  # noqa: E402
from mini_o3_lite.presets import load_preset  # noqa: E402

P = load_preset("tiny")


def test_this_is_the_verl_the_scripts_name():
    assert verl.__version__ == export.VERL_VERSION


def test_scripts_compose_into_mini_o3s_recipe_and_pass_verls_checks(composed, exported):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cluster, lora = composed["run_mini_o3_verl.sh"], composed["run_mini_o3_verl_1gpu_lora.sh"]
    for cfg in (cluster, lora):
        rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)  # verl's typed config: every field checked
        assert rollout.multi_turn.format == "mini_o3_grounding" and rollout.multi_turn.max_assistant_turns == 6
        assert rollout.multi_turn.tool_config_path == str(exported / "zoom_tool_config.yaml")
        assert rollout.agent.agent_loop_config_path == str(exported / "agent_loop_config.yaml")
        assert rollout.prompt_length + rollout.response_length == 32768
        algorithm = omega_conf_to_dataclass(cfg.algorithm)
        assert algorithm.adv_estimator == "grpo" and algorithm.filter_groups.enable
        assert algorithm.filter_groups.metric == "reward"
        actor = cfg.actor_rollout_ref.actor
        assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.3, "token-mean")
        assert not actor.use_kl_loss and actor.entropy_coeff == 0 and not need_reference_policy(cfg)
        assert dict(cfg.data.mm_processor_kwargs) == {"min_pixels": 40_000, "max_pixels": 2_000_000}
        assert cfg.data.train_files == str(exported / "train.parquet")
        assert cfg.reward.custom_reward_function.path == str(exported / "reward_fn.py")
    assert (cluster.data.train_batch_size, cluster.actor_rollout_ref.rollout.n) == (256, 16)
    assert (cluster.trainer.nnodes, cluster.trainer.n_gpus_per_node, cluster.actor_rollout_ref.actor.optim.lr) == (8, 8,
                                                                                                                  1e-6)
    assert cluster.actor_rollout_ref.model.lora_rank == 0
    assert (lora.trainer.nnodes, lora.trainer.n_gpus_per_node, lora.actor_rollout_ref.model.lora_rank) == (1, 1, 64)
    assert lora.actor_rollout_ref.rollout.load_format == "safetensors"
    # main_ppo's own checks before it starts Ray. The last one asks vLLM (not installed on CPU) for its LoRA ranks,
    # so the LoRA script is checked with its rollout engine's name blanked out of that one question.
    validate_config(cluster, use_reference_policy=False, use_critic=need_critic(cluster))
    lora_without_vllm = OmegaConf.merge(lora, {"actor_rollout_ref": {"rollout": {"name": "not-vllm"}}})
    validate_config(lora_without_vllm, use_reference_policy=False, use_critic=need_critic(lora))


def test_a_renamed_option_fails_the_composition(exported, run_script):
    done = run_script(exported, "run_mini_o3_verl.sh", "actor_rollout_ref.rollout.multi_turn.fromat=hermes")
    assert done.returncode != 0 and "Could not override 'actor_rollout_ref.rollout.multi_turn.fromat'" in done.stderr


def test_rlhf_dataset_reads_the_parquet_with_a_processor(composed, exported, dataset, processor):
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    cfg = composed["run_mini_o3_verl.sh"]
    data = RLHFDataset(str(exported / "test.parquet"), processor.tokenizer, cfg.data, processor)
    records = read_records(dataset / "test.jsonl")
    assert len(data) == len(records) == 2  # none filtered as overlong
    for i, record in enumerate(records):
        row = data[i]
        system, user = row["raw_prompt"]
        assert system == {"role": "system", "content": [{"type": "text", "text": protocol.SYSTEM_PROMPT}]}
        image, text = user["content"]
        assert text == {"type": "text", "text": protocol.user_prompt(record.question, record.choices)}
        assert image["type"] == "image" and (image["min_pixels"], image["max_pixels"]) == (P.min_pixels, P.max_pixels)
        original = record.load_image(dataset)
        with Image.open(io.BytesIO(image["bytes"])) as decoded:
            assert decoded.convert("RGB").tobytes() == original.convert("RGB").tobytes()
        assert image["image"].size == original.size  # the full-resolution original the zoom tool crops
        assert row["agent_name"] == export.AGENT_NAME and row["index"] == i
        assert row["extra_info"]["choices"] == record.choices
        assert row["reward_model"]["ground_truth"] == record.answer
    batch = collate_fn([data[0], data[1]])
    assert list(batch["agent_name"]) == [export.AGENT_NAME] * 2
