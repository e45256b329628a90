"""Scale-out: the kit's questions and trajectories in the files verl, LLaMA-Factory and TRL read.

Mini-o3 ran its RL in a fork of verl and its cold-start SFT with LLaMA-Factory; past one GPU the
kit hands its data to the same tools. Three exports, each readable back with its consumer's schema
(tests/test_export.py), and byte-identical for the same inputs (sorted keys, no timestamps):

- **verl** (RL, agent loop): `<split>.parquet` with `data_source`, `prompt` (chat messages whose
  user turn holds an `<image>` placeholder), `images` ([{"bytes", "min_pixels", "max_pixels"}]),
  `ability`, `reward_model` ({"style": "rule", "ground_truth"}), `extra_info` (the record's id,
  split, index, difficulty, choices, target box, and `tools_kwargs` for the zoom tool) and
  `agent_name` = "tool_agent"; plus `zoom_tool_config.yaml` (verl's tool-config format),
  `reward_fn.py` (Mini-o3's answer-only reward) and `run_mini_o3_verl.sh` (Mini-o3's RL settings).
  Followed: verl `docs/start/agentic_rl.rst` (07/2025: the tool agent loop is chosen per row by
  `agent_name`), `docs/preparation/prepare_data.rst`, `docs/preparation/reward_function.rst`,
  `examples/data_preprocess/geo3k_tool_agent_loop.py`,
  `examples/sglang_multiturn/config/tool_config/image_zoom_in_tool_config.yaml`,
  `verl/tools/image_zoom_in_tool.py` (its `create` takes the image) and
  `verl/trainer/config/rollout/rollout.yaml` (`multi_turn.*` keys), read on verl's main branch of
  the second half of 2025 (agent-loop docs dated 07/2025, "versionadded 0.4.2"; the API may move).
  Per-image `min_pixels`/`max_pixels` are read by `qwen_vl_utils.fetch_image`, which verl's
  `process_image` calls.
- **LLaMA-Factory** (cold-start SFT): `<name>.json`, a list of {"messages": [{"role", "content"}],
  "images": [paths]} with one `<image>` per image in order, and `dataset_info.json` registering it
  as `formatting: sharegpt` with role/content tags (LLaMA-Factory `data/README.md`, "OpenAI format"
  and the multimodal columns). Images are PNGs under `images/`, paths relative to that folder
  (LLaMA-Factory's default `media_dir` is the dataset folder).
- **TRL**: `train.jsonl` of exactly the rows `sft.to_dataset` gives `SFTTrainer` (conversational
  messages with `{"type": "image"}` items, `length`), images as relative paths; `load_trl` turns it
  back into a `datasets.Dataset` with decoded images.

What upstream verl lacks for an exact Mini-o3 run is said in the launch script: its tool parser
reads Hermes `<tool_call>` blocks, not `<grounding>`; its stock zoom tool takes pixel boxes of the
original image, not relative boxes with a `source`; over-turn masking and dynamic sampling live in
Mini-o3's fork (and verl's DAPO recipe for the latter).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from . import protocol
from .data import DataError, Record, read_records, save_png

AGENT_NAME = "tool_agent"  # verl's ToolAgentLoop, picked per row by this column
TOOL_NAME = "image_zoom_in_tool"
TOOL_CLASS = "verl.tools.image_zoom_in_tool.ImageZoomInTool"  # stock verl; point at your own for <grounding>
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
    """One RL prompt: the kit's system prompt and first user turn, the image as bytes, the answer."""
    data = record.image_path(data_dir).read_bytes()
    mime = "jpeg" if data[:2] == b"\xff\xd8" else "png"
    prompt = [{"role": m["role"], "content": message_text(m["content"])}
              for m in protocol.messages_for(record.question, record.choices)]
    create = {"image": f"data:image/{mime};base64," + base64.b64encode(data).decode()}  # the tool's own copy
    return {
        "data_source": record.source,
        "prompt": prompt,
        "images": [{"bytes": data, "min_pixels": min_pixels, "max_pixels": max_pixels}],
        "ability": "visual_search",
        "reward_model": {"style": "rule", "ground_truth": record.answer},
        "extra_info": {"id": record.id, "split": split, "index": index, "difficulty": record.difficulty,
                       "choices": record.choices, "target_bbox": record.target_bbox, "question": record.question,
                       "answer": record.answer, "need_tools_kwargs": True,
                       "tools_kwargs": {TOOL_NAME: {"create_kwargs": create}}},
        "agent_name": AGENT_NAME,
    }


def verl_schema():
    """The parquet schema, explicit so an all-null column (no choices anywhere) keeps its type."""
    import pyarrow as pa

    s = pa.string()
    extra = [("id", s), ("split", s), ("index", pa.int64()), ("difficulty", s), ("choices", pa.list_(s)),
             ("target_bbox", pa.list_(pa.float64())), ("question", s), ("answer", s),
             ("need_tools_kwargs", pa.bool_()),
             ("tools_kwargs", pa.struct([(TOOL_NAME, pa.struct([("create_kwargs", pa.struct([("image", s)]))]))]))]
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


def tool_config(tool_class: str = TOOL_CLASS) -> dict:
    """verl's tool config: one zoom tool whose OpenAI function schema is Mini-o3's call."""
    box = ("Region to zoom into as [x0, y0, x1, y1]: (x0, y0) top-left, (x1, y1) bottom-right, relative to "
           "the source image, whose width and height both count as 1.0.")
    source = (f'The image to zoom into: "{protocol.ORIGINAL_IMAGE}", or "observation_i" for the i-th '
              "zoom-in image received so far.")
    schema = {"type": "object",
              "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4,
                                         "maxItems": 4, "description": box},
                             "source": {"type": "string", "description": source}},
              "required": ["bbox_2d", "source"]}
    function = {"name": TOOL_NAME, "description": "Zoom in on a region of the original image or of an "
                "earlier zoom-in, cut at full resolution.", "parameters": schema}
    return {"tools": [{"class_name": tool_class, "config": {"type": "native"},
                       "tool_schema": {"type": "function", "function": function}}]}


# Mini-o3's RL recipe (MINI_O3_FACTS.md, "RL (code)") as verl main_ppo overrides.
MINI_O3_RL: dict[str, Any] = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": False,
    "data.train_batch_size": 256,  # prompts per step
    "data.max_prompt_length": 4096,  # + response = Mini-o3's 32,768-token context
    "data.max_response_length": 28672,
    "data.image_key": "images",
    "data.return_raw_chat": True,
    "data.filter_overlong_prompts": True,
    "actor_rollout_ref.rollout.n": 16,  # rollouts per prompt (the GRPO group)
    "actor_rollout_ref.actor.ppo_mini_batch_size": 32,
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_high": 0.3,
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "actor_rollout_ref.rollout.mode": "async",
    "actor_rollout_ref.rollout.multi_turn.enable": True,
    "actor_rollout_ref.rollout.multi_turn.max_assistant_turns": 6,  # the training turn cap
}

_SCRIPT_HEAD = """\
#!/usr/bin/env bash
# Mini-o3's RL stage on verl's tool agent loop. Written by mini_o3_lite.export; edit freely.
# Settings: Mini-o3's RL recipe (GRPO, 256 prompts x 16 rollouts, mini-batch 32, lr 1e-6, token-mean,
# clip 0.2/0.3, no KL, entropy 0, 6 turns, 32,768-token context, 40,000-2,000,000 pixels per image
# (in the parquet's images), 8 nodes x 8 GPUs).
# Not in upstream verl (Mini-o3 used a fork), to add before an exact reproduction:
# - over-turn masking: the response mask of a rollout still calling the tool at the turn or context limit is 0;
# - dynamic sampling: groups with reward std < 1e-4 are dropped and refilled (verl's DAPO recipe:
#   algorithm.filter_groups.*);
# - the <grounding> call format: verl parses multi_turn.format (hermes: <tool_call>) and its stock
#   ImageZoomInTool reads pixel boxes of the original image; register a ToolParser and point class_name in
#   zoom_tool_config.yaml at a tool with relative boxes and `source` (the kit's protocol.crop);
# - observation images are resized by the tool/processor: set max_pixels 2,000,000 in the checkpoint's
#   preprocessor_config.json too.
# The reward (reward_fn.py) imports mini_o3_lite: pip install the kit in verl's environment.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODEL_PATH="${MODEL_PATH:?set MODEL_PATH to the cold-start SFT checkpoint}"
NNODES="${NNODES:-8}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"

python3 -m verl.trainer.main_ppo \\
"""

REWARD_FN = '''\
"""verl custom_reward_function, written by mini_o3_lite.export: Mini-o3's answer-only reward.

1.0 when the first <answer>...</answer> of the response (Mini-o3's "strict" extraction) matches the ground truth under
mini_o3_lite.scoring's rules (choice letters through extra_info["choices"]), else 0.0: no format or
tool-call terms, as in Mini-o3 (which asks an LLM judge instead of rules).
"""
import re

from mini_o3_lite import scoring


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    answers = re.findall(r"<answer>(.*?)</answer>", solution_str, re.DOTALL)
    choices = (extra_info or {}).get("choices")
    return float(bool(answers) and scoring.score(answers[0].strip(), ground_truth, choices))
'''


def launch_script() -> str:
    """`run_mini_o3_verl.sh`: main_ppo with MINI_O3_RL, paths relative to the script's folder."""
    lines = [f"    {key}={v}" for key, v in MINI_O3_RL.items()] + [  # Hydra reads True/False, 1e-06
        '    data.train_files="$HERE/train.parquet"',
        '    data.val_files="$HERE/test.parquet"',
        '    actor_rollout_ref.model.path="$MODEL_PATH"',
        "    actor_rollout_ref.rollout.name=vllm",
        '    actor_rollout_ref.rollout.multi_turn.tool_config_path="$HERE/zoom_tool_config.yaml"',
        '    custom_reward_function.path="$HERE/reward_fn.py"',
        "    custom_reward_function.name=compute_score",
        '    trainer.nnodes="$NNODES"',
        '    trainer.n_gpus_per_node="$GPUS_PER_NODE"',
        "    trainer.project_name=mini_o3_lite",
        "    trainer.experiment_name=mini_o3_grpo",
        '    "$@"',
    ]
    return _SCRIPT_HEAD + " \\\n".join(lines) + "\n"


def export_verl(data_dir: str | Path, out: str | Path, splits: tuple[str, ...] = ("train", "test"),
                min_pixels: int = MINI_O3_MIN_PIXELS, max_pixels: int = MINI_O3_MAX_PIXELS,
                tool_class: str = TOOL_CLASS) -> list[Path]:
    """Write `<split>.parquet` for each split of a dataset folder, the tool config, reward and launch script."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        records = read_records(data_dir / f"{split}.jsonl")
        rows = [verl_row(r, data_dir, split, i, min_pixels, max_pixels) for i, r in enumerate(records)]
        pq.write_table(pa.Table.from_pylist(rows, schema=verl_schema()), out / f"{split}.parquet",
                       compression="snappy")
        written.append(out / f"{split}.parquet")
    files = {"zoom_tool_config.yaml": "# verl tool config (multi_turn.tool_config_path), written by mini_o3_lite\n"
                                      + yaml.safe_dump(tool_config(tool_class), sort_keys=False, width=100),
             "reward_fn.py": REWARD_FN, "run_mini_o3_verl.sh": launch_script()}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    (out / "run_mini_o3_verl.sh").chmod(0o755)
    return written


# ------------------------------------------------------------------------------------- trajectories
def read_trajectories(path: str | Path) -> tuple[Path, list]:
    """The cold-start trajectories (`teacher.save_trajectories` folder or its JSONL), checked for SFT.

    Each must alternate user/assistant after its system turn, end with an assistant turn (what
    LLaMA-Factory accepts) and have as many image items as image files.
    """
    from .teacher import load_trajectories

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
    from .sft import to_dataset

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
    from datasets import Dataset, Image, Sequence

    path = Path(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["images"] = [str(path.parent / p) for p in row["images"]]
    return Dataset.from_list(rows).cast_column("images", Sequence(Image()))
