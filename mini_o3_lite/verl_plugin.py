"""Mini-o3's agent on verl: the `<grounding>` call format, the zoom-in tool and over-turn masking as verl plugins.

Past one GPU the kit hands its RL stage to verl, the engine Mini-o3 was trained with. Upstream verl
knows neither Mini-o3's call format nor its crop rules nor over-turn masking, so this module supplies
them through the three hooks verl 0.9.1 offers, each behaving exactly as the kit's own loop
(`rollout.step`):

- `GroundingParser`, registered as verl tool parser `mini_o3_grounding`
  (`actor_rollout_ref.rollout.multi_turn.format`): a turn holding a `<grounding>...</grounding>`
  block, well-formed or not, becomes one call of the zoom tool; a turn without one (an answer, or
  neither) becomes no call, so the episode ends there, as in Mini-o3.
- `ZoomInTool` (the tool config's `class_name`): checks the block with the kit's rules
  (`protocol.parse_action`) against the images the conversation holds so far, and cuts the box out of
  the full-resolution original or earlier observation with `protocol.crop`; what it cannot act on
  comes back as the kit's error text.
- `MiniO3AgentLoop` (agent loop config; `agent_name` of the exported parquet rows): verl's
  `ToolAgentLoop` with three changes. Observations and errors come back as the kit's user turns
  rather than verl's tool turns; the chat template gets no tool list (the system prompt already
  describes the call, as in Mini-o3's training data); and a trajectory that is still calling the tool
  when it stops (turn limit `multi_turn.max_assistant_turns`, or `data.max_response_length` tokens) is
  *exceeded*: with `over_turn_masking` on, its response mask is all zero, so it carries no gradient,
  while its reward (0, no answer) still enters its group's mean and std, as in Mini-o3's code.

It runs in verl's environment, never in the kit's `.venv`: verl 0.9.1 pins transformers < 5.11 and
the kit needs >= 5.24, so this module imports verl and the kit's `protocol` (plain Python + Pillow)
and none of the kit's model code. `tests/verl/` checks it against verl's own classes on CPU.
"""

from __future__ import annotations

import json
from typing import Any

from PIL import Image
from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from . import protocol

PARSER_NAME = "mini_o3_grounding"
TOOL_NAME = "image_zoom_in_tool"
_OPEN_CALL = "<grounding>"


def is_call(action: protocol.Action) -> bool:
    """Whether a parsed turn asks for the tool: a well-formed call, or a malformed one that Mini-o3 still answers."""
    return isinstance(action, protocol.ToolCall) or (isinstance(action, protocol.Invalid) and action.is_call)


def conversation_images(messages: list[dict[str, Any]]) -> list[Image.Image]:
    """The images of a conversation in order: `[original, observation_1, observation_2, ...]` at full resolution.

    verl keeps the dataset's original in the first user turn (`{"type": "image", "image": <PIL image>}`)
    and every observation in the turn that returned it, so the conversation is the tool's only state:
    the tool is created anew for every call and needs nothing else to resolve `source`.
    """
    return [item["image"] for message in messages if isinstance(message["content"], list)
            for item in message["content"] if item.get("type") == "image"]


# ---------------------------------------------------------------------------------------------------------- parser
@ToolParser.register(PARSER_NAME)
class GroundingParser(ToolParser):
    """Reads Mini-o3's `<grounding>{"bbox_2d": [...], "source": ...}</grounding>` instead of Hermes' `<tool_call>`.

    The parser sees one turn and not the conversation, so it cannot tell whether `observation_3` exists
    yet: it hands the block as written to the tool (argument `grounding`), which checks it with the
    kit's rules against the conversation's images. A malformed block is still a call, so it comes back
    as an error observation and the episode goes on, as in Mini-o3 and the kit's loop.
    """

    async def extract_tool_calls(
        self, responses_ids: list[int], tools: list[OpenAIFunctionToolSchema] | None = None
    ) -> tuple[str, list[FunctionCall]]:
        """(the turn's text, one zoom call or none)."""
        text = self.tokenizer.decode(responses_ids, skip_special_tokens=True)
        action = protocol.parse_action(text, n_observations=0)  # the source is checked by the tool
        if not is_call(action):
            return text, []
        block = action.raw[action.raw.rfind(_OPEN_CALL):]  # raw ends at the first </grounding>
        return text, [FunctionCall(name=TOOL_NAME, arguments=json.dumps({"grounding": block}))]


# ------------------------------------------------------------------------------------------------------------ tool
class ZoomInTool(BaseTool):
    """Mini-o3's zoom-in: a relative box cut from the original image or an earlier observation, at full resolution.

    Returns the crop as the observation image, or `protocol.error_text` of what went wrong (a malformed
    block, a source that does not exist yet, a box the crop cannot cut). Needs verl's tool agent loop,
    which passes the conversation (`agent_data`) to `execute`.
    """

    async def execute(self, instance_id: str, parameters: dict[str, Any],
                      **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        """(observation, tool reward 0.0, no metrics): Mini-o3's reward is the answer's alone."""
        images = conversation_images(kwargs["agent_data"].messages)
        action = protocol.parse_action(parameters["grounding"], n_observations=len(images) - 1)
        if not isinstance(action, protocol.ToolCall):
            return ToolResponse(text=protocol.error_text(action.reason)), 0.0, {}
        view = protocol.crop(images[protocol.source_index(action.source)], action.bbox)
        if isinstance(view, str):
            return ToolResponse(text=protocol.error_text(view)), 0.0, {}
        return ToolResponse(image=[view]), 0.0, {}


# ------------------------------------------------------------------------------------------------------ agent loop
class MiniO3AgentLoop(ToolAgentLoop):
    """verl's tool agent loop speaking Mini-o3's turns, with over-turn masking.

    `over_turn_masking` is the kit's switch (`RLConfig.over_turn_masking`): the agent loop config
    passes it (`agent_loop_config.yaml`, written by the export).
    """

    def __init__(self, *args: Any, over_turn_masking: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.over_turn_masking = over_turn_masking
        # No tool list for the chat template: Qwen's would append a Hermes `<tool_call>` block to the system prompt.
        self.tool_schemas = []

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        """verl's loop, then its last turn read: `extra_fields["exceeded"]` and `extra_fields["model_answer"]`.

        The loop stops a trajectory that calls the tool only at a limit (turn count, or no room left for
        the observation), so a trajectory whose last turn is a call is exactly one that was cut off. The
        answer is parsed here, from the last turn alone, because the response text the reward function
        gets also holds the observation turns, whose reminder quotes the `<answer>` tags.
        """
        output = await super().run(sampling_params, **kwargs)
        last_turn = protocol.parse_action(self.tokenizer.decode(_last_turn_ids(output), skip_special_tokens=True),
                                          n_observations=0)
        exceeded = is_call(last_turn)
        output.extra_fields["exceeded"] = exceeded
        output.extra_fields["model_answer"] = last_turn.text if isinstance(last_turn, protocol.Answer) else None
        if exceeded and self.over_turn_masking:
            output.response_mask = [0] * len(output.response_mask)
        return output

    async def ct_merge_context_msg(self, previous_messages: list[dict], updated_messages: list[dict],
                                   *args: Any, **kwargs: Any) -> tuple[Any, list[int], list[float] | None]:
        """Turn the tool turns just appended into the kit's user turns, then let verl tokenize them.

        verl appends `{"role": "tool", ...}` after a call; Mini-o3 (and the kit's SFT data) answer with a
        user turn: the observation's name, the image, the reminder (`protocol.observation_message`), or
        the error text alone. The turns are replaced in `updated_messages`, the loop's own list, so the
        conversation the tool reads next time is the one the model saw.
        """
        n_images = len(conversation_images(previous_messages))
        for i in range(len(previous_messages), len(updated_messages)):
            if updated_messages[i]["role"] == "tool":
                updated_messages[i] = _user_turn(updated_messages[i], n_images)
                n_images += len(conversation_images(updated_messages[i:i + 1]))
        return await super().ct_merge_context_msg(previous_messages, updated_messages, *args, **kwargs)


def _user_turn(tool_message: dict[str, Any], n_images: int) -> dict[str, Any]:
    """The kit's user turn for one verl tool turn: an observation (named `observation_<n_images>`) or a text."""
    content = tool_message["content"]
    images = conversation_images([tool_message])
    if images:
        message = protocol.observation_message(n_images)
        for item in message["content"]:
            if item["type"] == "image":
                item["image"] = images[0]
        return message
    text = content if isinstance(content, str) else "".join(c.get("text") or "" for c in content)
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _last_turn_ids(output: AgentLoopOutput) -> list[int]:
    """The ids of the last turn the model wrote: the run of mask-1 tokens that ends the response."""
    start = len(output.response_mask)
    while start > 0 and output.response_mask[start - 1] == 1:
        start -= 1
    return output.response_ids[start:len(output.response_mask)]
