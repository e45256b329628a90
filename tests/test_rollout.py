"""The agent loop, driven by a scripted stand-in policy (fixed outputs per turn) and by the tiny model."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mini_o3_lite import hints, protocol
from mini_o3_lite.rollout import Batcher, ChosenLogprobs, RolloutConfig, model_policy, replay_policy, rollout, start

G = "<think>x</think><grounding>{}</grounding>"


class Rec:
    def __init__(self, rid, question="What colour is the dot on the red square?", answer="blue"):
        self.id, self.question, self.answer, self.choices = rid, question, answer, None


def call(box, source="original_image"):
    return protocol.assistant_text("Zoom.", protocol.tool_call_text(box, source))


def answer(text="blue"):
    return protocol.assistant_text("Read it.", protocol.answer_text(text))


def canvas(w=400, h=300):
    image = Image.new("RGB", (w, h), (128, 128, 128))
    image.paste((255, 0, 0), (100, 100, 200, 150))
    return image


def run(script, cfg=None, processor=None, sizes=None):
    recs = [Rec(k) for k in script]
    images = [canvas(*(sizes or {}).get(k, (400, 300))) for k in script]
    cfg = cfg or RolloutConfig(max_turns=4)
    return {t.id: t for t in rollout(recs, images, processor, replay_policy(script), cfg)}


def test_zoom_then_answer_crops_and_masks(tiny_processor):
    t = run({"a": [call((0.25, 0.25, 0.75, 0.75)), call((0.0, 0.0, 0.5, 0.5), "observation_1"), answer()]},
            processor=tiny_processor)["a"]
    assert (t.finish, t.exceeded, t.turns, t.answer) == ("answer", False, 3, "blue")
    assert [im.size for im in t.images] == [(400, 300), (200, 150), (100, 75)]  # nested crops, full resolution
    assert t.images[2].getpixel((0, 0)) == (128, 128, 128) and t.images[2].getpixel((99, 74)) == (255, 0, 0)
    assert [c["source"] for c in t.calls[:2]] == ["original_image", "observation_1"] and t.calls[2] is None
    # the sequence is exactly the chat template of the messages (the final answer turn has no <|im_end|>)
    text = tiny_processor.apply_chat_template(t.messages, tokenize=False)
    expected = tiny_processor(text=[text], images=t.images, return_tensors="pt")["input_ids"][0].tolist()
    end_tail = tiny_processor.tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert t.input_ids == expected[: -len(end_tail)]
    # model tokens are exactly the three assistant texts; everything else (prompt, observations) is masked
    model_ids = [i for i, m in zip(t.input_ids, t.model_mask, strict=True) if m]
    tok = tiny_processor.tokenizer
    assert tok.decode(model_ids) == "".join(m["content"][0]["text"] for m in t.messages if m["role"] == "assistant")
    assert all(lp == 0.0 for lp in t.logprobs) and len(t.logprobs) == len(t.input_ids)
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert not any(m for i, m in zip(t.input_ids, t.model_mask, strict=True) if i == image_id)


def test_calling_at_the_last_turn_is_exceeded(tiny_processor):
    box = (0.0, 0.0, 0.5, 0.5)
    t = run({"a": [call(box)] * 3}, RolloutConfig(max_turns=3), tiny_processor)["a"]
    assert (t.finish, t.exceeded, t.turns, len(t.images)) == ("max_turns", True, 3, 3)


def test_image_limit_is_exceeded(tiny_processor):
    t = run({"a": [call((0.0, 0.0, 0.5, 0.5))] * 5}, RolloutConfig(max_turns=6, max_images=3), tiny_processor)["a"]
    assert (t.finish, t.exceeded, len(t.images)) == ("max_turns", True, 3)


def test_answer_at_the_last_turn_is_not_exceeded(tiny_processor):
    t = run({"a": [call((0.0, 0.0, 0.5, 0.5)), answer()]}, RolloutConfig(max_turns=2), tiny_processor)["a"]
    assert (t.finish, t.exceeded) == ("answer", False)


def test_context_limit(tiny_processor):
    t = run({"a": [call((0.0, 0.0, 0.5, 0.5))] * 6}, RolloutConfig(max_turns=10, context_length=400, context_reserve=0),
            tiny_processor)["a"]
    assert (t.finish, t.exceeded) == ("context", True) and len(t.input_ids) >= 400


@pytest.mark.parametrize(
    "bad, reason",
    [
        (G.format('{"bbox_2d": [0.5, 0.5, 0.2, 0.9], "source": "original_image"}'), "x0 >= x1"),
        (G.format('{"bbox_2d": [0.1, 0.1, 0.2], "source": "original_image"}'), "4 numbers"),
        (G.format('{"bbox_2d": [0.1, 0.1, 0.5, 0.5], "source": "observation_3"}'), "does not exist"),
        ("<think>x</think><grounding>not json</grounding>", "not a JSON object"),
    ],
)
def test_invalid_call_becomes_an_error_observation(tiny_processor, bad, reason):
    t = run({"a": [bad, answer()]}, processor=tiny_processor)["a"]
    assert (t.finish, t.turns, len(t.images)) == ("answer", 2, 1)
    assert t.calls[0]["valid"] is False and reason in t.calls[0]["error"]
    error_turn = t.messages[3]
    assert error_turn["role"] == "user" and reason in error_turn["content"][0]["text"]


def test_invalid_call_stops_when_asked(tiny_processor):
    bad = '<think>x</think><grounding>{"bbox_2d": [0.9, 0.9, 0.1, 0.1], "source": "original_image"}</grounding>'
    t = run({"a": [bad, answer()]}, RolloutConfig(max_turns=4, on_invalid="stop"), tiny_processor)["a"]
    assert (t.finish, t.turns, t.exceeded) == ("invalid", 1, False)


def test_turn_without_call_or_answer_ends_invalid(tiny_processor):
    t = run({"a": ["<think>I am not sure what to do"]}, processor=tiny_processor)["a"]
    assert (t.finish, t.turns, t.answer) == ("invalid", 1, None)


def test_uncroppable_box_is_an_error_observation(tiny_processor):
    # a valid box whose pixel region is too elongated (aspect ratio >= 200) cannot be cut
    t = run({"a": [call((0.0, 0.0, 1.0, 0.001)), answer()]}, processor=tiny_processor, sizes={"a": (1000, 1000)})["a"]
    assert t.calls[0]["valid"] is False and "aspect ratio" in t.calls[0]["error"] and t.finish == "answer"


def test_batch_conversations_finish_independently(tiny_processor):
    script = {"a": [answer()], "b": [call((0.0, 0.0, 0.5, 0.5)), call((0.5, 0.5, 1.0, 1.0), "observation_1"), answer()],
              "c": ["nothing"]}
    trajs = run(script, processor=tiny_processor)
    assert {k: (t.finish, t.turns) for k, t in trajs.items()} == {"a": ("answer", 1), "b": ("answer", 3),
                                                                 "c": ("invalid", 1)}


def test_tiny_model_rollout_shapes_and_determinism(tiny_model, tiny_processor):
    recs, images = [Rec("a"), Rec("b"), Rec("c")], [canvas(), canvas(300, 300), canvas(500, 200)]
    cfg = RolloutConfig(max_turns=3, max_new_tokens=12, batch_size=2, seed=7)
    first = rollout(recs, images, tiny_processor, model_policy(tiny_model, cfg), cfg)
    again = rollout(recs, images, tiny_processor, model_policy(tiny_model, cfg), cfg)
    for t, u in zip(first, again, strict=True):
        assert t.input_ids == u.input_ids and t.logprobs == u.logprobs and t.finish == u.finish
        assert len(t.input_ids) == len(t.model_mask) == len(t.logprobs)
        assert t.finish in ("answer", "max_turns", "context", "invalid")
        n_model = sum(t.model_mask)
        assert 0 < n_model <= cfg.max_new_tokens * cfg.max_turns
        assert all(lp <= 0.0 for lp, m in zip(t.logprobs, t.model_mask, strict=True) if m)


def test_model_policy_never_samples_vision_tokens(tiny_processor):
    """A sampled <|image_pad|> has no image behind it: generation must suppress the vision tokens."""
    seen = {}

    class Stub:
        device = "cpu"

        class generation_config:  # noqa: N801
            eos_token_id = None

        def generate(self, **kwargs):
            seen.update(kwargs)
            raise StopIteration  # enough: the arguments are what this test reads

    batcher = Batcher(tiny_processor)
    traj = start("r", "What colour is the dot on the red square?", "blue", Image.new("RGB", (64, 64)), batcher)
    try:
        model_policy(Stub(), RolloutConfig())([traj], batcher)
    except StopIteration:
        pass
    ids = tiny_processor.tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>", "<|vision_end|>"])
    assert set(ids) <= set(seen["suppress_tokens"])
    # no batch x vocabulary scores kept per generated token (20 GB at Qwen's vocabulary): `ChosenLogprobs` records
    assert not seen.get("output_scores") and any(isinstance(p, ChosenLogprobs) for p in seen["logits_processor"])


def test_cache_reuse_across_turns_gives_the_same_rollouts():
    """The key/value cache kept from turn to turn (turncache.py) changes the cost, never the tokens."""
    from mini_o3_lite import dataset, modeling
    from mini_o3_lite.presets import load_preset

    preset = load_preset("tiny")
    model, processor = modeling.load(modeling.shipped("sft"))  # a model that zooms, so turns carry new images
    records, images = dataset.make_split(preset.data, "test", preset.min_pixels, preset.max_pixels, n=3)
    images = [images[r.id] for r in records]
    cfg = RolloutConfig(max_turns=5, max_new_tokens=preset.max_new_tokens, do_sample=False, batch_size=3,
                        hints=preset.tile_hints)  # the shipped agent's own protocol
    reused, fresh = (rollout(records, images, processor, model_policy(model, cfg, reuse_cache=r), cfg)
                     for r in (True, False))
    assert max(t.turns for t in reused) >= 3 and sum(len(t.images) for t in reused) >= 6
    for a, b in zip(reused, fresh, strict=True):
        assert a.input_ids == b.input_ids and a.model_mask == b.model_mask and a.finish == b.finish
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_rollout_logs_memory_per_turn(tiny_processor):
    log: list = []
    script = {"a": [call([0, 0, 0.5, 0.5]), answer()], "b": [answer()]}
    rollout([Rec(k) for k in script], [canvas(), canvas()], tiny_processor, replay_policy(script),
            RolloutConfig(max_turns=4, batch_size=2), log=log)
    assert [(e["turn"], e["active"]) for e in log] == [(1, 2), (2, 1)]
    assert all(e["peak_rss_mb"] >= e["rss_mb"] * 0.5 > 0 for e in log)


def test_observation_turn_carries_the_hint_only_when_asked(tiny_processor):
    zooms = [call((0.5, 0.0, 1.0, 0.5)), call((0.0, 0.5, 0.5, 1.0), "observation_1"), call((0.1, 0.2, 0.3, 0.4))]
    script = {"a": zooms + [answer()]}
    texts = {on: [m["content"][-1]["text"] for m in run(script, RolloutConfig(max_turns=4, hints=on),
                                                          tiny_processor)["a"].messages[3::2]] for on in (False, True)}
    assert not any("Tiles:" in t for t in texts[False])
    assert texts[True][0] == texts[False][0] + "\n" + hints.hint_text((0.5, 0.0, 1.0, 0.5))
    assert texts[True][1].endswith("Tiles: this view [0.5, 0.25, 0.75, 0.5], zoom in [0.5, 0.25, 0.625, 0.375], "
                                   "next tile [0.75, 0.25, 1.0, 0.5].")
    assert texts[True][2] == texts[False][2]  # not a tile: Mini-o3's text alone


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_recorded_logprobs_are_the_sampling_distributions(temperature):
    """The log-probs kept while sampling (`ChosenLogprobs`, one step behind `generate`) equal a teacher-forced
    forward pass at the same temperature: what GRPO's importance ratio compares against."""
    from mini_o3_lite import dataset, grpo, modeling
    from mini_o3_lite.presets import load_preset

    preset = load_preset("tiny")
    model, processor = modeling.load(modeling.shipped("sft"))
    records, images = dataset.make_split(preset.data, "test", preset.min_pixels, preset.max_pixels, n=2)
    cfg = RolloutConfig(max_turns=3, max_new_tokens=preset.max_new_tokens, temperature=temperature, batch_size=2,
                        hints=preset.tile_hints, seed=3)
    trajs = rollout(records, [images[r.id] for r in records], processor, model_policy(model, cfg), cfg)
    batcher = Batcher(processor)
    for t in trajs:
        batch, mask = grpo.masked_batch(batcher, [t], "cpu")
        with torch.no_grad():
            logp, _, tok_mask = grpo.token_logprobs(model, batch, mask, temperature)
        forced = logp[0][tok_mask[0].bool()].tolist()
        recorded = [lp for lp, m in zip(t.logprobs, t.model_mask, strict=True) if m]
        assert recorded == pytest.approx(forced, abs=2e-3)
