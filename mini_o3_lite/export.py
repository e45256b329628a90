"""Scale-out: the kit's questions and trajectories in the files verl, LLaMA-Factory and TRL read.

Mini-o3 ran its RL in a fork of verl and its cold-start SFT with LLaMA-Factory; past one GPU the
kit hands its data to the same tools. Three exports, each read back by its consumer (tests/test_export.py
with the kit's own readers; tests/verl/ with verl's and LLaMA-Factory's own code), and byte-identical for
the same inputs (sorted keys, no timestamps):

- **verl** (RL, agent loop), for verl 0.9.1 with the kit's plugins (`verl_plugin.py`):
  `<split>.parquet` with `data_source`, `prompt` (chat messages whose user turn holds an `<image>`
  placeholder), `images` ([{"bytes", "min_pixels", "max_pixels"}]), `ability`, `reward_model`
  ({"style": "rule", "ground_truth"}), `extra_info` (the record's id, split, index, difficulty, choices,
  target box) and `agent_name` (the kit's agent loop); `zoom_tool_config.yaml` (the zoom tool),
  `agent_loop_config.yaml` (the agent loop and its `over_turn_masking` switch), `reward_fn.py` (Mini-o3's
  answer-only reward) and two launch scripts of verl's `main_ppo` with Mini-o3's RL settings:
  `run_mini_o3_verl.sh` (8 nodes x 8 GPUs, as Mini-o3) and `run_mini_o3_verl_1gpu_lora.sh` (one GPU,
  LoRA). Every option they set exists in verl 0.9.1's config (tests/verl composes them with verl's own
  Hydra entry point). Per-image `min_pixels`/`max_pixels` are read by `qwen_vl_utils.fetch_image`,
  which verl's dataset calls for the original; `data.mm_processor_kwargs` gives the zoom-ins the same budget.
- **LLaMA-Factory** (cold-start SFT): `<name>.json`, a list of {"messages": [{"role", "content"}],
  "images": [paths]} with one `<image>` per image in order, and `dataset_info.json` registering it
  as `formatting: sharegpt` with role/content tags (LLaMA-Factory `data/README.md`, "OpenAI format"
  and the multimodal columns). Images are PNGs under `images/`, paths relative to that folder
  (LLaMA-Factory's default `media_dir` is the dataset folder).
- **TRL**: `train.jsonl` of exactly the rows `sft.to_dataset` gives `SFTTrainer` (conversational
  messages with `{"type": "image"}` items, `length`), images as relative paths; `load_trl` turns it
  back into a `datasets.Dataset` with decoded images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from . import protocol
from .data import DataError, Record, read_records, save_png
from .trajectory import load_trajectories

VERL_VERSION = "0.9.1"  # the verl release the verl files are written for and tested against (tests/verl)
PARSER_NAME = "mini_o3_grounding"  # verl_plugin.GroundingParser
AGENT_NAME = "mini_o3_agent"  # verl_plugin.MiniO3AgentLoop, picked per row by the parquet's agent_name
TOOL_NAME = "image_zoom_in_tool"  # the name verl_plugin.GroundingParser gives every call
TOOL_CLASS = "mini_o3_lite.verl_plugin.ZoomInTool"
AGENT_LOOP_CLASS = "mini_o3_lite.verl_plugin.MiniO3AgentLoop"
MINI_O3_MIN_PIXELS, MINI_O3_MAX_PIXELS = 40_000, 2_000_000
DATASET_NAME = "mini_o3_lite_coldstart"


def message_text(content: str | list[dict]) -> str:
    """A kit message's content as one string, each image item replaced by `<image>` in place."""
    if isinstance(content, str):
        return content
    return "".join("<image>" if c.get("type") == "image" else c.get("text") or "" for c in content)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- verl
def verl_row(record: Record, data_dir: Path, split: str, index: int,
             min_pixels: int = MINI_O3_MIN_PIXELS, max_pixels: int = MINI_O3_MAX_PIXELS) -> dict:
    """One RL prompt: the kit's system prompt and first user turn, the image as bytes, the answer.

    The zoom tool needs no copy of the image: verl keeps the decoded original in the conversation,
    which is where the tool looks up its sources (`verl_plugin.conversation_images`).
    """
    prompt = [{"role": m["role"], "content": message_text(m["content"])}
              for m in protocol.messages_for(record.question, record.choices)]
    return {
        "data_source": record.source,
        "prompt": prompt,
        "images": [{"bytes": record.image_path(data_dir).read_bytes(), "min_pixels": min_pixels,
                    "max_pixels": max_pixels}],
        "ability": "visual_search",
        "reward_model": {"style": "rule", "ground_truth": record.answer},
        "extra_info": {"id": record.id, "split": split, "index": index, "difficulty": record.difficulty,
                       "choices": record.choices, "target_bbox": record.target_bbox, "question": record.question,
                       "answer": record.answer},
        "agent_name": AGENT_NAME,
    }


def verl_schema():
    """The parquet schema, explicit so an all-null column (no choices anywhere) keeps its type."""
    import pyarrow as pa  # deferred, as are datasets and sft below: only the exports that write them need them

    s = pa.string()
    extra = [("id", s), ("split", s), ("index", pa.int64()), ("difficulty", s), ("choices", pa.list_(s)),
             ("target_bbox", pa.list_(pa.float64())), ("question", s), ("answer", s)]
    return pa.schema([
        ("data_source", s),
        ("prompt", pa.list_(pa.struct([("role", s), ("content", s)]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("min_pixels", pa.int64()),
                                       ("max_pixels", pa.int64())]))),
        ("ability", s),
        ("reward_model", pa.struct([("style", s), ("ground_truth", s)])),
        ("extra_info", pa.struct(extra)),
        ("agent_name", s),
    ])


def tool_config() -> dict:
    """verl's tool config: the kit's zoom tool, with the one argument `verl_plugin.GroundingParser` passes it.

    The schema documents the tool for verl; the model never sees it (the kit's agent loop gives the chat
    template no tool list: the system prompt describes the call, as in Mini-o3).
    """
    description = ("Zoom in on a region of the original image or of an earlier zoom-in, cut at full resolution. "
                   'The model calls it by writing <grounding>{"bbox_2d": [x0, y0, x1, y1], "source": '
                   f'"{protocol.ORIGINAL_IMAGE}"}}</grounding>, with coordinates relative to the source image.')
    grounding = ("The <grounding>...</grounding> block as the model wrote it; the tool checks it with the kit's "
                 "rules against the images of the conversation.")
    schema = {"type": "object", "properties": {"grounding": {"type": "string", "description": grounding}},
              "required": ["grounding"]}
    function = {"name": TOOL_NAME, "description": description, "parameters": schema}
    return {"tools": [{"class_name": TOOL_CLASS, "config": {"type": "native"},
                       "tool_schema": {"type": "function", "function": function}}]}


def agent_loop_config(over_turn_masking: bool = True) -> list[dict]:
    """verl's agent loop config (`rollout.agent.agent_loop_config_path`): the kit's loop under `AGENT_NAME`.

    `over_turn_masking` is passed to the loop: False lets exceeded trajectories teach like any failure
    (the ablation Mini-o3 reports).
    """
    return [{"name": AGENT_NAME, "_target_": AGENT_LOOP_CLASS, "over_turn_masking": over_turn_masking}]


# Mini-o3's RL recipe as verl 0.9.1 main_ppo overrides, shared by both launch scripts.
MINI_O3_RL: dict[str, Any] = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": False,
    "algorithm.filter_groups.enable": True,  # dynamic sampling: groups whose rewards are all equal are refilled
    "algorithm.filter_groups.metric": "reward",
    "data.train_files": "$HERE/train.parquet",
    "data.val_files": "$HERE/test.parquet",
    "data.max_prompt_length": 4096,  # + response = Mini-o3's 32,768-token context
    "data.max_response_length": 28672,
    "+data.mm_processor_kwargs.min_pixels": MINI_O3_MIN_PIXELS,  # the zoom-ins' budget (+: a key of a free dict)
    "+data.mm_processor_kwargs.max_pixels": MINI_O3_MAX_PIXELS,
    "actor_rollout_ref.model.path": "$MODEL_PATH",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_high": 0.3,
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "actor_rollout_ref.actor.use_dynamic_bsz": True,  # micro-batches packed by tokens: one full trajectory fits
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 32768,
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.n": 16,  # rollouts per prompt (the GRPO group)
    "actor_rollout_ref.rollout.multi_turn.enable": True,
    "actor_rollout_ref.rollout.multi_turn.format": PARSER_NAME,
    "actor_rollout_ref.rollout.multi_turn.max_assistant_turns": 6,  # the training turn cap
    "actor_rollout_ref.rollout.multi_turn.max_tool_response_length": 2048,  # error texts are never cut
    "actor_rollout_ref.rollout.multi_turn.tool_config_path": "$HERE/zoom_tool_config.yaml",
    "actor_rollout_ref.rollout.agent.agent_loop_config_path": "$HERE/agent_loop_config.yaml",
    "reward.custom_reward_function.path": "$HERE/reward_fn.py",
    "reward.custom_reward_function.name": "compute_score",
    "trainer.project_name": "mini_o3_lite",
}

# Mini-o3's scale: 256 prompts x 16 rollouts a step, mini-batch 32 prompts, full fine-tune on 8 nodes x 8 GPUs.
CLUSTER: dict[str, Any] = {
    "data.train_batch_size": 256,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 32,
    "trainer.nnodes": "$NNODES",
    "trainer.n_gpus_per_node": "$GPUS_PER_NODE",
    "trainer.experiment_name": "mini_o3_grpo",
}

# One GPU: LoRA on the language model (verl's lora_rank options), the batch scaled down, weights offloaded.
ONE_GPU_LORA: dict[str, Any] = {
    "data.train_batch_size": 16,
    "actor_rollout_ref.rollout.n": 8,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 4,  # 4 updates a step, as 256 / 32 gives Mini-o3 8
    "actor_rollout_ref.actor.optim.lr": 1e-5,  # verl's LoRA advice: ten times the full fine-tune's
    "actor_rollout_ref.model.lora_rank": 64,
    "actor_rollout_ref.model.lora_alpha": 64,
    "actor_rollout_ref.model.target_modules": "all-linear",
    "actor_rollout_ref.model.exclude_modules": ".*visual.*",  # the vision tower stays frozen, as in the kit's LoRA
    "actor_rollout_ref.actor.fsdp_config.param_offload": True,
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload": True,
    "actor_rollout_ref.rollout.load_format": "safetensors",  # required by verl for LoRA
    "actor_rollout_ref.rollout.layered_summon": True,
    "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.4,
    "trainer.nnodes": 1,
    "trainer.n_gpus_per_node": 1,
    "trainer.experiment_name": "mini_o3_grpo_1gpu_lora",
}

_SCRIPT_HEAD = """\
#!/usr/bin/env bash
# Mini-o3's RL stage on verl: {what}.
# Written by mini_o3_lite.export; edit freely.
#
# Environment: verl's, not the kit's .venv. Written for and tested against verl {version}
# (pip install "verl[vllm]=={version}"), which pins transformers < 5.11 while the kit needs >= 5.24. Install the kit
# there without its dependencies (pip install --no-deps -e <kit checkout>): verl then imports the kit's plugins
# (mini_o3_lite.verl_plugin: the <grounding> parser, the zoom tool, the agent loop with over-turn masking) and the
# reward's scoring rules, all plain Python. PYTHON names that environment's interpreter (default: python3).
#
# Mini-o3's recipe: GRPO, lr 1e-6, token-mean loss, clip 0.2 / 0.3, no KL, entropy 0; 6 turns; a 32,768-token
# context; 40,000-2,000,000 pixels per image (the parquet's images for the original, data.mm_processor_kwargs for
# the zoom-ins); groups whose rewards are all equal dropped and refilled (dynamic sampling, filter_groups); rollouts
# still calling the tool at the turn or context limit masked out (over_turn_masking in agent_loop_config.yaml).
# {scale}
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
PYTHON="${{PYTHON:-python3}}"
MODEL_PATH="${{MODEL_PATH:?set MODEL_PATH to the cold-start SFT checkpoint}}"
{env}"$PYTHON" -c "import mini_o3_lite.verl_plugin" \\
    || {{ echo "$0: run in verl's environment with the kit installed there (see the top of this script)" >&2; exit 1; }}

"$PYTHON" -m verl.trainer.main_ppo \\
"""

SCRIPTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {  # file -> (what, scale, environment lines, overrides)
    "run_mini_o3_verl.sh": (
        "the full recipe on a cluster",
        "This script: 256 prompts x 16 rollouts a step, mini-batch 32, full fine-tune, NNODES x GPUS_PER_NODE\n"
        "# GPUs (Mini-o3: 8 x 8).",
        'NNODES="${NNODES:-8}"\nGPUS_PER_NODE="${GPUS_PER_NODE:-8}"\n',
        CLUSTER),
    "run_mini_o3_verl_1gpu_lora.sh": (
        "one GPU with LoRA",
        "This script: one GPU, LoRA rank 64 on the language model (vision tower frozen), lr 1e-5, 16 prompts\n"
        "# x 8 rollouts a step, mini-batch 4, the actor's weights and optimizer offloaded to CPU. A starting point:\n"
        "# if it runs out of memory, lower data.max_response_length (fewer turns fit) or the batch.",
        "",
        ONE_GPU_LORA),
}

REWARD_FN = '''\
"""verl custom_reward_function, written by mini_o3_lite.export: Mini-o3's answer-only reward.

1.0 when the final answer matches the ground truth under mini_o3_lite.scoring's rules (choice letters through
extra_info["choices"]), else 0.0: no format or tool-call terms, as in Mini-o3 (which asks an LLM judge instead of
rules). The answer is the one the kit's agent loop parsed from the last turn (extra_info["model_answer"], None
without one): the response text also holds the observation turns, whose reminder quotes the <answer> tags.
"""
from mini_o3_lite import scoring


def compute_score(data_source, solution_str, ground_truth, extra_info):
    return float(scoring.score(extra_info["model_answer"], ground_truth, extra_info.get("choices")))
'''


def launch_script(name: str) -> str:
    """One launch script of `SCRIPTS`: main_ppo with MINI_O3_RL and the script's own overrides, paths from its folder.

    Every override is double-quoted, so the shell expands `$HERE` and friends and leaves Hydra's braces alone.
    """
    what, scale, env, overrides = SCRIPTS[name]
    lines = [f'    "{key}={value}"' for key, value in (MINI_O3_RL | overrides).items()]  # Hydra reads True, 1e-06
    head = _SCRIPT_HEAD.format(what=what, version=VERL_VERSION, scale=scale, env=env)
    return head + " \\\n".join(lines + ['    "$@"']) + "\n"


def export_verl(data_dir: str | Path, out: str | Path, splits: tuple[str, ...] = ("train", "test"),
                min_pixels: int = MINI_O3_MIN_PIXELS, max_pixels: int = MINI_O3_MAX_PIXELS,
                over_turn_masking: bool = True) -> list[Path]:
    """Write `<split>.parquet` for each split of a dataset folder, the tool and agent loop configs, the reward
    and the launch scripts."""
    import pyarrow as pa  # deferred, as in verl_schema
    import pyarrow.parquet as pq

    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        records = read_records(data_dir / f"{split}.jsonl")
        rows = [verl_row(r, data_dir, split, i, min_pixels, max_pixels) for i, r in enumerate(records)]
        pq.write_table(pa.Table.from_pylist(rows, schema=verl_schema()), out / f"{split}.parquet",
                       compression="snappy")
        written.append(out / f"{split}.parquet")
    head = "# verl {} (actor_rollout_ref.rollout.{}), written by mini_o3_lite\n"
    files = {"zoom_tool_config.yaml": head.format("tool config", "multi_turn.tool_config_path")
             + yaml.safe_dump(tool_config(), sort_keys=False, width=100),
             "agent_loop_config.yaml": head.format("agent loop config", "agent.agent_loop_config_path")
             + yaml.safe_dump(agent_loop_config(over_turn_masking), sort_keys=False),
             "reward_fn.py": REWARD_FN} | {name: launch_script(name) for name in SCRIPTS}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    for name in SCRIPTS:
        (out / name).chmod(0o755)
    return written


# ------------------------------------------------------------------------------------- trajectories
def read_trajectories(path: str | Path) -> tuple[Path, list]:
    """The cold-start trajectories (`trajectory.save_trajectories` folder or its JSONL), checked for SFT.

    Each must alternate user/assistant after its system turn, end with an assistant turn (what
    LLaMA-Factory accepts) and have as many image items as image files.
    """
    path = Path(path)
    folder = path.parent if path.name == "trajectories.jsonl" else path
    file = folder / "trajectories.jsonl"
    if not file.is_file():
        raise DataError(file, None, None, str(file), "no trajectories file here",
                        "Build the cold start (teacher.ensure_coldstart) or pass the folder it wrote.")
    trajectories = load_trajectories(folder)
    for line, t in enumerate(trajectories, 1):
        roles = [m["role"] for m in t.messages]
        turns = roles[1:] if roles[:1] == ["system"] else roles
        if not turns or len(turns) % 2 or turns != ["user", "assistant"] * (len(turns) // 2):
            raise DataError(file, line, "messages", roles, "roles must alternate user/assistant after an "
                            "optional system turn and end with an assistant turn", "Re-run the cold start.")
        placeholders = sum(message_text(m["content"]).count("<image>") for m in t.messages)
        if placeholders != len(t.images):
            raise DataError(file, line, "images", len(t.images), f"{placeholders} image placeholders in the "
                            f"messages but {len(t.images)} image files", "Re-run the cold start.")
    return file, trajectories


def _save_images(out: Path, trajectory) -> list[str]:
    """The trajectory's images as `images/<id>/<k>.png` under `out`; returns the relative paths."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", trajectory.id)
    (out / "images" / name).mkdir(parents=True, exist_ok=True)
    paths = [f"images/{name}/{k}.png" for k in range(len(trajectory.images))]
    for rel, image in zip(paths, trajectory.images, strict=True):
        save_png(image, out / rel)
    return paths


def export_sharegpt(trajectories: str | Path, out: str | Path, name: str = DATASET_NAME) -> list[Path]:
    """LLaMA-Factory: `<name>.json` (sharegpt, OpenAI-style roles), `dataset_info.json`, `images/`."""
    _, trajs = read_trajectories(trajectories)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"messages": [{"role": m["role"], "content": message_text(m["content"])} for m in t.messages],
             "images": _save_images(out, t)} for t in trajs]
    _write_json(out / f"{name}.json", rows)
    info = {name: {"file_name": f"{name}.json", "formatting": "sharegpt",
                   "columns": {"messages": "messages", "images": "images"},
                   "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                            "assistant_tag": "assistant", "system_tag": "system"}}}
    _write_json(out / "dataset_info.json", info)
    return [out / f"{name}.json", out / "dataset_info.json", out / "images"]


def export_trl(trajectories: str | Path, out: str | Path) -> list[Path]:
    """TRL: `train.jsonl` of `sft.to_dataset`'s rows (the kit's own SFT input), images as relative paths."""
    from .sft import to_dataset  # deferred: sft loads torch and transformers

    _, trajs = read_trajectories(trajectories)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = to_dataset(trajs).remove_columns("images").to_list()
    lines = [json.dumps(row | {"images": _save_images(out, t)}, sort_keys=True, ensure_ascii=False)
             for row, t in zip(rows, trajs, strict=True)]
    (out / "train.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return [out / "train.jsonl", out / "images"]


def load_trl(path: str | Path):
    """`train.jsonl` back as the `datasets.Dataset` `SFTTrainer` takes: messages, decoded images, length."""
    from datasets import Dataset, Image, Sequence  # deferred (seconds to import)

    path = Path(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["images"] = [str(path.parent / p) for p in row["images"]]
    return Dataset.from_list(rows).cast_column("images", Sequence(Image()))
