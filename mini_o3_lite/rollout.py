"""The Mini-o3 agent loop, batched: generate -> parse -> crop -> observe, for many conversations at once.

SFT data synthesis, RL and evaluation all run this loop. Every still-active conversation
generates its next turn in one batched call (left padding); a turn ends at `</grounding>`,
`</answer>`, the end-of-turn token or the per-turn token cap. The turn is parsed with
`protocol.parse_action`; a zoom call is cropped from the full-resolution original or an earlier
observation, and the observation comes back as a user turn with the new image. Finished
conversations drop out of the batch.

The token sequence of each conversation is built as it grows, not re-tokenised at the end: the
model's own sampled ids (mask 1, with their log-probabilities under the sampling distribution) and
the ids of everything the environment adds (prompt, observation turns, chat-template glue: mask 0).
That sequence is exactly what the processor's chat template produces for the same messages, so SFT
and RL see the same tokens (tested).

Finish reasons follow Mini-o3: `answer`; `max_turns` (still calling the tool at the last allowed
turn, or at the image limit); `context` (the conversation passed its cap minus the reserve);
`invalid` (a turn with neither a call nor an answer, or any invalid action when
`on_invalid="stop"`). A rollout is `exceeded` when it stopped at the turn, image or context limit
while still calling the tool: over-turn masking (grpo.py) gives those no gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from . import hints, memory, protocol
from .trajectory import Trajectory
from .turncache import TurnCache


@dataclass(frozen=True)
class RolloutConfig:
    max_turns: int = 6  # assistant turns; a tool call on the last one ends the rollout as exceeded
    max_new_tokens: int = 96  # per turn
    context_length: int = 4096
    context_reserve: int = 256  # Mini-o3: exceeded when the context passes 32,768 - 2,000
    max_images: int | None = None  # original + observations (Mini-o3: 12); None = max_turns + 1
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = True
    on_invalid: str = "observe"  # "observe": an error turn for the model (Mini-o3); "stop": end as invalid
    batch_size: int = 16
    seed: int = 0
    tools: bool = True  # False: no system prompt, so no tool is offered (the no-tool baseline; use max_turns=1)
    hints: bool = False  # kit-only tile hints at the end of each observation turn (`hints.py`, Preset.tile_hints)

    @classmethod
    def for_preset(cls, preset, max_turns: int, **overrides) -> RolloutConfig:
        """The loop's settings for `preset` at a budget of `max_turns` turns; `overrides` set any other field.

        From the preset: tokens per turn, context and its reserve, tile hints, seed and the evaluation batch
        size; the image limit is the original plus one observation per turn. Decoding keeps the defaults
        (sampling at temperature 1.0) unless overridden: evaluation sets `do_sample=False`.
        """
        base = dict(max_turns=max_turns, max_new_tokens=preset.max_new_tokens, context_length=preset.context_length,
                    context_reserve=preset.context_reserve, max_images=max_turns + 1,
                    batch_size=preset.eval_batch_size, seed=preset.seed, hints=preset.tile_hints)
        return cls(**(base | overrides))


@dataclass
class TurnOutput:
    """One generated turn: the ids the policy produced (without padding) and their log-probabilities."""

    ids: list[int]
    logprobs: list[float]
    text: str


Context = tuple[list[dict], list[Image.Image]]  # messages and images shown before the question
Policy = Callable[[list[Trajectory], "Batcher"], list[TurnOutput]]


class Batcher:
    """Turns conversations into tensors: token pieces of the chat template, images, left-padded batches.

    Everything is built from the tokenizer and image processor the model ships with, so a real
    Qwen2.5-VL checkpoint goes through the same lines as the tiny model.
    """

    def __init__(self, processor):
        self.processor, self.tokenizer = processor, processor.tokenizer
        self.pad_id = self.tokenizer.pad_token_id
        self.image_id = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self.vision_ids = self.tokenizer.convert_tokens_to_ids(  # only the environment writes these
            ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])
        self.merge = processor.image_processor.merge_size**2
        self._pixels: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # one batch's images (a new Batcher per batch)

    def text_ids(self, messages: list[dict], generation_prompt: bool) -> list[int]:
        """Ids of a chat-template rendering, with one `<|image_pad|>` per image (expanded later)."""
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def pixels(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel_values, grid_thw) of one image, cached by object identity for the whole rollout."""
        key = id(image)
        if key not in self._pixels:
            out = self.processor.image_processor(images=[image], return_tensors="pt")
            self._pixels[key] = (out["pixel_values"], out["image_grid_thw"][0])
        return self._pixels[key]

    def expand(self, ids: list[int], images: list[Image.Image]) -> list[int]:
        """Replace each single `<|image_pad|>` by as many as the image has visual tokens."""
        out, k = [], 0
        for t in ids:
            if t == self.image_id:
                out += [self.image_id] * (int(self.pixels(images[k])[1].prod()) // self.merge)
                k += 1
            else:
                out.append(t)
        if k != len(images):
            raise ValueError(f"conversation has {k} image placeholders but {len(images)} images")
        return out

    def batch(self, trajectories: list[Trajectory]) -> dict[str, torch.Tensor]:
        """Left-padded model inputs for the current state of each conversation."""
        width = max(len(t.input_ids) for t in trajectories)
        ids = torch.full((len(trajectories), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, t in enumerate(trajectories):
            ids[row, width - len(t.input_ids):] = torch.tensor(t.input_ids)
            mask[row, width - len(t.input_ids):] = 1
        images = [im for t in trajectories for im in (*t.context_images, *t.images)]
        pixel_values = torch.cat([self.pixels(im)[0] for im in images])
        grid = torch.stack([self.pixels(im)[1] for im in images])
        return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values, "image_grid_thw": grid,
                "mm_token_type_ids": (ids == self.image_id).long()}


class ChosenLogprobs(LogitsProcessor):
    """Warps the next-token scores into the sampling distribution and records each chosen token's log-prob.

    Written by hand because `generate(output_scores=True)` keeps a batch x vocabulary tensor of scores for
    every generated token (with Qwen's 152K vocabulary, 32 rows x 1,024 tokens is about 20 GB of float32);
    here only the latest step's log-softmax is held, and the token chosen from it is read one step later
    (it is then the last column of `input_ids`). Temperature and top-p are applied here, with transformers'
    own warpers, so the recorded log-prob is that of the distribution the token was drawn from.
    """

    def __init__(self, temperature: float = 1.0, top_p: float = 1.0):
        self.warpers = [TemperatureLogitsWarper(temperature)] * (temperature != 1.0) \
            + [TopPLogitsWarper(top_p)] * (top_p < 1.0)
        self.previous: torch.Tensor | None = None
        self.chosen: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._record(input_ids[:, -1])
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        self.previous = torch.log_softmax(scores.float(), -1)
        return scores

    def _record(self, tokens: torch.Tensor) -> None:
        if self.previous is not None:
            self.chosen.append(self.previous.gather(-1, tokens[:, None]).squeeze(-1))

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """[batch, generated] log-probs, once `generate` returned `sequences` (the last choice is recorded here)."""
        self._record(sequences[:, -1])
        self.previous = None
        return torch.stack(self.chosen, 1)


def model_policy(model, config: RolloutConfig, reuse_cache: bool = True) -> Policy:
    """The policy that samples from a model: one batched `generate` per turn for all active rollouts.

    `reuse_cache`: keep the key/value cache from turn to turn so a turn encodes only its new tokens
    (`turncache.py`); False re-encodes every conversation from the start each turn (same tokens, slower).
    """
    caches: dict[int, TurnCache] = {}

    @torch.no_grad()
    def policy(active: list[Trajectory], batcher: Batcher) -> list[TurnOutput]:
        if reuse_cache and id(batcher) not in caches:
            caches.clear()  # a new batch: the previous batch's cache is finished with
            caches[id(batcher)] = TurnCache(model, batcher, headroom=config.max_new_tokens)
        cache = caches.get(id(batcher))
        inputs = cache.inputs(active) if cache else batcher.batch(active)
        inputs = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        recorder = ChosenLogprobs(config.temperature, config.top_p) if config.do_sample else ChosenLogprobs()
        # the warping is the recorder's: generate itself samples from the scores it returns as they are
        sampling = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0} if config.do_sample \
            else {"do_sample": False}
        out = model.generate(
            **inputs, max_new_tokens=config.max_new_tokens, stop_strings=["</grounding>", "</answer>"],
            tokenizer=batcher.tokenizer, return_dict_in_generate=True, repetition_penalty=1.0,
            suppress_tokens=batcher.vision_ids, use_cache=True, logits_processor=LogitsProcessorList([recorder]),
            **sampling,
        )  # repetition_penalty=1.0: a checkpoint's own default would change the recorded distribution
        # suppress_tokens: a sampled <|image_pad|> has no image behind it and breaks every later forward pass
        new = out.sequences[:, inputs["input_ids"].shape[1]:]
        chosen = recorder.finish(out.sequences)
        eos = model.generation_config.eos_token_id
        eos = {eos} if isinstance(eos, int) else set(eos or [])
        stops = ("</grounding>", "</answer>")
        results = []
        for row in range(new.shape[0]):
            ids = new[row].tolist()
            cut = len(ids)
            for i, t in enumerate(ids):  # first end: an end-of-turn token or a completed stop string
                if t in eos:
                    cut = i + 1
                    break
                if any(batcher.tokenizer.decode(ids[: i + 1]).endswith(s) for s in stops):
                    cut = i + 1
                    break
            ids = ids[:cut]
            text = batcher.tokenizer.decode([t for t in ids if t not in eos])
            results.append(TurnOutput(ids, [round(float(x), 6) for x in chosen[row, :cut]], text))
        if cache:
            cache.update(active, {k: v.cpu() for k, v in inputs.items() if k == "attention_mask" or k == "input_ids"},
                         out.cache, [len(r.ids) for r in results])
        return results

    return policy


def replay_policy(script: dict[str, list[str]]) -> Policy:
    """A stand-in policy that says each conversation's next scripted turn (by record id).

    Texts are tokenised as a model would have produced them: a turn ending in a stop string
    (`</grounding>`, `</answer>`) stops there, any other turn ends with `<|im_end|>`. Scripted
    teachers and tests run their trajectories through the real loop with it, so crops, observations
    and token masks are exactly what a model's rollout would give.
    """

    def policy(active: list[Trajectory], batcher: Batcher) -> list[TurnOutput]:
        end = batcher.tokenizer.convert_tokens_to_ids("<|im_end|>")
        outs = []
        for traj in active:
            text = script[traj.id][traj.turns]
            ids = batcher.tokenizer(text, add_special_tokens=False)["input_ids"]
            if not text.endswith(("</grounding>", "</answer>")):
                ids = ids + [end]
            outs.append(TurnOutput(ids, [0.0] * len(ids), text))
        return outs

    return policy


def start(record_id: str, question: str, answer_key: str | None, image: Image.Image, batcher: Batcher,
          choices: list[str] | None = None, tools: bool = True, context: Context | None = None) -> Trajectory:
    """A conversation at its first generation prompt: system, user (image + question), `assistant\\n`.

    `tools=False` leaves the system prompt out (nothing tells the model a tool exists). `context`
    (messages, images) goes between the system prompt and the question: few-shot exemplars.
    """
    system, user = protocol.messages_for(question, choices)
    shown, shown_images = context or ([], [])
    messages = [system] * tools + list(shown) + [user]
    ids = batcher.expand(batcher.text_ids(messages, generation_prompt=True), [*shown_images, image])
    return Trajectory(record_id, question, answer_key, messages, [image], ids, [0] * len(ids), [0.0] * len(ids),
                      context_images=list(shown_images))


def _append_env(traj: Trajectory, ids: list[int]) -> None:
    traj.input_ids += ids
    traj.model_mask += [0] * len(ids)
    traj.logprobs += [0.0] * len(ids)


def step(traj: Trajectory, turn: TurnOutput, batcher: Batcher, config: RolloutConfig) -> None:
    """Apply one generated turn: record it, then answer, observe, report an error or stop."""
    tok = batcher.tokenizer
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    traj.input_ids += turn.ids
    traj.model_mask += [1] * len(turn.ids)
    traj.logprobs += turn.logprobs
    traj.turns += 1
    traj.messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.text}]})
    action = protocol.parse_action(turn.text, len(traj.images) - 1)
    is_call = isinstance(action, protocol.ToolCall) or (isinstance(action, protocol.Invalid) and action.is_call)
    max_images = config.max_images or config.max_turns + 1

    if isinstance(action, protocol.Answer):
        traj.calls.append(None)
        traj.finish, traj.answer = "answer", action.text
        return
    if isinstance(action, protocol.Invalid) and not action.is_call:
        traj.calls.append({"valid": False, "error": action.reason})
        traj.finish = "invalid"
        return
    if is_call and (traj.turns >= config.max_turns or len(traj.images) >= max_images):
        traj.calls.append({"valid": isinstance(action, protocol.ToolCall), "executed": False,
                           "bbox": getattr(action, "bbox", None), "source": getattr(action, "source", None)})
        traj.finish, traj.exceeded = "max_turns", True
        return

    ended = set(batcher.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))
    close = [] if turn.ids and turn.ids[-1] in ended else [end_id]  # the template's <|im_end|> if not generated
    if isinstance(action, protocol.ToolCall):
        source = protocol.source_index(action.source)
        view = protocol.crop(traj.images[source], action.bbox)
        if isinstance(view, str):  # a box the crop cannot cut: an error turn, like any invalid call
            action = protocol.Invalid(view, turn.text, is_call=True)
    if isinstance(action, protocol.ToolCall):
        traj.calls.append({"valid": True, "bbox": list(action.bbox), "source": action.source,
                           "size": list(view.size)})
        traj.images.append(view)
        hint = hints.hint_text(hints.image_boxes(traj.calls)[-1]) if config.hints else None
        message = protocol.observation_message(len(traj.images) - 1, hint)
    elif config.on_invalid == "stop":
        traj.calls.append({"valid": False, "error": action.reason})
        traj.finish = "invalid"
        return
    else:
        traj.calls.append({"valid": False, "error": action.reason})
        message = protocol.error_message(action.reason)
    traj.messages.append(message)
    # "<|im_start|>user\n ... <|im_end|>\n<|im_start|>assistant\n", exactly as the chat template renders it
    glue = batcher.text_ids([message], generation_prompt=True)
    new_images = traj.images[-1:] if any(c["type"] == "image" for c in message["content"]) else []
    _append_env(traj, close + tok("\n", add_special_tokens=False)["input_ids"] + batcher.expand(glue, new_images))
    if len(traj.input_ids) >= config.context_length - config.context_reserve:
        traj.finish, traj.exceeded = "context", True


def rollout(records: Sequence, images: Sequence[Image.Image], processor, policy: Policy, config: RolloutConfig,
            progress: bool = False, context: Context | None = None, log: list | None = None) -> list[Trajectory]:
    """Run the agent loop on every record (batches of `config.batch_size`); one trajectory per record.

    `records` need `.id`, `.question`, `.answer` and `.choices` (data.Record); `images[i]` is record i's
    full-resolution image. `context`: exemplar turns shown before every question (`start`). `log`: a
    list that gets one entry per batched turn (batch, turn, active conversations, RSS and its peak).
    """
    torch.manual_seed(config.seed)
    out: list[Trajectory] = []
    bar = tqdm(total=len(records), disable=not progress, desc="rollout", unit="question")
    for lo in range(0, len(records), config.batch_size):
        batcher = Batcher(processor)  # per batch: its image cache dies with the batch
        trajs = [start(r.id, r.question, r.answer, im, batcher, getattr(r, "choices", None), config.tools, context)
                 for r, im in zip(records[lo : lo + config.batch_size], images[lo : lo + config.batch_size],
                                  strict=True)]
        turn_index = 0
        while active := [t for t in trajs if not t.done]:
            memory.reset_peak()
            for traj, turn in zip(active, policy(active, batcher), strict=True):
                step(traj, turn, batcher, config)
            turn_index += 1
            if log is not None:
                log.append({"batch": lo // config.batch_size, "turn": turn_index, "active": len(active),
                            **memory.snapshot()})
        out += trajs
        bar.update(len(trajs))
    bar.close()
    return out
