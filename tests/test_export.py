"""Exports read back with their consumers' schemas: verl parquet (pyarrow), LLaMA-Factory sharegpt, TRL JSONL."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from mini_o3_lite import export, protocol, teacher, trajectory
from mini_o3_lite.data import DataError, read_records
from mini_o3_lite.dataset import make_split
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout

P = load_preset("tiny")


@pytest.fixture(scope="module")
def coldstart(tmp_path_factory, tiny_processor) -> Path:
    """A cold-start folder: scripted teacher trajectories plus one with an invalid call (a text-only user turn)."""
    folder = tmp_path_factory.mktemp("coldstart")
    records, images = make_split(P.data, "train", P.min_pixels, P.max_pixels, n=3)
    images = [images[r.id] for r in records]
    kept, patterns, _ = teacher.scripted_trajectories(records[:2], images[:2], tiny_processor, P,
                                                      teacher.TeacherConfig(), max_turns=P.max_turns_eval)
    r = records[2]
    script = {r.id: ['<think>Zoom.</think>\n<grounding>{"bbox_2d": [0.9, 0.1, 0.2, 0.4], '
                     '"source": "original_image"}</grounding>',
                     protocol.assistant_text("I see it.", protocol.tool_call_text((0, 0, 0.5, 0.5), "original_image")),
                     protocol.assistant_text("I see it.", protocol.answer_text(r.answer))]}
    extra = rollout([r], images[2:], tiny_processor, replay_policy(script), RolloutConfig(max_turns=6))
    assert len(kept) == 2 and extra[0].finish == "answer"
    trajectory.save_trajectories(folder, kept + extra, patterns | {r.id: "error_recovery"})
    return folder


def test_verl_parquet_reads_back_with_its_schema(dataset, tmp_path):
    written = export.export_verl(dataset, tmp_path)
    assert {p.name for p in written} == {"train.parquet", "test.parquet", "zoom_tool_config.yaml",
                                         "agent_loop_config.yaml", "reward_fn.py", "run_mini_o3_verl.sh",
                                         "run_mini_o3_verl_1gpu_lora.sh"}
    table = pq.read_table(tmp_path / "test.parquet")
    assert table.column_names == ["data_source", "prompt", "images", "ability", "reward_model", "extra_info",
                                  "agent_name"]
    assert table.schema.field("prompt").type == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert table.schema.field("images").type.value_type.field("bytes").type == pa.binary()
    records = read_records(dataset / "test.jsonl")
    for i, (row, rec) in enumerate(zip(table.to_pylist(), records, strict=True)):
        system, user = row["prompt"]
        assert system == {"role": "system", "content": protocol.SYSTEM_PROMPT}
        assert user["role"] == "user" and user["content"] == "<image>" + protocol.user_prompt(rec.question, rec.choices)
        assert user["content"].count("<image>") == len(row["images"]) == 1
        image = row["images"][0]
        with Image.open(io.BytesIO(image["bytes"])) as img:
            assert img.size == rec.load_image(dataset).size
        assert (image["min_pixels"], image["max_pixels"]) == (40_000, 2_000_000)
        assert row["data_source"] == "visualprobe_lite" and row["ability"] == "visual_search"
        assert row["agent_name"] == "mini_o3_agent"
        assert row["reward_model"] == {"style": "rule", "ground_truth": rec.answer}
        extra = row["extra_info"]
        assert (extra["id"], extra["split"], extra["index"], extra["difficulty"]) == (rec.id, "test", i, rec.difficulty)
        assert extra["choices"] == rec.choices and extra["target_bbox"] == rec.target_bbox
    train = pq.read_table(tmp_path / "train.parquet").to_pylist()
    assert len(train) == 3 and all(r["extra_info"]["choices"] is None for r in train)  # typed, though all null


def test_verl_configs_point_at_the_kits_plugins(dataset, tmp_path):
    export.export_verl(dataset, tmp_path, splits=("test",), over_turn_masking=False)
    (tool,) = yaml.safe_load((tmp_path / "zoom_tool_config.yaml").read_text())["tools"]
    assert tool["class_name"] == "mini_o3_lite.verl_plugin.ZoomInTool" and tool["config"] == {"type": "native"}
    function = tool["tool_schema"]["function"]
    assert tool["tool_schema"]["type"] == "function" and function["name"] == "image_zoom_in_tool"
    assert function["parameters"]["required"] == ["grounding"]
    assert yaml.safe_load((tmp_path / "agent_loop_config.yaml").read_text()) == [
        {"name": "mini_o3_agent", "_target_": "mini_o3_lite.verl_plugin.MiniO3AgentLoop", "over_turn_masking": False}]


@pytest.mark.parametrize("name, scale", [
    ("run_mini_o3_verl.sh", ['"data.train_batch_size=256"', '"actor_rollout_ref.actor.ppo_mini_batch_size=32"',
                             '"actor_rollout_ref.actor.optim.lr=1e-06"', '"trainer.nnodes=$NNODES"']),
    ("run_mini_o3_verl_1gpu_lora.sh", ['"actor_rollout_ref.model.lora_rank=64"', '"trainer.n_gpus_per_node=1"',
                                       '"actor_rollout_ref.actor.optim.lr=1e-05"', '"actor_rollout_ref.rollout.n=8"']),
])
def test_verl_launch_scripts(dataset, tmp_path, name, scale):
    export.export_verl(dataset, tmp_path, splits=("test",))
    script = (tmp_path / name).read_text()
    assert "verl 0.9.1" in script and "pip install --no-deps -e" in script  # says which environment it runs in
    for flag in ['"algorithm.adv_estimator=grpo"', '"algorithm.filter_groups.enable=True"',
                 '"actor_rollout_ref.rollout.multi_turn.format=mini_o3_grounding"', "clip_ratio_low=0.2",
                 "clip_ratio_high=0.3", "use_kl_loss=False", "entropy_coeff=0", "max_assistant_turns=6",
                 '"data.val_files=$HERE/test.parquet"', '"+data.mm_processor_kwargs.max_pixels=2000000"',
                 '"actor_rollout_ref.rollout.agent.agent_loop_config_path=$HERE/agent_loop_config.yaml"',
                 '"reward.custom_reward_function.path=$HERE/reward_fn.py"', *scale]:
        assert flag in script, flag
    keys = [line.strip().strip('"\\ ').split("=")[0] for line in script.splitlines() if line.startswith('    "')]
    assert len(keys) == len(set(keys))  # each option once: Hydra would refuse a repeated one
    lines = script.rstrip("\n").split("\n")
    start = lines.index('"$PYTHON" -m verl.trainer.main_ppo \\')
    assert all(line.endswith(" \\") for line in lines[start:-1]) and lines[-1] == '    "$@"'  # no broken continuation
    assert subprocess.run(["bash", "-n", str(tmp_path / name)]).returncode == 0
    assert (tmp_path / name).stat().st_mode & 0o111


def test_verl_script_refuses_an_interpreter_without_the_plugin(dataset, tmp_path):
    export.export_verl(dataset, tmp_path, splits=("test",))
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "not-verls-python"), "MODEL_PATH": str(tmp_path)}
    done = subprocess.run(["bash", str(tmp_path / "run_mini_o3_verl.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "run in verl's environment" in done.stderr


def test_verl_reward_scores_the_answer_the_agent_loop_parsed(dataset, tmp_path):
    export.export_verl(dataset, tmp_path, splits=("test",))
    namespace: dict = {}
    exec(compile((tmp_path / "reward_fn.py").read_text(), "reward_fn.py", "exec"), namespace)
    score = namespace["compute_score"]
    response = "<answer> and </answer> from an observation's reminder, then <answer>red</answer>"
    assert score("visualprobe_lite", response, "red", {"model_answer": "The Red."}) == 1.0
    assert score("visualprobe_lite", response, "A", {"model_answer": "B", "choices": ["red", "blue"]}) == 0.0
    assert score("visualprobe_lite", response, "A", {"model_answer": "red", "choices": ["red", "blue"]}) == 1.0
    assert score("visualprobe_lite", response, "red", {"model_answer": None}) == 0.0


def test_sharegpt_follows_llamafactory_rules(coldstart, tmp_path):
    export.export_sharegpt(coldstart, tmp_path)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    (name, entry), = info.items()
    assert entry["formatting"] == "sharegpt" and entry["file_name"] == f"{name}.json"
    columns, tags = entry["columns"], entry["tags"]
    assert set(columns) == {"messages", "images"}
    assert set(tags) == {"role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag"}
    rows = json.loads((tmp_path / entry["file_name"]).read_text())
    trajs = trajectory.load_trajectories(coldstart)
    assert len(rows) == len(trajs) == 3
    for row, traj in zip(rows, trajs, strict=True):
        messages, images = row[columns["messages"]], row[columns["images"]]
        roles = [m[tags["role_tag"]] for m in messages]
        if roles[0] == tags["system_tag"]:
            roles = roles[1:]
        assert roles == [tags["user_tag"], tags["assistant_tag"]] * (len(roles) // 2) and len(roles) % 2 == 0
        text = "".join(m[tags["content_tag"]] for m in messages)
        assert text.count("<image>") == len(images) == len(traj.images)
        for path, original in zip(images, traj.images, strict=True):
            with Image.open(tmp_path / path) as img:  # relative to the dataset folder, as LLaMA-Factory reads it
                assert img.convert("RGB").tobytes() == original.tobytes()
    error_turns = [m for m in rows[2]["messages"] if "reported an error" in m["content"]]
    assert len(error_turns) == 1 and "<image>" not in error_turns[0]["content"]


def test_trl_jsonl_loads_as_the_kits_sft_dataset(coldstart, tmp_path):
    from datasets import load_dataset

    from mini_o3_lite.sft import to_dataset

    export.export_trl(coldstart, tmp_path)
    raw = load_dataset("json", data_files=str(tmp_path / "train.jsonl"), split="train",
                       cache_dir=str(tmp_path / "hf_cache"))
    assert set(raw.column_names) == {"messages", "images", "length"} and len(raw) == 3
    back = export.load_trl(tmp_path / "train.jsonl")
    kit = to_dataset(trajectory.load_trajectories(coldstart))
    assert back["messages"] == kit["messages"] == raw["messages"] and back["length"] == kit["length"]
    for ours, theirs in zip(back["images"], kit["images"], strict=True):
        assert [im.convert("RGB").tobytes() for im in ours] == [im.convert("RGB").tobytes() for im in theirs]


def test_same_inputs_same_bytes(dataset, coldstart, tmp_path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    for run in ("a", "b"):
        export.export_verl(dataset, tmp_path / run / "verl")
        export.export_sharegpt(coldstart, tmp_path / run / "sharegpt")
        export.export_trl(coldstart, tmp_path / run / "trl")
    first, second = files(tmp_path / "a"), files(tmp_path / "b")
    assert first == second and len(first) > 10


def test_bad_trajectories_name_file_line_and_field(coldstart, tmp_path):
    with pytest.raises(DataError, match="no trajectories file here"):
        export.export_sharegpt(tmp_path / "nowhere", tmp_path / "out")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images").symlink_to(coldstart / "images")
    rows = [json.loads(line) for line in (coldstart / "trajectories.jsonl").read_text().splitlines()]
    rows[1]["images"] = rows[1]["images"][:-1]  # one image file fewer than the messages show
    (bad / "trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        export.export_trl(bad / "trajectories.jsonl", tmp_path / "out")
    message = str(err.value)
    assert "trajectories.jsonl, line 2, field 'images'" in message
    assert f"{len(rows[1]['images']) + 1} image placeholders" in message and "Re-run the cold start" in message
