"""The verl plugins against verl's own classes: the parser, the zoom tool and the agent loop with over-turn masking.

The agent loop runs for real (verl's ToolAgentLoop state machine, its Continuous Token builder, the exported tool
and agent loop configs) with a scripted stand-in for the vLLM server, and is compared token for token with the
kit's own loop (`rollout.rollout` with `replay_policy`) on the same turns.
"""

from __future__ import annotations

import asyncio
import json

import pytest

# A submodule: without verl installed, `import verl` alone finds this folder (tests/verl) as a namespace package.
pytest.importorskip("verl.protocol")

import hydra  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap  # noqa: E402
from verl.experimental.agent_loop.tool_agent_loop import AgentData  # noqa: E402
from verl.experimental.agent_loop.tool_parser import ToolParser  # noqa: E402
from verl.tools.tool_registry import load_all_tools  # noqa: E402
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage  # noqa: E402
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from mini_o3_lite import export, protocol, verl_plugin  # noqa: E402
from mini_o3_lite.data import read_records  # noqa: E402
from mini_o3_lite.presets import load_preset  # noqa: E402
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout  # noqa: E402

P = load_preset("tiny")


def call(bbox, source: str, thought: str = "Too small to read.") -> str:
    return protocol.assistant_text(thought, protocol.tool_call_text(bbox, source))


# Six turns that keep calling the tool: nested zooms, a call on an observation that does not exist yet (an error
# turn), and a call at the sixth turn, the training cap, which makes the trajectory exceeded.
STILL_SEARCHING = [
    call((0.0, 0.0, 0.5, 0.5), "original_image"),
    call((0.25, 0.25, 0.75, 0.75), "observation_1"),
    call((0.0, 0.0, 0.5, 0.5), "observation_5"),
    call((0.5, 0.5, 1.0, 1.0), "observation_2"),
    call((0.9, 0.0, 0.99, 0.06), "observation_3"),  # a few pixels: enlarged to 28 px as by protocol.crop
    call((0.0, 0.5, 0.5, 1.0), "original_image"),
]


def answered(answer: str) -> list[str]:
    return [call((0.5, 0.0, 1.0, 0.5), "original_image"),
            protocol.assistant_text("It is the second option.", protocol.answer_text(answer))]


# ---------------------------------------------------------------------------------------------------------- parser
@pytest.fixture(scope="module")
def parser(processor):
    return ToolParser.get_tool_parser(export.PARSER_NAME, processor.tokenizer)  # registered by the plugin's import


def parse(parser, processor, text: str):
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    return asyncio.run(parser.extract_tool_calls(ids))


def test_parser_turns_a_grounding_block_into_one_zoom_call(parser, processor):
    block = '<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "original_image"}</grounding>'
    text, calls = parse(parser, processor, f"<think>Zoom.</think>\n{block}\nand what a model might add")
    (only,) = calls
    assert only.name == export.TOOL_NAME == verl_plugin.TOOL_NAME
    assert json.loads(only.arguments) == {"grounding": block}  # cut at the first </grounding>, as generation is
    assert text.startswith("<think>Zoom.</think>")


@pytest.mark.parametrize("block", [
    "<grounding>[0.1, 0.2, 0.5, 0.6]</grounding>",  # not an object
    '<grounding>{"bbox_2d": [0.5, 0.2, 0.1, 0.6], "source": "original_image"}</grounding>',  # x0 > x1
    '<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6], "source": "observation_9"}</grounding>',  # not there yet
    "<grounding></grounding>",
])
def test_parser_passes_malformed_calls_on_so_they_become_error_turns(parser, processor, block):
    _, calls = parse(parser, processor, f"<think>Zoom.</think>\n{block}")
    assert [json.loads(c.arguments) for c in calls] == [{"grounding": block}]


@pytest.mark.parametrize("text", [
    "<think>Found it.</think>\n<answer>red</answer>",
    "<think>I am not sure what to do.</think>",
    '<think>Zoom.</think>\n<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.6]',  # never closed: not a call, as in the kit
])
def test_parser_finds_no_call_in_answers_and_turns_without_a_block(parser, processor, text):
    assert parse(parser, processor, text)[1] == []


# ------------------------------------------------------------------------------------------------------------ tool
@pytest.fixture(scope="module")
def tool(exported):
    (zoom,) = load_all_tools(tool_config_path=str(exported / "zoom_tool_config.yaml"), function_tool_path=None)
    return zoom


def zoom(tool, messages: list[dict], bbox, source: str):
    """One call as verl's loop makes it: the parser's block, the conversation in `agent_data`."""
    block = protocol.tool_call_text(bbox, source)
    data = AgentData(messages=messages, image_data=[], video_data=None, audio_data=None, mm_processor_kwargs=None,
                     metrics={}, request_id="test", tools_kwargs={})
    response, reward, _ = asyncio.run(tool.execute("instance", {"grounding": block}, agent_data=data))
    assert reward == 0.0
    return response


def test_tool_crops_nested_observations_at_full_resolution_like_protocol_crop(tool, make_image):
    original = make_image(1280, 960, seed=3)
    messages = [{"role": "system", "content": protocol.SYSTEM_PROMPT},
                {"role": "user", "content": [{"type": "image", "image": original}, {"type": "text", "text": "Q"}]}]
    expected = original
    for i, (box, source) in enumerate([((0.1, 0.2, 0.6, 0.7), "original_image"),
                                       ((0.3, 0.1, 0.9, 0.5), "observation_1"),
                                       ((0.95, 0.0, 0.99, 0.03), "observation_2")], start=1):
        response = zoom(tool, messages, box, source)
        expected = protocol.crop(expected, box)
        (view,) = response.image
        assert view.size == expected.size and view.tobytes() == expected.tobytes() and response.text is None
        messages.append({"role": "user", "content": [{"type": "image", "image": view}]})
        assert len(verl_plugin.conversation_images(messages)) == i + 1
    assert expected.size[1] == protocol.MIN_SIDE  # the last crop was a few pixels high: enlarged as the kit does
    back = zoom(tool, messages, (0.0, 0.0, 1.0, 1.0), "original_image").image[0]
    assert back.tobytes() == original.tobytes()  # the original is still there, uncut


@pytest.mark.parametrize("bbox, source, reason", [
    ((0.1, 0.1, 0.5, 0.5), "observation_1", "does not exist yet; only original_image exists so far"),
    ((1.2, 0.1, 1.5, 0.5), "original_image", "lies outside the image"),
    ((0.0, 0.0, 1.0, 0.001), "original_image", "covers no pixels"),
])
def test_tool_reports_what_it_cannot_cut_with_the_kits_error_text(tool, make_image, bbox, source, reason):
    messages = [{"role": "user", "content": [{"type": "image", "image": make_image(640, 480)}]}]
    response = zoom(tool, messages, bbox, source)
    assert response.image is None and reason in response.text
    assert response.text.startswith("The zoom-in tool reported an error: ")  # protocol.error_text


# ------------------------------------------------------------------------------------------------------ agent loop
class ScriptedServer:
    """verl's LLM server as the agent loop calls it, answering with scripted turns.

    Each turn ends with `<|im_end|>`, as a model trained on the kit's data writes it; the images the loop
    sends are kept to check what the model would see.
    """

    def __init__(self, tokenizer, turns: list[str]):
        self.tokenizer, self.turns, self.images = tokenizer, list(turns), []

    async def generate(self, *, prompt_ids: list[int], image_data: list, **kwargs) -> TokenOutput:
        self.images.append(list(image_data))
        text = self.turns.pop(0)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return TokenOutput(token_ids=ids + [self.tokenizer.convert_tokens_to_ids("<|im_end|>")])


@pytest.fixture(scope="module")
def loop_config(composed):
    """The cluster script's configuration, with the zoom-ins' pixel budget set to the tiny processor's."""
    cfg = composed["run_mini_o3_verl.sh"].copy()
    cfg.data.mm_processor_kwargs = {"min_pixels": P.min_pixels, "max_pixels": P.max_pixels}
    return cfg


def run_agent(loop_config, processor, exported, turns: list[str], over_turn_masking: bool):
    """One trajectory through the exported agent loop config, instantiated as verl's AgentLoopWorker does."""
    rollout_cfg = loop_config.actor_rollout_ref.rollout
    (entry,) = OmegaConf.load(rollout_cfg.agent.agent_loop_config_path)
    assert entry.name == export.AGENT_NAME and entry.over_turn_masking  # the export's default: masking on
    entry.over_turn_masking = over_turn_masking
    server = ScriptedServer(processor.tokenizer, turns)
    tools = load_all_tools(tool_config_path=rollout_cfg.multi_turn.tool_config_path, function_tool_path=None)
    row = RLHFDataset(str(exported / "test.parquet"), processor.tokenizer, loop_config.data, processor)[0]

    async def trajectory():  # the loop binds to the running event loop when it is built, as in verl's workers
        loop = hydra.utils.instantiate(
            entry, trainer_config=DictConfigWrap(loop_config), server_manager=server, tokenizer=processor.tokenizer,
            processor=processor, hf_model_type="qwen2_5_vl", dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(loop_config.data), tools=ToolListWrap(tools))
        assert isinstance(loop, verl_plugin.MiniO3AgentLoop)
        return await loop.run({"temperature": 1.0}, raw_prompt=row["raw_prompt"], extra_info=row["extra_info"],
                              tools_kwargs=row["tools_kwargs"])

    return asyncio.run(trajectory()), server


def kit_rollout(dataset, processor, turns: list[str]):
    """The same turns through the kit's own agent loop (6 turns, as the launch scripts' cap)."""
    record = read_records(dataset / "test.jsonl")[0]
    (traj,) = rollout([record], [record.load_image(dataset)], processor, replay_policy({record.id: turns}),
                      RolloutConfig(max_turns=6))
    return traj


def model_writes_im_end(traj, im_end: int) -> tuple[list[int], list[int]]:
    """The kit's ids and model mask as verl records them: with no stop string, the model writes the `<|im_end|>`
    that the kit's loop adds after stopping at `</grounding>` or `</answer>` (the only difference between them)."""
    ids, mask = list(traj.input_ids), list(traj.model_mask)
    for i in range(1, len(ids)):
        if ids[i] == im_end and mask[i] == 0 and mask[i - 1] == 1:
            mask[i] = 1
    if mask[-1] == 1:  # the last turn, never closed by the kit's loop
        ids, mask = ids + [im_end], mask + [1]
    return ids, mask


def test_agent_loop_is_the_kits_loop_token_for_token(loop_config, processor, exported, dataset):
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for turns in (STILL_SEARCHING, answered("blue")):
        output, server = run_agent(loop_config, processor, exported, turns, over_turn_masking=False)
        traj = kit_rollout(dataset, processor, turns)
        ids, mask = model_writes_im_end(traj, im_end)
        assert output.prompt_ids + output.response_ids == ids
        assert [0] * len(output.prompt_ids) + output.response_mask == mask
        assert output.extra_fields["exceeded"] == traj.exceeded
        assert output.extra_fields["model_answer"] == traj.answer
        seen = server.images[-1]  # what the model saw before its last turn: the original, then the observations
        assert len(seen) == len(traj.images)
        for theirs, ours in zip(seen[1:], traj.images[1:], strict=True):
            assert theirs.tobytes() == ours.tobytes()
    assert traj.answer == "blue" and not traj.exceeded


def test_over_turn_masking_zeroes_an_exceeded_trajectory_and_keeps_its_reward_in_the_group(
        loop_config, processor, exported, dataset):
    masked, _ = run_agent(loop_config, processor, exported, STILL_SEARCHING, over_turn_masking=True)
    untouched, _ = run_agent(loop_config, processor, exported, STILL_SEARCHING, over_turn_masking=False)
    assert masked.extra_fields["exceeded"] and untouched.extra_fields["exceeded"]
    assert masked.response_ids == untouched.response_ids and masked.extra_fields["model_answer"] is None
    assert set(masked.response_mask) == {0} and sum(untouched.response_mask) > 0
    kit = kit_rollout(dataset, processor, STILL_SEARCHING)
    assert kit.exceeded and [0] * len(untouched.prompt_ids) + untouched.response_mask == model_writes_im_end(
        kit, processor.tokenizer.convert_tokens_to_ids("<|im_end|>"))[1]

    right, _ = run_agent(loop_config, processor, exported, answered("blue"), over_turn_masking=True)
    wrong, _ = run_agent(loop_config, processor, exported, answered("red"), over_turn_masking=True)
    assert not right.extra_fields["exceeded"] and sum(right.response_mask) > 0  # masking spares finished ones
    # One GRPO group through verl's own advantage: rewards at each response's last token, as verl places them.
    group = [masked, right, wrong]
    rewards = torch.tensor([0.0, 1.0, 0.0])
    width = max(len(o.response_mask) for o in group)
    mask = torch.tensor([o.response_mask + [0] * (width - len(o.response_mask)) for o in group])
    token_rewards = torch.zeros(len(group), width)
    for row, output in enumerate(group):
        token_rewards[row, len(output.response_mask) - 1] = rewards[row]
    advantages, _ = compute_grpo_outcome_advantage(token_rewards, mask, index=["q"] * len(group))
    expected = (rewards - rewards.mean()) / (rewards.std() + 1e-6)  # the exceeded 0 is in the mean and std
    assert torch.allclose(advantages[1][mask[1].bool()], expected[1])
    assert torch.allclose(advantages[2][mask[2].bool()], expected[2])
    assert not advantages[0].any()  # and it carries no gradient


def test_reward_reads_the_answer_the_loop_parsed(loop_config, processor, exported):
    output, _ = run_agent(loop_config, processor, exported, answered("B"), over_turn_masking=True)
    namespace: dict = {}
    exec(compile((exported / "reward_fn.py").read_text(), "reward_fn.py", "exec"), namespace)
    row = RLHFDataset(str(exported / "test.parquet"), processor.tokenizer, loop_config.data, processor)[0]
    extra_info = dict(row["extra_info"]) | output.extra_fields  # as verl's reward manager merges them
    choices, truth = extra_info["choices"], row["reward_model"]["ground_truth"]
    letter = "ABCDEFGH"[choices.index(truth)]
    response = processor.tokenizer.decode(output.response_ids, skip_special_tokens=True)
    assert "<answer> and </answer>" in response  # the observation's reminder: why the text alone is not parsed
    score = namespace["compute_score"]
    assert score("visualprobe_lite", response, truth, extra_info) == float(letter == "B")
    assert score("visualprobe_lite", response, truth, extra_info | {"model_answer": letter}) == 1.0
    assert score("visualprobe_lite", response, truth, extra_info | {"model_answer": None}) == 0.0
